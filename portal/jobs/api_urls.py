from django.urls import path

from portal.jobs import api

urlpatterns = [
    path("jobs/", api.JobListApi.as_view(), name="api-jobs"),
    path("jobs/<uuid:job_id>/", api.JobDetailApi.as_view(), name="api-job-detail"),
    path("jobs/<uuid:job_id>/cancel/", api.JobCancelApi.as_view(), name="api-job-cancel"),
    path("sessions/<uuid:session_id>/jobs/", api.SessionJobsProgressApi.as_view(), name="api-session-jobs"),
]
