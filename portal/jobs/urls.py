from django.urls import path

from portal.jobs import views

app_name = "jobs"
urlpatterns = [
    path("sessions/<uuid:session_id>/start/", views.session_start, name="session-start"),
    path("<uuid:job_id>/", views.job_detail, name="detail"),
    path("<uuid:job_id>/cancel/", views.job_cancel, name="cancel"),
]
