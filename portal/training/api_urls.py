from django.urls import path

from portal.training import api

urlpatterns = [
    path("training/jobs/", api.TrainingJobListApi.as_view(), name="api-training-jobs"),
    path("training/jobs/<uuid:training_job_id>/", api.TrainingJobDetailApi.as_view(), name="api-training-job-detail"),
    path("training/jobs/<uuid:training_job_id>/progress/", api.TrainingJobProgressApi.as_view(),
         name="api-training-job-progress"),
    path("training/jobs/<uuid:training_job_id>/cancel/", api.TrainingJobCancelApi.as_view(),
         name="api-training-job-cancel"),
    path("training/reanalyse/", api.ReanalyseApi.as_view(), name="api-training-reanalyse"),
    path("models/<uuid:model_version_id>/card/", api.ModelCardApi.as_view(), name="api-model-card"),
    path("models/<uuid:model_version_id>/gate/", api.ModelGateApi.as_view(), name="api-model-gate"),
    path("models/<uuid:model_version_id>/promote/", api.ModelPromoteApi.as_view(), name="api-model-promote"),
    path("centers/<uuid:center_id>/rollback/", api.CenterRollbackApi.as_view(), name="api-center-rollback"),
]
