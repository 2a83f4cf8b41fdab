from django.urls import path

from portal.training import views

app_name = "training"
urlpatterns = [
    path("", views.index, name="index"),
    path("start/", views.start, name="start"),
    path("jobs/<uuid:training_job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<uuid:training_job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("models/<uuid:model_version_id>/card/", views.card, name="model-card"),
    path("models/<uuid:model_version_id>/gate/", views.gate, name="gate"),
    path("centers/<uuid:center_id>/rollback/", views.rollback, name="rollback"),
    path("reanalyse/", views.reanalyse, name="reanalyse"),
    path("images/<uuid:image_id>/compare/", views.compare, name="compare"),
]
