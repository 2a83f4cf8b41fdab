from django.urls import path

from portal.imaging import api

urlpatterns = [
    path("patients/", api.PatientListApi.as_view(), name="api-patient-list"),
    path("patients/<uuid:pk>/", api.PatientDetailApi.as_view(), name="api-patient-detail"),
    path("sessions/", api.SessionListApi.as_view(), name="api-session-list"),
    path("sessions/<uuid:pk>/", api.SessionDetailApi.as_view(), name="api-session-detail"),
    path("sessions/<uuid:pk>/images/", api.SessionImageUploadApi.as_view(), name="api-session-image-upload"),
    path("images/", api.ImageListApi.as_view(), name="api-image-list"),
    path("images/<uuid:pk>/", api.ImageDetailApi.as_view(), name="api-image-detail"),
    path("images/<uuid:pk>/file/", api.ImageFileApi.as_view(), name="api-image-file"),
    path("images/<uuid:pk>/display/", api.ImageDisplayApi.as_view(), name="api-image-display"),
    path("images/<uuid:pk>/thumbnail/", api.ImageThumbnailApi.as_view(), name="api-image-thumbnail"),
]
