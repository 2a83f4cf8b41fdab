"""Review REST API (/api/v1/review/...): the viewer's data, decisions, adjudications, drawn instances,
COCO export and pick lists. Small views per operation; business rules live in ``services``.

The image payload is built as plain dicts by ``selectors.image_review_payload`` (hundreds of instances
with masks: DRF field-by-field serialisation would dominate the viewer's load time); its serializer here
documents the shape for the schema.
"""
from __future__ import annotations

from django.http import JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.audit.services import audit_record
from portal.centers.policy import Action
from portal.core.serializers import JsonInputSerializer
from portal.review import exports, selectors, services
from portal.review.access import access_detection, access_image, access_pick_list, access_session
from portal.review.classes import CLASS_NAMES, TARGET_CLASS
from portal.review.lib.geometry import MAX_MASK_SIDE_PX, MAX_VERTICES
from portal.review.models import Verdict


class _DecisionOut(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    class_name = serializers.CharField(allow_blank=True)
    updated_at = serializers.DateTimeField()


class _FinalOut(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    class_name = serializers.CharField()
    decided_by = serializers.CharField(help_text='"adjudication" or "unanimous:<n reviewers>"')


class StateOutput(serializers.Serializer):
    id = serializers.UUIDField()
    mine = _DecisionOut(allow_null=True)
    others = serializers.DictField(child=serializers.IntegerField())
    reviewers = serializers.IntegerField()
    agreement = serializers.ChoiceField(choices=["none", "single", "agree", "disagree"])
    adjudication = serializers.DictField(allow_null=True)
    final = _FinalOut(allow_null=True)


class ImageReviewApi(APIView):
    """One image with its current detections (masks as COCO RLE), my decisions and the final calls."""

    class OutputSerializer(serializers.Serializer):
        class InstanceOut(StateOutput):
            result_set = serializers.UUIDField()
            source = serializers.CharField()
            index = serializers.IntegerField()
            class_name = serializers.CharField()
            score = serializers.FloatField(allow_null=True)
            box = serializers.ListField(child=serializers.FloatField())
            rle = serializers.DictField()
            polygon = serializers.ListField(allow_null=True)
            area_px = serializers.FloatField()
            area_um2 = serializers.FloatField(allow_null=True)
            diameter_um = serializers.FloatField(allow_null=True)
            centroid_px = serializers.ListField(child=serializers.FloatField())
            centroid_um = serializers.ListField(child=serializers.FloatField(), allow_null=True)
            created_by = serializers.CharField(allow_null=True)
            editable = serializers.BooleanField()

            class Meta:
                ref_name = "ReviewInstanceState"

        image = serializers.DictField()
        classes = serializers.ListField(child=serializers.DictField())
        rule = serializers.CharField()
        rule_id = serializers.CharField()
        me = serializers.DictField()
        result_sets = serializers.DictField()
        instances = InstanceOut(many=True)
        agreement = serializers.DictField(child=serializers.IntegerField())
        review = serializers.DictField(help_text="threshold: the reviewer's score threshold (cells to review).")

        class Meta:
            ref_name = "ReviewImageOutput"

    @extend_schema(responses=OutputSerializer)
    def get(self, request, image_id):
        image = access_image(user=request.user, id=image_id)
        data = selectors.image_review_payload(user=request.user, image=image,
                                              threshold=selectors.review_threshold_get(request.session))
        audit_record(actor=request.user, action="review.detections.read", center=image.center_id, obj=image,
                     after={"instances": len(data["instances"])}, request=request)
        return Response(data)


class ReviewThresholdApi(APIView):
    """The reviewer's score threshold: model detections at or above it (and drawn cells) are the cells to
    review, counted alike by the viewer, its progress and the session page. Kept in the login session."""

    class InputSerializer(JsonInputSerializer):
        threshold = serializers.FloatField(min_value=0.0, max_value=1.0)

        class Meta:
            ref_name = "ReviewThresholdInput"

    @extend_schema(request=InputSerializer, responses=InputSerializer)
    def put(self, request):
        data = _valid(self.InputSerializer, request.data)
        request.session[selectors.REVIEW_THRESHOLD_SESSION_KEY] = data["threshold"]
        return Response({"threshold": selectors.review_threshold_get(request.session)})


class _VerdictInput(JsonInputSerializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    class_name = serializers.ChoiceField(choices=[("", "unchanged")] + [(n, n) for n in CLASS_NAMES],
                                         required=False, default="", allow_blank=True)


class DecisionApi(APIView):
    """My decision on one detection: PUT sets it (accept/reject/uncertain, optional corrected class),
    DELETE removes it. Other reviewers' decisions are never touched."""

    class InputSerializer(_VerdictInput):
        class Meta:
            ref_name = "ReviewDecisionInput"

    @extend_schema(request=InputSerializer, responses=StateOutput)
    def put(self, request, detection_id):
        detection = access_detection(user=request.user, id=detection_id, action=Action.REVIEW_DECIDE)
        data = _valid(self.InputSerializer, request.data)
        services.decision_set(user=request.user, detection=detection, verdict=data["verdict"],
                              class_name=data["class_name"], request=request)
        return Response(selectors.detection_state(user=request.user, detection=detection))

    @extend_schema(responses={200: StateOutput})
    def delete(self, request, detection_id):
        detection = access_detection(user=request.user, id=detection_id, action=Action.REVIEW_DECIDE)
        services.decision_clear(user=request.user, detection=detection, request=request)
        return Response(selectors.detection_state(user=request.user, detection=detection))


class AdjudicationApi(APIView):
    """The center admin's final call on one detection: PUT sets it, DELETE removes it."""

    class InputSerializer(_VerdictInput):
        note = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)

        class Meta:
            ref_name = "ReviewAdjudicationInput"

    @extend_schema(request=InputSerializer, responses=StateOutput)
    def put(self, request, detection_id):
        detection = access_detection(user=request.user, id=detection_id, action=Action.REVIEW_ADJUDICATE)
        data = _valid(self.InputSerializer, request.data)
        services.adjudication_set(user=request.user, detection=detection, verdict=data["verdict"],
                                  class_name=data["class_name"], note=data["note"], request=request)
        return Response(selectors.detection_state(user=request.user, detection=detection))

    @extend_schema(responses={200: StateOutput})
    def delete(self, request, detection_id):
        detection = access_detection(user=request.user, id=detection_id, action=Action.REVIEW_ADJUDICATE)
        services.adjudication_clear(user=request.user, detection=detection, request=request)
        return Response(selectors.detection_state(user=request.user, detection=detection))


class _InstanceOut(serializers.Serializer):
    id = serializers.UUIDField()
    result_set = serializers.UUIDField(source="result_set_id")
    source = serializers.CharField()
    index = serializers.IntegerField()
    class_name = serializers.CharField()
    polygon = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    box = serializers.SerializerMethodField()
    rle = serializers.JSONField(source="mask_rle")
    area_px = serializers.FloatField()
    area_um2 = serializers.FloatField(allow_null=True)
    diameter_um = serializers.FloatField(allow_null=True)
    centroid_px = serializers.SerializerMethodField()

    def get_box(self, obj) -> list[float]:
        return [obj.x1, obj.y1, obj.x2, obj.y2]

    def get_centroid_px(self, obj) -> list[float]:
        return [obj.centroid_x_px, obj.centroid_y_px]


def _vertex() -> serializers.ListField:
    return serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2)


class InstanceCreateApi(APIView):
    """Draw a new instance on an image: a polygon in image pixels. Stored as a manual detection."""

    class InputSerializer(JsonInputSerializer):
        polygon = serializers.ListField(child=_vertex(), min_length=3, max_length=MAX_VERTICES,
                                        help_text="[[x, y], ...] in image pixels, top-left origin")
        class_name = serializers.ChoiceField(choices=[(n, n) for n in CLASS_NAMES], default=TARGET_CLASS)

        class Meta:
            ref_name = "ReviewInstanceCreateInput"

    @extend_schema(request=InputSerializer, responses={201: _InstanceOut})
    def post(self, request, image_id):
        image = access_image(user=request.user, id=image_id, action=Action.REVIEW_DECIDE)
        data = _valid(self.InputSerializer, request.data)
        det = services.manual_instance_create(user=request.user, image=image, polygon=data["polygon"],
                                              class_name=data["class_name"], request=request)
        return Response(_InstanceOut(det).data, status=status.HTTP_201_CREATED)


class InstanceApi(APIView):
    """Edit (vertices, class) or delete a drawn instance (its author or a center admin)."""

    class InputSerializer(JsonInputSerializer):
        polygon = serializers.ListField(child=_vertex(), min_length=3, max_length=MAX_VERTICES, required=False)
        class_name = serializers.ChoiceField(choices=[(n, n) for n in CLASS_NAMES], required=False)

        class Meta:
            ref_name = "ReviewInstanceUpdateInput"

    @extend_schema(request=InputSerializer, responses=_InstanceOut)
    def patch(self, request, detection_id):
        det = access_detection(user=request.user, id=detection_id, action=Action.REVIEW_DECIDE)
        data = _valid(self.InputSerializer, request.data)
        det = services.manual_instance_update(user=request.user, detection=det, polygon=data.get("polygon"),
                                              class_name=data.get("class_name"), request=request)
        return Response(_InstanceOut(det).data)

    @extend_schema(responses={204: None})
    def delete(self, request, detection_id):
        det = access_detection(user=request.user, id=detection_id, action=Action.REVIEW_DECIDE)
        services.manual_instance_delete(user=request.user, detection=det, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _CorrectionOut(serializers.Serializer):
    id = serializers.UUIDField()
    operation = serializers.ChoiceField(choices=["edit", "split", "merge"])
    rle = serializers.DictField(help_text="COCO compressed RLE of the whole image")
    polygon = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()), allow_null=True)
    box = serializers.ListField(child=serializers.FloatField())
    area_px = serializers.FloatField()
    area_um2 = serializers.FloatField(allow_null=True)
    diameter_um = serializers.FloatField(allow_null=True)
    centroid_px = serializers.ListField(child=serializers.FloatField())
    partner = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    reverted = serializers.BooleanField()


