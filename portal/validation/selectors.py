"""Reads for validation studies. Every read takes the requesting user and filters by center and role.

Blinding is not read here by other apps: the services write ``imaging.SessionBlinding`` rows, and the
results, jobs, review and registry reads filter on them.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from portal.centers.access import center_ids_for
from portal.centers.models import Center, Role
from portal.centers.policy import Action
from portal.core.errors import DomainError
from portal.imaging.models import Image, ImageSession
from portal.mlmodels.models import ModelVersion
from portal.validation.models import (
    Assignment,
    Cell,
    Signature,
    Study,
    StudyField,
    StudyStatus,
    StudyValidator,
)


# --- studies, as their administrators see them -------------------------------------------------------
def study_list_for_admin(user) -> QuerySet[Study]:
    """Studies run by a center where ``user`` is a center administrator."""
    return Study.objects.filter(center_id__in=center_ids_for(user, Action.VALIDATION_MANAGE)).select_related(
        "center", "model_version"
    )


def study_list_with_progress(user) -> QuerySet[Study]:
    """``study_list_for_admin`` with what a list of studies shows of each (``center_list``,
    ``validator_list`` with ``cell_total``/``cell_done``, ``signature_list``, ``cell_count``), fetched in
    a fixed number of queries however many studies there are."""
    done = Count("assignments", filter=~Q(assignments__morphology=""))
    validators = StudyValidator.objects.select_related("user").annotate(cell_total=Count("assignments"),
                                                                          cell_done=done)
    return study_list_for_admin(user).annotate(cell_count=Count("cells", distinct=True)).prefetch_related(
        Prefetch("centers", to_attr="center_list"),
        Prefetch("validators", queryset=validators, to_attr="validator_list"),
        Prefetch("signatures", queryset=Signature.objects.select_related("user"), to_attr="signature_list"),
    )


# --- studies, as validators and stain technicians see them ------------------------------------------
def validator_rows_with_progress(user) -> QuerySet[StudyValidator]:
    """The user's validator rows of studies past draft, newest study first, each with its ``study`` and
    progress (``total`` and ``done`` cells, ``signed``), in one query."""
    if not getattr(user, "is_authenticated", False):
        return StudyValidator.objects.none()
    return (
        StudyValidator.objects.filter(user=user).exclude(study__status=StudyStatus.DRAFT).select_related("study")
        .annotate(total=Count("assignments"), done=Count("assignments", filter=~Q(assignments__morphology="")),
                  signed=Exists(Signature.objects.filter(study_id=OuterRef("study_id"), user=user)))
        .order_by("-study__created_at", "id")
    )


def study_list_for_validator(user) -> QuerySet[Study]:
    """Studies (past draft) where ``user`` is a validator."""
    if not getattr(user, "is_authenticated", False):
        return Study.objects.none()
    return Study.objects.filter(validators__user=user).exclude(status=StudyStatus.DRAFT).distinct()


def study_list_for_stain(user) -> QuerySet[Study]:
    """Open or locked studies of a center where ``user`` is a stain technician."""
    center_ids = center_ids_for(user, Action.VALIDATION_STAIN)
    return (
        Study.objects.filter(centers__id__in=center_ids)
        .exclude(status=StudyStatus.DRAFT)
        .distinct()
    )


def assignments_for(membership: StudyValidator) -> QuerySet[Assignment]:
    """The validator's cells in their own shuffled order."""
    return membership.assignments.select_related("cell").order_by("position")


def assignment_get(membership: StudyValidator, public_id: str) -> Assignment:
    assignment = membership.assignments.select_related("cell").filter(cell__public_id=public_id).first()
    if assignment is None:
        raise Http404("No such cell.")
    return assignment


def cell_context(membership: StudyValidator, public_id: str) -> dict:
    """Where one of the validator's cells lies in its field: the field's opaque id and size, its pixel size
    and the cell's position rounded to whole pixels. Nothing about the model or about other cells."""
    assignment = assignment_get(membership, public_id)
    cell = assignment.cell
    field = StudyField.objects.select_related("image").get(pk=cell.field_id)
    image = field.image
    return {"cell": cell.public_id, "field": field.public_id, "width": image.width, "height": image.height,
            "um_per_px": image.um_per_px, "marker": {"x_px": round(cell.x_px), "y_px": round(cell.y_px)}}


