from django.urls import path

from portal.mlmodels import api

urlpatterns = [
    path("models/", api.ModelListApi.as_view(), name="api-models"),
    path("models/<uuid:model_version_id>/", api.ModelDetailApi.as_view(), name="api-model-detail"),
    path("models/<uuid:model_version_id>/activate/", api.ModelActivateApi.as_view(), name="api-model-activate"),
]
