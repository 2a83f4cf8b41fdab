from django.urls import path

from portal.centers import api

urlpatterns = [
    path("centers/", api.CenterListApi.as_view(), name="api-center-list"),
    path("centers/<uuid:pk>/", api.CenterDetailApi.as_view(), name="api-center-detail"),
]
