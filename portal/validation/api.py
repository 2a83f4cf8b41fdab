"""REST API of validation studies.

Two families of serializers, kept apart on purpose:

- administrator views (``Study*Api``) show the design, the frozen hash and, after unblinding, results;
- blinded views for validators and stain technicians (``My*Api``, ``Stain*Api``) use serializers that
  structurally have no model fields: a cell is its opaque ``cell`` id, a crop URL and the user's own
  entries, nothing else. Every blinded response has the same shape whatever the cell's source.
"""
from __future__ import annotations

import math

from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.audit.services import audit_record
from portal.centers.policy import Action
from portal.core.errors import DomainError, NotFound
from portal.core.serializers import JsonInputSerializer
from portal.validation import selectors, services
from portal.validation.access import (
    access_stain_field,
    access_stain_image,
    access_study,
    access_study_validator,
)
from portal.validation.models import (
    Design,
    GroundTruthRule,
    Morphology,
    Prm1Method,
    RegistrationMethod,
    Stain,
    StainChannel,
    StudyStatus,
)

CHOICE_BLANK = [("", "not entered")]


# --- administrators ---------------------------------------------------------------------------------
class StudyOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.CharField()
    center = serializers.CharField(source="center.code")
    centers = serializers.SerializerMethodField()
    design = serializers.CharField()
    ground_truth_rule = serializers.CharField()
    prm1_method = serializers.CharField()
    prm1_warning = serializers.CharField()
    model_version = serializers.CharField(source="model_version_id")
    score_threshold = serializers.FloatField()
    candidate_threshold = serializers.FloatField()
    subsample_size = serializers.IntegerField(allow_null=True)
    subsample_seed = serializers.IntegerField()
    validators_per_cell = serializers.IntegerField()
    bootstrap_seed = serializers.IntegerField()
    bootstrap_draws = serializers.IntegerField()
    model_output_sha256 = serializers.CharField()
    scores_sha256 = serializers.CharField()
    validators = serializers.SerializerMethodField()
    signatures = serializers.SerializerMethodField()
    cells = serializers.SerializerMethodField()
    opened_at = serializers.DateTimeField(allow_null=True)
    locked_at = serializers.DateTimeField(allow_null=True)
    unblinded_at = serializers.DateTimeField(allow_null=True)

    # Lists pass studies from selectors.study_list_with_progress (``center_list`` ... prefetched).
    def get_centers(self, study) -> list[str]:
        centers = getattr(study, "center_list", None)
        if centers is None:
            return sorted(study.centers.values_list("code", flat=True))
        return sorted(c.code for c in centers)

    def get_validators(self, study) -> list[dict]:
        validators = getattr(study, "validator_list", None)
        if validators is None:
            return [
                {"username": v.user.get_username(), "cells": v.assignments.count(),
                 "done": v.assignments.exclude(morphology="").count()}
                for v in study.validators.select_related("user")
            ]
        return [{"username": v.user.get_username(), "cells": v.cell_total, "done": v.cell_done} for v in validators]

    def get_signatures(self, study) -> list[dict]:
        signatures = getattr(study, "signature_list", None)
        if signatures is None:
            signatures = study.signatures.select_related("user")
        return [
            {"username": s.user.get_username(), "full_name": s.full_name, "meaning": s.meaning,
             "signed_at": s.signed_at.isoformat(), "scores_sha256": s.scores_sha256}
            for s in signatures
        ]

    def get_cells(self, study) -> int:
        count = getattr(study, "cell_count", None)
        return study.cells.count() if count is None else count


