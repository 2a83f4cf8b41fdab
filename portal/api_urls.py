"""REST API v1: each app's ``api_urls.py`` is included here."""
from django.urls import include, path

urlpatterns = [
    path("", include("portal.core.api_urls")),
    path("", include("portal.centers.api_urls")),
    path("", include("portal.audit.api_urls")),
    path("", include("portal.imaging.api_urls")),
    path("", include("portal.mlmodels.api_urls")),
    path("", include("portal.jobs.api_urls")),
    path("", include("portal.results.api_urls")),
    path("", include("portal.review.api_urls")),
    path("", include("portal.validation.api_urls")),
    path("", include("portal.datasets.api_urls")),
    path("", include("portal.training.api_urls")),
]
