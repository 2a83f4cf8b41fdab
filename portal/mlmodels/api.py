"""Model registry API: list, upload a zipped bundle, detail, activate, delete an unused version."""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.centers.models import Center
from portal.centers.selectors import center_ids_for_user
from portal.core.api import DomainError
from portal.core.serializers import JsonInputSerializer
from portal.jobs.permissions import IsCenterMemberOrSuperuser
from portal.mlmodels import selectors, services
from portal.mlmodels.models import ModelVersion


class ModelVersionOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    version = serializers.CharField()
    center_id = serializers.UUIDField(allow_null=True)
    class_names = serializers.ListField(child=serializers.CharField())
    metrics = serializers.DictField()
    weights_sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()
    is_used = serializers.SerializerMethodField()

    def get_is_used(self, obj: ModelVersion) -> bool:
        return services.model_is_used(model_version=obj)


def _center_or_404(user, center_id) -> Center | None:
    if center_id is None:
        return None
    if not user.is_superuser and center_id not in center_ids_for_user(user):
        raise Http404
    center = Center.objects.filter(pk=center_id).first()
    if center is None:
        raise Http404
    return center


def _model_or_404(user, model_version_id) -> ModelVersion:
    model_version = selectors.model_version_get(user=user, model_version_id=model_version_id)
    if model_version is None:
        raise Http404
    return model_version


class ModelListApi(APIView):
    """Registered model versions visible to the user (site-wide and their centers')."""

    permission_classes = [IsCenterMemberOrSuperuser]

    parser_classes = [MultiPartParser]

    class ModelUploadInputSerializer(JsonInputSerializer):
        file = serializers.FileField(help_text="A zip of a model bundle directory.")
        center_id = serializers.UUIDField(required=False, allow_null=True,
                                          help_text="Owner center; empty for a site-wide model (superuser).")
        activate = serializers.BooleanField(default=False)

    @extend_schema(responses=ModelVersionOutput(many=True))
    def get(self, request):
        if not selectors.user_sees_registry(request.user):
            raise Http404
        rows = selectors.model_version_list(user=request.user)
        return Response(ModelVersionOutput(rows, many=True).data)

    @extend_schema(request=ModelUploadInputSerializer, responses={201: ModelVersionOutput})
    def post(self, request):
        data = self.ModelUploadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        center = _center_or_404(request.user, data.validated_data.get("center_id"))
        model_version = services.model_upload_bundle(
            uploaded_file=data.validated_data["file"], center=center, user=request.user,
            activate=data.validated_data["activate"],
        )
        return Response(ModelVersionOutput(model_version).data, status=status.HTTP_201_CREATED)


class ModelDetailApi(APIView):
    """One model version; DELETE removes a version no job has used."""

    permission_classes = [IsCenterMemberOrSuperuser]

    @extend_schema(responses=ModelVersionOutput)
    def get(self, request, model_version_id):
        return Response(ModelVersionOutput(_model_or_404(request.user, model_version_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, model_version_id):
        services.model_delete(model_version=_model_or_404(request.user, model_version_id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelActivateApi(APIView):
    """Make a model version the active model of a center (or the site default, for superusers)."""

    permission_classes = [IsCenterMemberOrSuperuser]

    class ModelActivateInputSerializer(JsonInputSerializer):
        center_id = serializers.UUIDField(required=False, allow_null=True)

    class ModelActivateOutputSerializer(serializers.Serializer):
        center_id = serializers.UUIDField(allow_null=True)
        model_version_id = serializers.UUIDField()

    @extend_schema(request=ModelActivateInputSerializer, responses=ModelActivateOutputSerializer)
    def post(self, request, model_version_id):
        model_version = _model_or_404(request.user, model_version_id)
        data = self.ModelActivateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        center_id = data.validated_data.get("center_id", model_version.center_id)
        center = _center_or_404(request.user, center_id)
        if center is None and not request.user.is_superuser:
            raise DomainError("Give the center_id of a center you administer.", status_code=403)
        row = services.model_activate(model_version=model_version, center=center, user=request.user)
        return Response(self.ModelActivateOutputSerializer(
            {"center_id": row.center_id, "model_version_id": row.model_version_id}).data)
