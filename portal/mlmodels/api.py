"""Model registry API: list, upload a zipped bundle, detail, activate, delete an unused version."""
from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.centers.access import IsCenterMemberOrSuperuser
from portal.centers.policy import Action
from portal.core.errors import DomainError, NotFound
from portal.core.serializers import JsonInputSerializer
from portal.mlmodels import selectors, services
from portal.mlmodels.access import access_model_center, access_model_version
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
        used = getattr(obj, "is_used", None)  # annotated by selectors.model_version_list
        return services.model_is_used(model_version=obj) if used is None else used


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
            raise NotFound(_("Not found."))
        rows = selectors.model_version_list(user=request.user)
        return Response(ModelVersionOutput(rows, many=True).data)

    @extend_schema(request=ModelUploadInputSerializer, responses={201: ModelVersionOutput})
    def post(self, request):
        data = self.ModelUploadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        center = access_model_center(user=request.user, id=data.validated_data.get("center_id"))
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
        return Response(ModelVersionOutput(access_model_version(user=request.user, id=model_version_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, model_version_id):
        model_version = access_model_version(user=request.user, id=model_version_id, action=Action.MODELS_MANAGE)
        services.model_delete(model_version=model_version, user=request.user)
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
        model_version = access_model_version(user=request.user, id=model_version_id)
        data = self.ModelActivateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        center_id = data.validated_data.get("center_id", model_version.center_id)
        if center_id is None and not request.user.is_superuser:
            raise DomainError(_("Give the center_id of a center you administer."), status_code=403)
        center = access_model_center(user=request.user, id=center_id)
        row = services.model_activate(model_version=model_version, center=center, user=request.user)
        return Response(self.ModelActivateOutputSerializer(
            {"center_id": row.center_id, "model_version_id": row.model_version_id}).data)
