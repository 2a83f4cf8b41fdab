"""Home page, health check and the current-user API."""
from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import connection
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.defaults import page_not_found
from django.views.generic import TemplateView
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.centers.models import Role
from portal.centers.selectors import user_roles

ROLE_ABILITIES = {
    Role.UPLOADER: gettext_lazy("Create pseudonymized patients and image sessions, upload images, start analyses."),
    Role.REVIEWER: gettext_lazy("Review detections cell by cell, correct them, draw missed cells, export pick lists."),
    Role.VALIDATOR: gettext_lazy("Score randomized cells in blinded validation studies and sign your scores."),
    Role.STAIN_TECHNICIAN: gettext_lazy("Enter PRM1/PNA stain results for the cells of validation studies."),
    Role.CENTER_ADMIN: gettext_lazy("Manage your center's users and models, adjudicate reviews, run validation studies."),
}


class HomeView(LoginRequiredMixin, TemplateView):
    """What the logged-in user's roles allow, per center."""

    template_name = "core/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        roles_by_center = user_roles(self.request.user)
        context["centers"] = [
            {"code": code, "roles": [{"name": Role(r).label, "can": ROLE_ABILITIES[Role(r)]} for r in sorted(roles)]}
            for code, roles in sorted(roles_by_center.items())
        ]
        context["is_auditor"] = self.request.user.is_auditor or self.request.user.is_superuser
        return context


class ApiDocsView(LoginRequiredMixin, TemplateView):
    """Swagger UI of the API schema, for signed-in users; started by ``static/core/api_docs.js``."""

    template_name = "core/api_docs.html"


def not_found(request, exception=None):
    """404 for every URL no view answers: JSON under ``/api/`` (as the API's own 404s), else the page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"message": _("Not found."), "extra": {}}, status=404)
    return page_not_found(request, exception)


def healthz(request):
    """Liveness and database check for load balancers and the run command."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
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