# Runs of a cell's mask: a few per column of a crop at most 1024 wide; a longer list is not a cell (and
# would cost seconds of validation per request).
MAX_MASK_RUNS = 16 * MAX_MASK_SIDE_PX


class _CropMaskInput(serializers.Serializer):
    origin = serializers.ListField(child=serializers.IntegerField(min_value=0), min_length=2, max_length=2,
                                   help_text="[x, y] of the crop's top-left pixel in the image")
    size = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_MASK_SIDE_PX),
                                 min_length=2, max_length=2, help_text="[height, width] of the crop")
    counts = serializers.ListField(child=serializers.IntegerField(min_value=0), min_length=1,
                                   max_length=MAX_MASK_RUNS,
                                   help_text="uncompressed COCO RLE of the crop (column-major, background first)")

    class Meta:
        ref_name = "ReviewCropMaskInput"


class CorrectionApi(APIView):
    """My corrected mask of one detection (model or drawn): GET my history (newest first, reverted ones
    marked), PUT a new correction (a polygon or a crop mask: inside the image, non-empty), DELETE undoes my
    newest correction (409 when there is none)."""

    class InputSerializer(JsonInputSerializer):
        polygon = serializers.ListField(child=_vertex(), min_length=3, max_length=MAX_VERTICES, required=False)
        mask = _CropMaskInput(required=False)

        class Meta:
            ref_name = "ReviewCorrectionInput"

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewCorrectionOutput"

        detection = serializers.UUIDField()
        current = _CorrectionOut(allow_null=True)
        history = _CorrectionOut(many=True)

    def _out(self, request, detection):
        history = selectors.correction_history(user=request.user, detection=detection)
        current = next((c for c in history if c.reverted_at is None), None)
        return {"detection": str(detection.pk), "current": selectors.correction_out(current),
                "history": [selectors.correction_out(c) for c in history]}

    @extend_schema(responses=OutputSerializer)
    def get(self, request, detection_id):
        detection = access_detection(user=request.user, id=detection_id)
        return Response(self._out(request, detection))

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def put(self, request, detection_id):
        detection = access_detection(user=request.user, id=detection_id, action=Action.REVIEW_DECIDE)
        data = _valid(self.InputSerializer, request.data)
        services.correction_set(user=request.user, detection=detection, polygon=data.get("polygon"),
                                mask=data.get("mask"), request=request)
        return Response(self._out(request, detection))

    @extend_schema(responses=OutputSerializer)
    def delete(self, request, detection_id):
        detection = access_detection(user=request.user, id=detection_id, action=Action.REVIEW_DECIDE)
        services.correction_revert(user=request.user, detection=detection, request=request)
        return Response(self._out(request, detection))