def field_get_for_validator(membership: StudyValidator, public_id: str) -> StudyField:
    field = StudyField.objects.filter(study_id=membership.study_id, public_id=public_id).select_related("image").first()
    if field is None:
        raise Http404("No such field.")
    return field


def stain_cells_for(user, study: Study) -> QuerySet[Cell]:
    """Cells of the user's stain-technician centers, by field and public id (both random), with results."""
    center_ids = center_ids_for(user, Action.VALIDATION_STAIN)
    return (study.cells.filter(center_id__in=center_ids).select_related("stain_result", "field")
            .order_by("field__public_id", "public_id"))


def stain_fields_for(user, study: Study) -> QuerySet[StudyField]:
    """Fields of the user's stain-technician centers (random public-id order) with their stain images."""
    center_ids = center_ids_for(user, Action.VALIDATION_STAIN)
    return (study.fields.filter(image__center_id__in=center_ids).select_related("image")
            .prefetch_related("stain_images").order_by("public_id"))


def picks_for(user, study: Study) -> list[dict]:
    fields = {f.image_id: f.public_id for f in study.fields.all()}
    return [
        {"id": p.pk, "field": fields.get(p.image_id, ""), "x_px": p.x_px, "y_px": p.y_px}
        for p in study.picks.filter(picked_by=user)
    ]


# --- what the pages and the API need, so that they make no queries of their own -----------------------
def _by_ids(queryset, ids, label: str) -> list:
    ids = list(dict.fromkeys(ids))
    found = list(queryset.filter(pk__in=ids))
    if len(found) != len(ids):
        raise DomainError(_('Unknown or inaccessible %(label)s.') % {"label": label}, extra={"field": label}, status_code=404)
    return found


def resolve_study_input(user, v: dict) -> dict:
    """Turn a new study's ids into objects the user may use (centers they administer, those centers'
    sessions and images, a model of the running center or site-wide), for the API and the form alike."""
    admin_centers = Center.objects.filter(id__in=center_ids_for(user, Action.VALIDATION_MANAGE))
    center = admin_centers.filter(pk=v["center"]).first()
    if center is None:
        raise DomainError(_("Unknown or inaccessible center."), extra={"field": "center"}, status_code=404)
    centers = _by_ids(admin_centers, v.get("centers") or [center.pk], "centers")
    center_ids = [c.pk for c in centers] + [center.pk]
    sessions = _by_ids(ImageSession.objects.filter(center_id__in=center_ids), v["sessions"], "sessions")
    images = _by_ids(Image.objects.filter(center_id__in=center_ids), v.get("images") or [], "images")
    model_version = ModelVersion.objects.filter(pk=v["model_version"]).first()
    if model_version is None or model_version.center_id not in (None, center.pk):
        raise DomainError(_("Unknown or inaccessible model version."), extra={"field": "model_version"}, status_code=404)
    keys = ("name", "design", "score_threshold", "candidate_threshold", "ground_truth_rule", "prm1_method",
            "subsample_size", "validators_per_cell", "crop_um", "bootstrap_draws")
    return {"center": center, "centers": centers, "sessions": sessions, "images": images,
            "model_version": model_version, **{k: v[k] for k in keys if k in v}}


def user_runs_studies(user) -> bool:
    """Whether ``user`` may create studies (administers a center)."""
    return bool(center_ids_for(user, Action.VALIDATION_MANAGE))


def study_form_choices(user) -> dict:
    """Choices of the new-study form: centers the user administers, their sessions, usable models."""
    ids = center_ids_for(user, Action.VALIDATION_MANAGE)
    return {
        "centers": Center.objects.filter(id__in=ids),
        "sessions": ImageSession.objects.filter(center_id__in=ids).select_related("patient"),
        "model_versions": ModelVersion.objects.filter(Q(center__isnull=True) | Q(center_id__in=ids)),
    }


def user_by_username(username: str):
    """The user with this username, or None."""
    return get_user_model().objects.filter(username=username).first()


