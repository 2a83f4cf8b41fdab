"""Results API: the result sets of an image and the detections of a set (each read is audited)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.audit.services import audit_record
from portal.centers.access import IsCenterMember
from portal.centers.policy import Action
from portal.imaging.access import access_image
from portal.imaging.selectors import user_is_blinded
from portal.results import selectors
from portal.results.access import access_result_set
from portal.results.models import ResultSetStatus, ResultSource

MODEL_FIELDS = ("model_version_id", "model_version")


def _unnamed(rows: list[dict], user) -> list[dict]:
    """No model name or id for a user blinded from any session (see ``portal.jobs.selectors``)."""
    if user_is_blinded(user):
        for row in rows:
            for name in MODEL_FIELDS:
                row.pop(name, None)
    return rows


class ResultSetOutput(serializers.Serializer):
    id = serializers.UUIDField()
    image_id = serializers.UUIDField()
    source = serializers.ChoiceField(choices=ResultSource.choices)
    status = serializers.ChoiceField(choices=ResultSetStatus.choices)
    job_id = serializers.UUIDField(allow_null=True)
    model_version_id = serializers.UUIDField(allow_null=True, required=False,
                                             help_text="Left out for users blinded from a session.")
    model_version = serializers.SerializerMethodField(help_text="Left out for users blinded from a session.")
    parameters = serializers.DictField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    detection_count = serializers.IntegerField(required=False)
    scale_status = serializers.CharField(help_text="physical, out_of_range, unknown, model_unscaled ('' manual)")
    scale_warning = serializers.CharField(help_text="Shown to users when not empty.")
    model_um_per_px = serializers.FloatField(allow_null=True)

    def get_model_version(self, obj) -> str | None:
        return str(obj.model_version) if obj.model_version_id else None


class DetectionOutput(serializers.Serializer):
    id = serializers.UUIDField()
    index = serializers.IntegerField()
    source = serializers.CharField()
    class_name = serializers.CharField()
    score = serializers.FloatField(allow_null=True)
    box = serializers.SerializerMethodField(help_text="[x1, y1, x2, y2] in pixels")
    mask_rle = serializers.DictField()
    polygon = serializers.JSONField(allow_null=True)
    area_px = serializers.FloatField()
    area_um2 = serializers.FloatField(allow_null=True)
    diameter_um = serializers.FloatField(allow_null=True)
    centroid_px = serializers.SerializerMethodField()
    centroid_um = serializers.SerializerMethodField()

    def get_box(self, obj) -> list[float]:
        return [obj.x1, obj.y1, obj.x2, obj.y2]

    def get_centroid_px(self, obj) -> list[float]:
        return [obj.centroid_x_px, obj.centroid_y_px]

    def get_centroid_um(self, obj) -> list[float] | None:
        if obj.centroid_x_um is None:
            return None
        return [obj.centroid_x_um, obj.centroid_y_um]


class ResultSetDetailOutput(ResultSetOutput):
    detections = DetectionOutput(many=True)


class ImageResultSetsApi(APIView):
    """Every result set of an image (model runs and manual sets), newest first; no detections."""

    permission_classes = [IsCenterMember]

    @extend_schema(responses=ResultSetOutput(many=True))
    def get(self, request, image_id):
        image = access_image(user=request.user, id=image_id, action=Action.RESULTS_READ)
        rows = selectors.result_set_list(image=image)
        return Response(_unnamed(ResultSetOutput(rows, many=True).data, request.user))


class ResultSetDetailApi(APIView):
    """One result set with its detections (boxes, RLE masks, measurements in µm). Audited read."""

    permission_classes = [IsCenterMember]

    @extend_schema(responses=ResultSetDetailOutput)
    def get(self, request, result_set_id):
        result_set = access_result_set(user=request.user, id=result_set_id)
        detections = list(selectors.detection_list(result_set=result_set))
        audit_record(actor=request.user, action="detections.read", center=result_set.center_id, obj=result_set,
                     after={"image": str(result_set.image_id), "detections": len(detections)}, request=request)
        data = _unnamed([ResultSetOutput(result_set).data], request.user)[0]
        data["detection_count"] = len(detections)
        data["detections"] = DetectionOutput(detections, many=True).data
        return Response(data)