class SplitApi(APIView):
    """Split a cell along a straight line (my view of its mask): the cell keeps the larger part as my
    correction, the other part becomes a new drawn cell."""

    class InputSerializer(JsonInputSerializer):
        line = serializers.ListField(child=_vertex(), min_length=2, max_length=2,
                                     help_text="[[x, y], [x, y]] in image pixels")

        class Meta:
            ref_name = "ReviewSplitInput"

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewSplitOutput"

        correction = _CorrectionOut()
        new_instance = _InstanceOut()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, detection_id):
        detection = access_detection(user=request.user, id=detection_id, action=Action.REVIEW_DECIDE)
        data = _valid(self.InputSerializer, request.data)
        correction, new = services.correction_split(user=request.user, detection=detection, line=data["line"],
                                                    request=request)
        return Response({"correction": selectors.correction_out(correction), "new_instance": _InstanceOut(new).data},
                        status=status.HTTP_201_CREATED)


class MergeApi(APIView):
    """Merge another cell of the same image into this one (my correction; my decision on the other
    becomes reject)."""

    class InputSerializer(JsonInputSerializer):
        other = serializers.UUIDField(help_text="the detection merged into this one")

        class Meta:
            ref_name = "ReviewMergeInput"

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewMergeOutput"

        correction = _CorrectionOut()
        other = StateOutput()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, detection_id):
        detection = access_detection(user=request.user, id=detection_id, action=Action.REVIEW_DECIDE)
        data = _valid(self.InputSerializer, request.data)
        other = access_detection(user=request.user, id=data["other"], action=Action.REVIEW_DECIDE)
        correction = services.correction_merge(user=request.user, detection=detection, other=other, request=request)
        return Response({"correction": selectors.correction_out(correction),
                         "other": selectors.detection_state(user=request.user, detection=other)},
                        status=status.HTTP_201_CREATED)


