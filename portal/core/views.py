"""Home page, health check and the current-user API."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django.views.defaults import page_not_found
from django.views.generic import TemplateView
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.centers.models import Role
from portal.centers.selectors import user_roles
from portal.core.access import access_notification
from portal.core.home import home_panels
from portal.core.selectors import notifications_for
from portal.core.services import notification_mark_read, notifications_mark_all_read

ROLE_ABILITIES = {
    Role.UPLOADER: gettext_lazy("Create pseudonymized patients and image sessions, upload images, start analyses."),
    Role.REVIEWER: gettext_lazy("Review detections cell by cell, correct them, draw missed cells, export pick lists."),
    Role.VALIDATOR: gettext_lazy("Score randomized cells in blinded validation studies and sign your scores."),
    Role.STAIN_TECHNICIAN: gettext_lazy("Enter PRM1/PNA stain results for the cells of validation studies."),
    Role.CENTER_ADMIN: gettext_lazy("Manage your center's users and models, adjudicate reviews, run validation studies."),
}


class HomeView(LoginRequiredMixin, TemplateView):
    """What waits for the logged-in user (panels of the apps, see ``core.home``), their notifications, and
    what their roles allow, per center."""

    template_name = "core/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        roles_by_center = user_roles(self.request.user)
        context["centers"] = [
            {"code": code, "roles": [{"name": Role(r).label, "can": ROLE_ABILITIES[Role(r)]} for r in sorted(roles)]}
            for code, roles in sorted(roles_by_center.items())
        ]
        context["is_auditor"] = self.request.user.is_auditor or self.request.user.is_superuser
        context["panels"] = home_panels(self.request)
        context["notifications"] = list(notifications_for(self.request.user, limit=HOME_NOTIFICATIONS))
        return context


HOME_NOTIFICATIONS = 5


@login_required
@require_GET
def notification_list(request):
    """The user's newest notifications, unread first marked."""
    return render(request, "core/notifications.html", {"notifications": notifications_for(request.user)})


@login_required
@require_POST
def notification_read(request, notification_id):
    """Mark one of the user's notifications read, then follow its link (or go back to the list)."""
    notification = access_notification(user=request.user, id=notification_id)
    notification_mark_read(notification=notification)
    link = notification.link if notification.link.startswith("/") and not notification.link.startswith("//") else ""
    return redirect(link or reverse("core:notifications"))


@login_required
@require_POST
def notifications_read_all(request):
    """Mark every notification of the user read."""
    notifications_mark_all_read(user=request.user)
    return redirect(reverse("core:notifications"))


class ApiDocsView(LoginRequiredMixin, TemplateView):
    """Swagger UI of the API schema, for signed-in users; started by ``static/core/api_docs.js``."""

    template_name = "core/api_docs.html"


def not_found(request, exception=None):
    """404 for every URL no view answers: JSON under ``/api/`` (as the API's own 404s), else the page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"message": _("Not found."), "extra": {}}, status=404)
    return page_not_found(request, exception)


def healthz(request):
    """Liveness: the process answers. No database or broker (that is ``/readyz``, portal.ops)."""
    return JsonResponse({"status": "ok"})


class MeApi(APIView):
    """The current user and their roles per center."""

    class MeOutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        is_auditor = serializers.BooleanField()
        roles = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))

    @extend_schema(responses=MeOutputSerializer)
    def get(self, request):
        data = {
            "username": request.user.username,
            "is_auditor": request.user.is_auditor,
            "roles": {code: sorted(roles) for code, roles in user_roles(request.user).items()},
        }
        return Response(self.MeOutputSerializer(data).data)
