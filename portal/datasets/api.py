"""Datasets API: a session's training use, dataset versions (list, create, detail), the audited COCO zip."""
from __future__ import annotations

from typing import BinaryIO

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.centers.access import IsCenterMember, access_center, access_centers
from portal.centers.policy import Action
from portal.core.pagination import Pagination
from portal.core.serializers import JsonInputSerializer
from portal.datasets import selectors, services
from portal.datasets.access import access_dataset_version
from portal.imaging.access import access_session


class TrainingUseOutput(serializers.Serializer):
    session_id = serializers.UUIDField()
    consent = serializers.BooleanField()
    sorted_population = serializers.CharField()
    sorted_class = serializers.CharField()
    purity_percent = serializers.FloatField(allow_null=True)


def _use_out(session, use) -> dict:
    return {"session_id": session.pk, "consent": bool(use and use.consent),
            "sorted_population": use.sorted_population if use else "", "sorted_class": use.sorted_class if use else "",
            "purity_percent": use.purity_percent if use else None}


class SessionTrainingUseApi(APIView):
    """Whether a session may train models (its center's decision, default no) and its sorted population."""

    permission_classes = [IsCenterMember]

    class TrainingUseInputSerializer(JsonInputSerializer):
        consent = serializers.BooleanField()
        sorted_population = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
        sorted_class = serializers.CharField(required=False, allow_blank=True, max_length=50, default="",
                                             help_text="Class of the sorted population (one of the six); empty: "
                                                       "not a sorted population.")
        purity_percent = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=100,
                                                default=None)

    @extend_schema(responses=TrainingUseOutput)
    def get(self, request, session_id):
        session = access_session(user=request.user, id=session_id, action=Action.DATASETS_READ)
        return Response(TrainingUseOutput(_use_out(session, selectors.training_use_of(session))).data)

    @extend_schema(request=TrainingUseInputSerializer, responses=TrainingUseOutput)
    def put(self, request, session_id):
        session = access_session(user=request.user, id=session_id, action=Action.DATASETS_MANAGE)
        data = self.TrainingUseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        use = services.training_use_set(user=request.user, session=session, request=request, **data.validated_data)
        return Response(TrainingUseOutput(_use_out(session, use)).data)


class DatasetVersionOutput(serializers.Serializer):
    id = serializers.UUIDField()
    line = serializers.CharField(source="line.name")
    number = serializers.IntegerField()
    center_id = serializers.UUIDField()
    center_ids = serializers.ListField(child=serializers.CharField())
    manifest_sha256 = serializers.CharField()
    counts = serializers.DictField()
    created_at = serializers.DateTimeField()


class DatasetVersionDetailOutput(DatasetVersionOutput):
    manifest = serializers.DictField(source="manifest_for_user", help_text="Without the per-file list (the zip export carries it) and "
                                               "without other pooled centers' patients and sessions.")


def _detail(user, version) -> dict:
    version.manifest_for_user = services.manifest_visible(user=user, version=version)
    return DatasetVersionDetailOutput(version).data


class DatasetListApi(APIView):
    """Dataset versions of the user's centers; POST snapshots sessions as the next version of a line."""

    permission_classes = [IsCenterMember]
    pagination_class = Pagination  # the schema shows the page envelope

    class DatasetCreateInputSerializer(JsonInputSerializer):
        center_id = serializers.UUIDField()
        name = serializers.CharField(max_length=120)
        session_ids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=500)

    @extend_schema(responses=DatasetVersionOutput(many=True))
    def get(self, request):
        access_centers(user=request.user, action=Action.DATASETS_READ)
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.dataset_version_list(user=request.user), request, view=self)
        return paginator.get_paginated_response(DatasetVersionOutput(page, many=True).data)

    @extend_schema(request=DatasetCreateInputSerializer, responses={201: DatasetVersionDetailOutput})
    def post(self, request):
        data = self.DatasetCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        center = access_center(user=request.user, id=data.validated_data["center_id"], action=Action.DATASETS_MANAGE)
        sessions = [access_session(user=request.user, id=i, action=Action.DATASETS_MANAGE)
                    for i in dict.fromkeys(data.validated_data["session_ids"])]
        version = services.dataset_version_create(user=request.user, center=center, name=data.validated_data["name"],
                                                  sessions=sessions, request=request)
        return Response(_detail(request.user, version), status=status.HTTP_201_CREATED)


class DatasetDetailApi(APIView):
    """One dataset version: counts per split, class and label source, test patients, selection rules."""

    permission_classes = [IsCenterMember]

    @extend_schema(responses=DatasetVersionDetailOutput)
    def get(self, request, dataset_version_id):
        return Response(_detail(request.user, access_dataset_version(user=request.user, id=dataset_version_id)))


class DatasetExportApi(APIView):
    """The version as a COCO zip (images, annotations, manifest with sha256), only the user's centers'
    images; audited."""

    permission_classes = [IsCenterMember]

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request, dataset_version_id):
        version = access_dataset_version(user=request.user, id=dataset_version_id)
        return dataset_zip_response(services.dataset_version_export_zip(user=request.user, version=version,
                                                                        request=request), version)


def dataset_zip_response(handle: BinaryIO, version) -> FileResponse:
    """Stream the export zip ``handle`` (an open temporary file, closed when the response ends)."""
    return FileResponse(handle, content_type="application/zip", as_attachment=True,
                        filename=f"dataset-{version.line.pk}-v{version.number}.zip")