class StudyListApi(APIView):
    """Studies run by the user's centers (administrators), and creating a draft study."""

    class StudyListInputSerializer(JsonInputSerializer):
        name = serializers.CharField(max_length=200)
        center = serializers.UUIDField()
        centers = serializers.ListField(child=serializers.UUIDField(), required=False, default=list)
        sessions = serializers.ListField(child=serializers.UUIDField(), min_length=1)
        images = serializers.ListField(child=serializers.UUIDField(), required=False, default=list)
        model_version = serializers.UUIDField()
        design = serializers.ChoiceField(choices=Design.choices, default=Design.PICKED_CELLS)
        score_threshold = serializers.FloatField(min_value=0, max_value=1, default=0.5)
        candidate_threshold = serializers.FloatField(min_value=0, max_value=1, default=0.05)
        ground_truth_rule = serializers.ChoiceField(choices=GroundTruthRule.choices, default=GroundTruthRule.EITHER)
        prm1_method = serializers.ChoiceField(choices=Prm1Method.choices, default=Prm1Method.MRNA_IN_SITU)
        subsample_size = serializers.IntegerField(min_value=1, required=False, allow_null=True, default=None)
        validators_per_cell = serializers.IntegerField(min_value=1, max_value=20, default=2)
        crop_um = serializers.FloatField(min_value=5, max_value=200, default=24.0)
        bootstrap_draws = serializers.IntegerField(min_value=100, max_value=20000, default=2000)

    @extend_schema(responses=StudyOutputSerializer(many=True))
    def get(self, request):
        studies = selectors.study_list_with_progress(request.user)
        return Response(StudyOutputSerializer(studies, many=True).data)

    @extend_schema(request=StudyListInputSerializer, responses={201: StudyOutputSerializer})
    def post(self, request):
        if not selectors.user_runs_studies(request.user):
            raise NotFound(_("Not found."))
        data = self.StudyListInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        study = services.study_create(actor=request.user, request=request, **selectors.resolve_study_input(request.user, v))
        return Response(StudyOutputSerializer(study).data, status=status.HTTP_201_CREATED)


class StudyDetailApi(APIView):
    """One study, for its administrators."""

    @extend_schema(responses=StudyOutputSerializer)
    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_MANAGE)
        return Response(StudyOutputSerializer(study).data)


class StudyValidatorsApi(APIView):
    """Add a validator to a draft study (by username)."""

    class StudyValidatorsInputSerializer(JsonInputSerializer):
        username = serializers.CharField(max_length=150)

    @extend_schema(request=StudyValidatorsInputSerializer, responses=StudyOutputSerializer)
    def post(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_MANAGE)
        data = self.StudyValidatorsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.study_validator_add_by_username(actor=request.user, study=study,
                                                 username=data.validated_data["username"], request=request)
        return Response(StudyOutputSerializer(study).data)


class StudyValidatorDeleteApi(APIView):
    """Remove a validator from a draft study."""

    @extend_schema(responses={204: None})
    def delete(self, request, study_id, username):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_MANAGE)
        services.study_validator_remove_by_username(actor=request.user, study=study, username=username,
                                                    request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _TransitionApi(APIView):
    service = None
    action_label = ""

    @extend_schema(request=None, responses=StudyOutputSerializer)
    def post(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_MANAGE)
        study = type(self).service(actor=request.user, study=study, request=request)
        return Response(StudyOutputSerializer(study).data)


class StudyOpenApi(_TransitionApi):
    """Open: freeze the model output and build the blinded cell lists."""

    service = staticmethod(services.study_open)


class _SignedTransitionApi(APIView):
    """A transition that the administrator signs by re-entering their password."""

    service = None

    class SignedTransitionInputSerializer(serializers.Serializer):
        password = serializers.CharField(trim_whitespace=False, help_text="The administrator's password (e-signature).")

    @extend_schema(request=SignedTransitionInputSerializer, responses=StudyOutputSerializer)
    def post(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_MANAGE)
        data = self.SignedTransitionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        study = type(self).service(actor=request.user, study=study, password=data.validated_data["password"],
                                   request=request)
        return Response(StudyOutputSerializer(study).data)


class StudyLockApi(_SignedTransitionApi):
    """Lock once every validator has signed; no score can change afterwards. Needs ``password``."""

    service = staticmethod(services.study_lock_sign)


class StudyUnblindApi(_SignedTransitionApi):
    """Unblind a locked study and compute its statistics. Needs ``password``."""

    service = staticmethod(services.study_unblind_sign)


class StudyResultsApi(APIView):
    """The statistics of an unblinded study (administrators, and its validators after unblinding)."""

    class StudyResultsOutputSerializer(serializers.Serializer):
        study = serializers.UUIDField()
        model_output_sha256 = serializers.CharField()
        scores_sha256 = serializers.CharField()
        results = serializers.DictField()

    @extend_schema(responses=StudyResultsOutputSerializer)
    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_REPORT)
        audit_record(actor=request.user, action="validation.results.read", center=study.center, obj=study,
                     request=request)
        return Response({"study": str(study.pk), "model_output_sha256": study.model_output_sha256,
                         "scores_sha256": study.scores_sha256, "results": study.results})


