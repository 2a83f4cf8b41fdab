from django.urls import path

from portal.imaging import views

app_name = "imaging"
urlpatterns = [
    path("patients/", views.patient_list, name="patient-list"),
    path("patients/new/", views.patient_create, name="patient-create"),
    path("sessions/", views.session_list, name="session-list"),
    path("sessions/new/", views.session_create, name="session-create"),
    path("sessions/<uuid:pk>/", views.session_detail, name="session-detail"),
    path("sessions/<uuid:pk>/upload/", views.session_upload, name="session-upload"),
    path("sessions/<uuid:pk>/stage/", views.session_stage, name="session-stage"),
    path("images/<uuid:pk>/um-per-px/", views.image_um_per_px, name="image-um-per-px"),
]
