from django.urls import path

from portal.results import api

urlpatterns = [
    path("images/<uuid:image_id>/result-sets/", api.ImageResultSetsApi.as_view(), name="api-image-result-sets"),
    path("result-sets/<uuid:result_set_id>/", api.ResultSetDetailApi.as_view(), name="api-result-set-detail"),
]