def study_list_for_picker(user) -> QuerySet[Study]:
    """Draft picked-cells studies of centers where ``user`` picks, that they do not validate."""
    return (Study.objects.filter(status=StudyStatus.DRAFT, design="picked_cells",
                                 centers__id__in=center_ids_for(user, Action.VALIDATION_PICK))
            .exclude(validators__user=user).distinct())


def _progress(membership: StudyValidator) -> dict:
    return {"total": membership.assignments.count(), "done": membership.assignments.exclude(morphology="").count()}


def study_index(user) -> dict:
    """Everything the studies index shows: studies run, validated, stained and picked by ``user``."""
    mine = [{"study": m.study, "total": m.total, "done": m.done, "signed": m.signed}
            for m in validator_rows_with_progress(user)]
    return {"admin_studies": study_list_for_admin(user), "my_studies": mine,
            "stain_studies": study_list_for_stain(user), "picking_studies": study_list_for_picker(user),
            "can_create": user_runs_studies(user)}


def study_admin_page(study: Study) -> dict:
    """The administrator's view of a study: validators with progress, candidates, counts, sessions."""
    validators = [{"user": v.user, **_progress(v), "signed": study.signatures.filter(user=v.user).first()}
                  for v in study.validators.select_related("user")]
    candidates = get_user_model().objects.filter(
        memberships__role=Role.VALIDATOR, memberships__center__in=study.centers.all()
    ).exclude(validation_roles__study=study).distinct().order_by("username")
    return {"validators": validators, "candidates": candidates, "picks": study.picks.count(),
            "cells": study.cells.count(), "sessions": study.sessions.select_related("patient")}


def pick_fields(user, study: Study) -> QuerySet[StudyField]:
    """The fields a picker sees: those of images of their own centers."""
    return study.fields.filter(image__center_id__in=center_ids_for(user, Action.VALIDATION_PICK)).select_related("image")


def study_fields(study: Study) -> QuerySet[StudyField]:
    return study.fields.select_related("image")


def field_by_public_id(study: Study, public_id: str) -> StudyField | None:
    return StudyField.objects.filter(study=study, public_id=public_id).first()


def sign_progress(user, membership: StudyValidator) -> dict:
    """The validator's signature (if any) and scoring progress."""
    return {"signature": membership.study.signatures.filter(user=user).first(), **_progress(membership)}


def report_context(study: Study) -> dict:
    """Counts and rows the report page shows beside the study's results."""
    return {"signatures": study.signatures.select_related("user"), "centers": study.centers.all(),
            "sessions": study.sessions.count(), "images": study.fields.count()}


# --- the home page: studies waiting for the user -----------------------------------------------------
def home_validation(user) -> dict:
    """What waits in validation: open studies to score (with progress), open studies whose cells of the
    user's centers wait for stain results (with counts), and the studies the user runs that are not yet
    unblinded. Nothing here names a model, a score or a cell order. A fixed number of queries."""
    to_score = [{"study": m.study, "total": m.total, "done": m.done, "signed": m.signed}
                for m in validator_rows_with_progress(user).filter(study__status=StudyStatus.OPEN)[:20]]
    stain_centers = center_ids_for(user, Action.VALIDATION_STAIN)
    mine = Q(cells__center_id__in=stain_centers)
    to_stain = list(
        Study.objects.filter(status=StudyStatus.OPEN, centers__id__in=stain_centers).distinct()
        .annotate(cells_mine=Count("cells", filter=mine, distinct=True),
                  cells_waiting=Count("cells", filter=mine & Q(cells__stain_result__isnull=True), distinct=True))
        .order_by("-created_at")[:20]
    ) if stain_centers else []
    running = list(study_list_for_admin(user).exclude(status=StudyStatus.UNBLINDED).order_by("-created_at")[:20])
    return {"to_score": to_score, "to_stain": to_stain, "running": running}


def report_score_rows(study: Study) -> list[dict]:
    """Every validator's scores of every cell (for the report's tidy ``scores.csv``; unblinded studies only)."""
    rows = (Assignment.objects.filter(validator__study=study)
            .select_related("validator__user", "cell").order_by("cell__public_id", "validator__user__username"))
    return [{"cell": a.cell.public_id, "validator": a.validator.user.get_username(), "morphology": a.morphology,
             "prm1": a.prm1, "pna": a.pna, "scored_at": a.scored_at} for a in rows]