class ImageDoneApi(APIView):
    """My "finished with this image" mark: PUT {"done": true|false}."""

    class InputSerializer(JsonInputSerializer):
        done = serializers.BooleanField()

        class Meta:
            ref_name = "ReviewImageDoneInput"

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewImageDoneOutput"

        image = serializers.UUIDField()
        done = serializers.BooleanField()
        next_open_id = serializers.UUIDField(allow_null=True, help_text="the next image I have not marked done")

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def put(self, request, image_id):
        image = access_image(user=request.user, id=image_id, action=Action.REVIEW_DECIDE)
        data = _valid(self.InputSerializer, request.data)
        done = services.image_done_set(user=request.user, image=image, done=data["done"], request=request)
        payload_image = selectors.image_done_summary(user=request.user, image=image)
        return Response({"image": str(image.pk), "done": done, "next_open_id": payload_image["next_open_id"]})


class CocoExportApi(APIView):
    """COCO instances JSON of reviewed session(s): accepted, class-corrected and drawn instances (final call
    accept); categories 1..6 by name in labels.md order; ``info.selection_rule`` states the rule."""

    @extend_schema(
        parameters=[OpenApiParameter(
            "session", {"type": "array", "items": {"type": "string", "format": "uuid"}, "minItems": 1,
                        "maxItems": 50},
            required=True, description="Session id(s), repeated: ?session=<id>&session=<id>."),
                    OpenApiParameter("images", OpenApiTypes.STR, enum=["reviewed", "all"],
                                     description="reviewed (default): only images whose every cell to review "
                                                 "has a decision; all: every image")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        sessions = selectors.sessions_from_query(user=request.user, raw_ids=request.GET.getlist("session"))
        data = exports.coco_export(sessions=sessions, **selectors.coco_options_from_query(
            images=request.GET.get("images", "reviewed"), login_session=request.session))
        for s in sessions:
            audit_record(actor=request.user, action="review.export.coco", center=s.center_id, obj=s,
                         after={"annotations": len(data["annotations"])}, request=request)
        response = JsonResponse(data)
        response["Content-Disposition"] = 'attachment; filename="reviewed-coco.json"'
        return response


class _PickListOut(serializers.Serializer):
    id = serializers.UUIDField()
    session = serializers.UUIDField(source="session_id")
    class_name = serializers.CharField()
    rule = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.username")
    items = inline_serializer("PickListItemOut", fields={
        "rank": serializers.IntegerField(), "detection": serializers.UUIDField(source="detection_id"),
        "decided_by": serializers.CharField(), "score": serializers.FloatField(allow_null=True),
        "centroid_x_px": serializers.FloatField(), "centroid_y_px": serializers.FloatField(),
        "centroid_x_um": serializers.FloatField(allow_null=True),
        "centroid_y_um": serializers.FloatField(allow_null=True),
        "diameter_um": serializers.FloatField(allow_null=True),
    }, many=True, source="items.all")


class PickListCreateApi(APIView):
    """Freeze a pick list of the session's finally accepted round spermatids, ordered by score."""

    @extend_schema(request=None, responses={201: _PickListOut})
    def post(self, request, session_id):
        session = access_session(user=request.user, id=session_id, action=Action.REVIEW_EXPORT)
        pick_list = services.pick_list_create(user=request.user, session=session, request=request)
        return Response(_PickListOut(pick_list).data, status=status.HTTP_201_CREATED)


class PickListApi(APIView):
    """One pick list with its items."""

    @extend_schema(responses=_PickListOut)
    def get(self, request, pick_list_id):
        pick_list = access_pick_list(user=request.user, id=pick_list_id)
        audit_record(actor=request.user, action="review.picklist.read", center=pick_list.center_id, obj=pick_list,
                     request=request)
        return Response(_PickListOut(pick_list).data)


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
