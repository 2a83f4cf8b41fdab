"""REST API: the centers the current user belongs to, with their roles there."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.centers.access import access_center
from portal.centers.selectors import centers_for_user, centers_with_roles


class CenterOutput(serializers.Serializer):
    id = serializers.UUIDField()
    code = serializers.CharField()
    name = serializers.CharField()
    time_zone = serializers.CharField(help_text="IANA zone the portal shows this center's times in; "
                                                "API times are UTC ISO-8601.")
    roles = serializers.ListField(child=serializers.CharField())


class CenterListApi(APIView):
    """Centers where you hold a role (none for a site auditor)."""

    @extend_schema(responses=CenterOutput(many=True))
    def get(self, request):
        centers = list(centers_for_user(request.user))
        return Response(CenterOutput(centers_with_roles(request.user, centers), many=True).data)


class CenterDetailApi(APIView):
    """One of your centers."""

    @extend_schema(responses=CenterOutput)
    def get(self, request, pk):
        center = access_center(user=request.user, id=pk)
        return Response(CenterOutput(centers_with_roles(request.user, [center])[0]).data)
