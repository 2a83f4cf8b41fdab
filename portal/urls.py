"""Top-level URLs. Each app contributes ``urls.py`` (HTML pages) and ``api_urls.py`` (REST, /api/v1/)."""
from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from django_otp.admin import OTPAdminSite
from drf_spectacular.views import SpectacularAPIView

from portal.core.views import ApiDocsView

# The admin site asks for the second factor (django-otp) and only lets verified staff in.
admin.site.__class__ = OTPAdminSite

urlpatterns = [
    path("", include("portal.core.urls")),
    path("accounts/", include("portal.accounts.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", ApiDocsView.as_view(), name="api-docs"),
    path("api/v1/", include("portal.api_urls")),
    # The djangojs catalog (window.gettext, interpolate) for the active language; loaded by base.html.
    path("jsi18n/", JavaScriptCatalog.as_view(domain="djangojs"), name="javascript-catalog"),
    path("audit/", include("portal.audit.urls")),
    path("imaging/", include("portal.imaging.urls")),
    path("models/", include("portal.mlmodels.urls")),
    path("jobs/", include("portal.jobs.urls")),
    path("review/", include("portal.review.urls")),
    path("validation/", include("portal.validation.urls")),
    path("datasets/", include("portal.datasets.urls")),
    path("training/", include("portal.training.urls")),
    path("", include("portal.ops.urls")),
]

handler404 = "portal.core.views.not_found"
