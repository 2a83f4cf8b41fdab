"""REST API: the centers the current user belongs to, with their roles there."""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.centers.models import Membership
from portal.centers.selectors import centers_for_user


class CenterOutput(serializers.Serializer):
    id = serializers.UUIDField()
    code = serializers.CharField()
    name = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())


def _with_roles(user, centers) -> list[dict]:
    roles: dict = {}
    for center_id, role in Membership.objects.filter(user=user, center__in=centers).values_list("center_id", "role"):
        roles.setdefault(center_id, set()).add(role)
    return [{"id": c.id, "code": c.code, "name": c.name, "roles": sorted(roles.get(c.id, ()))} for c in centers]


class CenterListApi(APIView):
    """Centers where you hold a role (none for a site auditor)."""

    @extend_schema(responses=CenterOutput(many=True))
    def get(self, request):
        centers = list(centers_for_user(request.user))
        return Response(CenterOutput(_with_roles(request.user, centers), many=True).data)


class CenterDetailApi(APIView):
    """One of your centers."""

    @extend_schema(responses=CenterOutput)
    def get(self, request, pk):
        center = centers_for_user(request.user).filter(pk=pk).first()
        if center is None:
            raise Http404("No such center.")
        return Response(CenterOutput(_with_roles(request.user, [center])[0]).data)