class FieldSerializer(serializers.Serializer):
    """An image of the study, as blinded users know it."""

    field = serializers.CharField(source="public_id")
    width = serializers.IntegerField(source="image.width")
    height = serializers.IntegerField(source="image.height")
    image_url = serializers.SerializerMethodField()

    def get_image_url(self, field) -> str:
        return reverse("validation:field-image", args=[field.study_id, field.public_id])


class PickSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    field = serializers.CharField()
    x_px = serializers.FloatField()
    y_px = serializers.FloatField()


class StudyPicksApi(APIView):
    """Picked-cells design: the embryologist's own picks (made on images without overlay)."""

    class StudyPicksInputSerializer(JsonInputSerializer):
        field = serializers.CharField(max_length=32)
        x_px = serializers.FloatField(min_value=0)
        y_px = serializers.FloatField(min_value=0)

    @extend_schema(responses=PickSerializer(many=True))
    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_PICK)
        return Response(PickSerializer(selectors.picks_for(request.user, study), many=True).data)

    @extend_schema(request=StudyPicksInputSerializer, responses={201: PickSerializer})
    def post(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_PICK)
        data = self.StudyPicksInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        field = selectors.field_by_public_id(study, data.validated_data["field"])
        if field is None:
            raise DomainError(_("No such field."), status_code=404)
        pick = services.pick_add(actor=request.user, study=study, field=field, x_px=data.validated_data["x_px"],
                                 y_px=data.validated_data["y_px"], request=request)
        return Response(PickSerializer({"id": pick.pk, "field": field.public_id, "x_px": pick.x_px,
                                        "y_px": pick.y_px}).data, status=status.HTTP_201_CREATED)


class StudyPickDeleteApi(APIView):
    """Remove one of your picks (draft only)."""

    @extend_schema(responses={204: None})
    def delete(self, request, study_id, pick_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_PICK)
        services.pick_remove(actor=request.user, study=study, pick_id=pick_id, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class StudyFieldsApi(APIView):
    """The study's images by opaque token (pickers in draft)."""

    @extend_schema(responses=FieldSerializer(many=True))
    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_PICK)
        services.study_fields_ensure(study=study)
        return Response(FieldSerializer(study.fields.select_related("image"), many=True).data)


