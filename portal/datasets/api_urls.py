from django.urls import path

from portal.datasets import api

urlpatterns = [
    path("sessions/<uuid:session_id>/training-use/", api.SessionTrainingUseApi.as_view(), name="api-session-training-use"),
    path("datasets/", api.DatasetListApi.as_view(), name="api-datasets"),
    path("datasets/<uuid:dataset_version_id>/", api.DatasetDetailApi.as_view(), name="api-dataset-detail"),
    path("datasets/<uuid:dataset_version_id>/coco.zip", api.DatasetExportApi.as_view(), name="api-dataset-export"),
]