# --- validators (blinded) -----------------------------------------------------------------------------
class BlindedStudySerializer(serializers.Serializer):
    """A study as a validator sees it: no design detail that could hint at the model's output."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    status = serializers.CharField()
    whole_field = serializers.BooleanField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    signed = serializers.BooleanField()


class BlindedCellSerializer(serializers.Serializer):
    """One cell of a validator's list: its opaque id, its crop and the validator's own entries."""

    cell = serializers.CharField()
    position = serializers.IntegerField()
    crop_url = serializers.CharField()
    morphology = serializers.ChoiceField(choices=CHOICE_BLANK + Morphology.choices)
    prm1 = serializers.ChoiceField(choices=CHOICE_BLANK + Stain.choices)
    pna = serializers.ChoiceField(choices=CHOICE_BLANK + Stain.choices)


def blinded_study(study, membership) -> dict:
    """A study as its validator sees it; ``membership`` from selectors.validator_rows_with_progress
    carries its progress already, any other is counted here."""
    if hasattr(membership, "total"):
        total, done, signed = membership.total, membership.done, membership.signed
    else:
        total = membership.assignments.count()
        done = membership.assignments.exclude(morphology="").count()
        signed = study.signatures.filter(user=membership.user).exists()
    return {
        "id": study.pk, "name": study.name, "status": study.status,
        "whole_field": study.design == Design.WHOLE_FIELD, "total": total, "done": done, "signed": signed,
    }


def blinded_cell(study, assignment) -> dict:
    return {
        "cell": assignment.cell.public_id, "position": assignment.position,
        "crop_url": reverse("validation:cell-crop", args=[study.pk, assignment.cell.public_id]),
        "morphology": assignment.morphology, "prm1": assignment.prm1, "pna": assignment.pna,
    }


class MyStudiesApi(APIView):
    """Studies the user validates."""

    @extend_schema(responses=BlindedStudySerializer(many=True))
    def get(self, request):
        rows = [blinded_study(m.study, m) for m in selectors.validator_rows_with_progress(request.user)]
        return Response(BlindedStudySerializer(rows, many=True).data)


class MyCellsApi(APIView):
    """The validator's own cell list, in their own shuffled order, with progress."""

    class MyCellsOutputSerializer(serializers.Serializer):
        study = BlindedStudySerializer()
        cells = BlindedCellSerializer(many=True)

    @extend_schema(responses=MyCellsOutputSerializer)
    def get(self, request, study_id):
        membership = access_study_validator(user=request.user, id=study_id)
        study = membership.study
        cells = [blinded_cell(study, a) for a in selectors.assignments_for(membership)]
        return Response(self.MyCellsOutputSerializer({"study": blinded_study(study, membership), "cells": cells}).data)


class MyCellContextApi(APIView):
    """The field around one of my cells, for the scoring page's context view: the plain field image (no
    overlay), its size and pixel size, and a marker at this cell only (whole pixels)."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ValidationMyCellContextOutput"

        cell = serializers.CharField()
        field = serializers.CharField()
        image_url = serializers.CharField()
        width = serializers.IntegerField()
        height = serializers.IntegerField()
        um_per_px = serializers.FloatField(allow_null=True)
        marker = inline_serializer("ValidationCellMarker", fields={
            "x_px": serializers.IntegerField(), "y_px": serializers.IntegerField()})

    @extend_schema(responses=OutputSerializer, operation_id="validation_my_cell_context")
    def get(self, request, study_id, cell_id):
        membership = access_study_validator(user=request.user, id=study_id)
        context = selectors.cell_context(membership, cell_id)
        context["image_url"] = reverse("validation:field-image", args=[membership.study_id, context["field"]])
        return Response(self.OutputSerializer(context).data)


class MyCellApi(APIView):
    """Read or write the validator's entries for one cell."""

    class MyCellInputSerializer(JsonInputSerializer):
        morphology = serializers.ChoiceField(choices=CHOICE_BLANK + Morphology.choices, required=False)
        prm1 = serializers.ChoiceField(choices=CHOICE_BLANK + Stain.choices, required=False)
        pna = serializers.ChoiceField(choices=CHOICE_BLANK + Stain.choices, required=False)

    @extend_schema(responses=BlindedCellSerializer, operation_id="validation_my_cell_retrieve")
    def get(self, request, study_id, cell_id):
        membership = access_study_validator(user=request.user, id=study_id)
        study = membership.study
        return Response(BlindedCellSerializer(blinded_cell(study, selectors.assignment_get(membership, cell_id))).data)

    @extend_schema(request=MyCellInputSerializer, responses=BlindedCellSerializer, operation_id="validation_my_cell_update")
    def put(self, request, study_id, cell_id):
        membership = access_study_validator(user=request.user, id=study_id)
        study = membership.study
        data = self.MyCellInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = services.assignment_score(
            actor=request.user, study=study, membership=membership, public_id=cell_id, request=request,
            **data.validated_data,
        )
        return Response(BlindedCellSerializer(blinded_cell(study, assignment)).data)



class MySignApi(APIView):
    """Sign the completed list: re-enter the password; binds a hash of the scores."""

    class MySignInputSerializer(JsonInputSerializer):
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    class MySignOutputSerializer(serializers.Serializer):
        full_name = serializers.CharField()
        meaning = serializers.CharField()
        signed_at = serializers.DateTimeField()
        scores_sha256 = serializers.CharField()

    @extend_schema(request=MySignInputSerializer, responses={201: MySignOutputSerializer})
    def post(self, request, study_id):
        membership = access_study_validator(user=request.user, id=study_id)
        study = membership.study
        data = self.MySignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        signature = services.study_sign(actor=request.user, study=study, membership=membership,
                                        password=data.validated_data["password"], request=request)
        return Response(self.MySignOutputSerializer(signature).data, status=status.HTTP_201_CREATED)


class MyFieldsApi(APIView):
    """Whole field: the study's images (without overlay) where missed cells can be added."""

    @extend_schema(responses=FieldSerializer(many=True))
    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_VALIDATE)
        if study.design != Design.WHOLE_FIELD:
            return Response([])
        return Response(FieldSerializer(study.fields.select_related("image"), many=True).data)


class MyMissedCellApi(APIView):
    """Whole field: add a missed cell by its position on the plain image."""

    class MyMissedCellInputSerializer(JsonInputSerializer):
        x_px = serializers.FloatField(min_value=0)
        y_px = serializers.FloatField(min_value=0)

    @extend_schema(request=MyMissedCellInputSerializer, responses={201: BlindedCellSerializer})
    def post(self, request, study_id, field_id):
        membership = access_study_validator(user=request.user, id=study_id)
        study = membership.study
        field = selectors.field_get_for_validator(membership, field_id)
        data = self.MyMissedCellInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cell = services.missed_cell_add(actor=request.user, study=study, membership=membership, field=field,
                                        request=request, **data.validated_data)
        return Response(BlindedCellSerializer(blinded_cell(study, selectors.assignment_get(membership, cell.public_id))).data,
                        status=status.HTTP_201_CREATED)


# --- stain technicians (blinded) ----------------------------------------------------------------------
class StainCellSerializer(serializers.Serializer):
    cell = serializers.CharField()
    crop_url = serializers.CharField()
    field = serializers.CharField(help_text="The field (opaque id) the cell lies on.")
    x_px = serializers.FloatField(help_text="Where the cell lies on the field, in field pixels.")
    y_px = serializers.FloatField()
    prm1 = serializers.ChoiceField(choices=CHOICE_BLANK + Stain.choices)
    pna = serializers.ChoiceField(choices=CHOICE_BLANK + Stain.choices)


def stain_cell(study, cell) -> dict:
    result = getattr(cell, "stain_result", None)
    return {"cell": cell.public_id, "crop_url": reverse("validation:cell-crop", args=[study.pk, cell.public_id]),
            # whole pixels: a model cell's centroid carries float precision that would tell it from a click
            "field": cell.field.public_id, "x_px": round(cell.x_px), "y_px": round(cell.y_px),
            "prm1": result.prm1 if result else "", "pna": result.pna if result else ""}


class StainStudiesApi(APIView):
    """Studies where the user enters stain results."""

    class StainStudiesOutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        name = serializers.CharField()
        status = serializers.CharField()

    @extend_schema(responses=StainStudiesOutputSerializer(many=True))
    def get(self, request):
        return Response(self.StainStudiesOutputSerializer(selectors.study_list_for_stain(request.user), many=True).data)


class StainCellsApi(APIView):
    """The cells of the user's centers in a study, in random-id order, with stain results entered."""

    @extend_schema(responses=StainCellSerializer(many=True))
    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_STAIN)
        return Response(StainCellSerializer(
            [stain_cell(study, c) for c in selectors.stain_cells_for(request.user, study)], many=True).data)


class StainCellApi(APIView):
    """Enter PRM1/PNA results for one cell."""

    class StainCellInputSerializer(JsonInputSerializer):
        prm1 = serializers.ChoiceField(choices=CHOICE_BLANK + Stain.choices, required=False)
        pna = serializers.ChoiceField(choices=CHOICE_BLANK + Stain.choices, required=False)

    @extend_schema(request=StainCellInputSerializer, responses=StainCellSerializer)
    def put(self, request, study_id, cell_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_STAIN)
        data = self.StainCellInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.stain_enter(actor=request.user, study=study, public_id=cell_id, request=request, **data.validated_data)
        cell = selectors.stain_cells_for(request.user, study).get(public_id=cell_id)
        return Response(StainCellSerializer(stain_cell(study, cell)).data)


class StainRegistrationSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=RegistrationMethod.choices)
    scale = serializers.FloatField(help_text="Stain pixels to field pixels.")
    rotation_deg = serializers.FloatField(help_text="Counter-clockwise on screen (y down).")
    offset_x_px = serializers.FloatField()
    offset_y_px = serializers.FloatField()
    quality = serializers.FloatField(allow_null=True, help_text="Automatic: strength of the correlation peak.")
    stain_points = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))
    field_points = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()))


class StainImageSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    channel = serializers.ChoiceField(choices=StainChannel.choices)
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    um_per_px = serializers.FloatField(allow_null=True)
    image_url = serializers.CharField()
    url = serializers.CharField(help_text="DELETE removes the image.")
    registration_url = serializers.CharField()
    registration = StainRegistrationSerializer()


def stain_image_data(stain_image) -> dict:
    study_id = stain_image.study_id
    points = stain_image.registration_points or {}
    return {
        "id": stain_image.pk, "channel": stain_image.channel, "width": stain_image.width,
        "height": stain_image.height, "um_per_px": stain_image.um_per_px,
        "image_url": reverse("validation:stain-image", args=[study_id, stain_image.pk]),
        "url": reverse("api-validation-stain-image", args=[study_id, stain_image.pk]),
        "registration_url": reverse("api-validation-stain-image-registration", args=[study_id, stain_image.pk]),
        "registration": {
            "method": stain_image.registration_method, "scale": stain_image.scale,
            "rotation_deg": math.degrees(stain_image.rotation_rad), "offset_x_px": stain_image.offset_x_px,
            "offset_y_px": stain_image.offset_y_px, "quality": stain_image.registration_quality,
            "stain_points": points.get("stain", []), "field_points": points.get("field", []),
        },
    }


class StainFieldSerializer(serializers.Serializer):
    field = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    um_per_px = serializers.FloatField(allow_null=True)
    image_url = serializers.CharField(help_text="The plain brightfield image (no overlay).")
    upload_url = serializers.CharField(help_text="POST a fluorescence image here (multipart: channel, file).")
    stain_images = StainImageSerializer(many=True)


def stain_field_data(study, field) -> dict:
    return {
        "field": field.public_id, "width": field.image.width, "height": field.image.height,
        "um_per_px": field.image.um_per_px,
        "image_url": reverse("validation:stain-field-image", args=[study.pk, field.public_id]),
        "upload_url": reverse("api-validation-stain-images", args=[study.pk, field.public_id]),
        "stain_images": [stain_image_data(s) for s in field.stain_images.all()],
    }


class StainFieldsApi(APIView):
    """The fields of the user's centers in a study (plain brightfield) with their fluorescence images."""

    @extend_schema(responses=StainFieldSerializer(many=True))
    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_STAIN)
        return Response(StainFieldSerializer(
            [stain_field_data(study, f) for f in selectors.stain_fields_for(request.user, study)], many=True).data)


class StainImagesApi(APIView):
    """Upload the fluorescence image of one channel (PRM1 or PNA) of a field, or a two-channel RGB file
    (open studies); answers the images made."""

    parser_classes = [MultiPartParser]

    class StainImageInputSerializer(serializers.Serializer):
        channel = serializers.ChoiceField(
            choices=[*StainChannel.values, services.MERGED],
            help_text="prm1, pna, or merged: a two-channel RGB file (PRM1 green, PNA red) makes both.")
        file = serializers.FileField(allow_empty_file=True)
        um_per_px = serializers.FloatField(required=False, allow_null=True,
                                           help_text="Pixel size of the fluorescence image when its file has none.")

    @extend_schema(request={"multipart/form-data": StainImageInputSerializer},
                   responses={201: StainImageSerializer(many=True)})
    def post(self, request, study_id, field_id):
        field = access_stain_field(user=request.user, study_id=study_id, public_id=field_id)
        data = self.StainImageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stain_images = services.stain_image_upload(
            actor=request.user, study=field.study, field=field, channel=data.validated_data["channel"],
            upload=data.validated_data["file"], um_per_px=data.validated_data.get("um_per_px"), request=request)
        return Response(StainImageSerializer([stain_image_data(s) for s in stain_images], many=True).data,
                        status=status.HTTP_201_CREATED)


class StainImageApi(APIView):
    """Remove a fluorescence image (open studies), e.g. to upload the right one."""

    @extend_schema(responses={204: None})
    def delete(self, request, study_id, stain_image_id):
        stain_image = access_stain_image(user=request.user, study_id=study_id, id=stain_image_id)
        services.stain_image_delete(actor=request.user, stain_image=stain_image, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class StainImageRegistrationApi(APIView):
    """Register a fluorescence image over its field: ``manual`` (two point pairs) or ``auto``."""

    class StainRegistrationInputSerializer(JsonInputSerializer):
        method = serializers.ChoiceField(choices=["manual", "auto"])
        stain_points = serializers.ListField(
            child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
            required=False, min_length=2, max_length=2, help_text="Manual: two (x, y) points on the stain image.")
        field_points = serializers.ListField(
            child=serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2),
            required=False, min_length=2, max_length=2,
            help_text="Manual: the same two points on the field, in the same order.")

    @extend_schema(request=StainRegistrationInputSerializer, responses=StainImageSerializer)
    def put(self, request, study_id, stain_image_id):
        stain_image = access_stain_image(user=request.user, study_id=study_id, id=stain_image_id)
        data = self.StainRegistrationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values["method"] == RegistrationMethod.AUTO:
            stain_image = services.stain_image_register_auto(actor=request.user, stain_image=stain_image,
                                                             request=request)
        else:
            if "stain_points" not in values or "field_points" not in values:
                raise DomainError(_("Manual registration needs stain_points and field_points."),
                                  extra={"fields": ["stain_points", "field_points"]})
            stain_image = services.stain_image_register_manual(
                actor=request.user, stain_image=stain_image, stain_points=values["stain_points"],
                field_points=values["field_points"], request=request)
        return Response(StainImageSerializer(stain_image_data(stain_image)).data)


class StainImportApi(APIView):
    """Import stain results from a CSV (columns cell, prm1, pna): ``confirm`` false answers a preview,
    true saves. Any row error answers 400 with ``extra.errors`` (line, cell, code, message) and saves
    nothing. JSON (``csv`` text) or multipart (``file``)."""

    parser_classes = [JSONParser, MultiPartParser]

    class StainImportInputSerializer(serializers.Serializer):
        csv = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        file = serializers.FileField(required=False, allow_empty_file=True)
        confirm = serializers.BooleanField(default=False)

    class StainImportRowSerializer(serializers.Serializer):
        line = serializers.IntegerField()
        cell = serializers.CharField()
        prm1 = serializers.CharField(allow_null=True)
        pna = serializers.CharField(allow_null=True)
        prm1_before = serializers.CharField(allow_blank=True)
        pna_before = serializers.CharField(allow_blank=True)

    class StainImportOutputSerializer(serializers.Serializer):
        saved = serializers.BooleanField()
        rows = serializers.ListField(child=serializers.DictField())

    @extend_schema(request=StainImportInputSerializer, responses=StainImportOutputSerializer)
    def post(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_STAIN)
        data = self.StainImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if "file" in values:
            upload = values["file"]
            if upload.size > services.CSV_MAX_BYTES:
                raise DomainError(_("The CSV file is too large."), extra={"code": "too_large"})
            text = upload.read()
        elif "csv" in values:
            text = values["csv"]
        else:
            raise DomainError(_("Send the CSV as 'csv' (text) or 'file'."), extra={"fields": ["csv", "file"]})
        preview = services.stain_results_import(actor=request.user, study=study, data=text,
                                                confirm=values["confirm"], request=request)
        rows = self.StainImportRowSerializer(preview.rows, many=True).data
        return Response({"saved": preview.saved, "rows": rows})


__all__ = ["StudyStatus"]
