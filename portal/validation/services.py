"""Writes for validation studies: create, validators, picks, open (freeze + cell list), scoring, stain
entry, missed cells, signing, lock and unblinding. Every write is audited; every write refused after
lock is audited too (outside the refused transaction, so the event survives)."""
from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from portal.audit.services import audit_record
from portal.centers.models import Role
from portal.centers.selectors import center_ids_for_user, user_has_role
from portal.core.api import Conflict, DomainError
from portal.validation import crops
from portal.validation.models import (
    Assignment,
    Cell,
    Design,
    Morphology,
    Pick,
    Signature,
    Stain,
    StainResult,
    Study,
    StudyField,
    StudyStatus,
    StudyValidator,
)

TARGET_CLASS = "round_spermatid"
PICK_MATCH_UM = 4.0  # an embryologist pick this close to a model pick is the same cell
PICK_MATCH_FALLBACK_PX = 20.0
MISSED_MIN_DISTANCE_UM = 3.0
MISSED_MIN_DISTANCE_FALLBACK_PX = 15.0


def _canonical_sha256(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _require_admin(actor, study: Study) -> None:
    if not user_has_role(actor, study.center_id, [Role.CENTER_ADMIN]):
        raise DomainError("Only an administrator of the study's center may do this.", status_code=403)


def _require_status(study: Study, *allowed: str, action: str) -> None:
    if study.status not in allowed:
        raise Conflict(
            f"Cannot {action}: the study is {study.get_status_display().lower()}.",
            extra={"status": study.status},
        )


def _study_summary(study: Study) -> dict[str, Any]:
    return {
        "name": study.name,
        "status": study.status,
        "design": study.design,
        "ground_truth_rule": study.ground_truth_rule,
        "prm1_method": study.prm1_method,
        "score_threshold": study.score_threshold,
        "validators_per_cell": study.validators_per_cell,
    }


# --- create and configure (draft) -------------------------------------------------------------------
@transaction.atomic
def study_create(
    *,
    actor,
    center,
    name: str,
    model_version,
    sessions: Iterable,
    centers: Iterable | None = None,
    images: Iterable | None = None,
    design: str = Design.PICKED_CELLS,
    score_threshold: float = 0.5,
    candidate_threshold: float = 0.05,
    ground_truth_rule: str = "either",
    prm1_method: str = "mrna_in_situ",
    subsample_size: int | None = None,
    validators_per_cell: int = 2,
    crop_um: float = 24.0,
    bootstrap_draws: int = 2000,
    request=None,
) -> Study:
    """Create a draft study run by ``center`` (the actor must administer it)."""
    if not user_has_role(actor, center.pk, [Role.CENTER_ADMIN]):
        raise DomainError("Only a center administrator may create a study for that center.", status_code=403)
    sessions = list(sessions)
    images = list(images or [])
    center_set = {c.pk: c for c in (centers or [])}
    center_set.setdefault(center.pk, center)
    if not sessions:
        raise DomainError("Choose at least one image session.", extra={"field": "sessions"})
    for session in sessions:
        if session.center_id not in center_set:
            raise DomainError("A session belongs to a center that is not taking part.", extra={"field": "sessions"})
    session_ids = {s.pk for s in sessions}
    for image in images:
        if image.session_id not in session_ids:
            raise DomainError("An image is not in the chosen sessions.", extra={"field": "images"})
    if model_version.center_id not in (None, center.pk):
        raise DomainError("That model version belongs to another center.", extra={"field": "model_version"})
    if design == Design.WHOLE_FIELD and candidate_threshold > score_threshold:
        raise DomainError(
            "The candidate threshold must not exceed the score threshold.", extra={"field": "candidate_threshold"}
        )
    study = Study(
        name=name.strip(),
        center=center,
        model_version=model_version,
        design=design,
        score_threshold=score_threshold,
        candidate_threshold=candidate_threshold,
        ground_truth_rule=ground_truth_rule,
        prm1_method=prm1_method,
        subsample_size=subsample_size,
        validators_per_cell=validators_per_cell,
        crop_um=crop_um,
        bootstrap_draws=bootstrap_draws,
        created_by=actor,
    )
    study.full_clean()
    study.save()
    study.centers.set(center_set.values())
    study.sessions.set(sessions)
    study.images.set(images)
    audit_record(actor=actor, action="validation.study.create", center=center, obj=study,
                 after=_study_summary(study), request=request)
    return study


def reviewer_user_ids_for_sessions(session_ids: Iterable) -> set:
    """Users who made review decisions on detections of these sessions (from ``portal.review``).

    The review app's models are discovered rather than imported by name: any model there with a
    foreign key to a user and a path to an image session counts.
    """
    session_ids = list(session_ids)
    try:
        review_models = list(apps.get_app_config("review").get_models())
    except LookupError:
        return set()
    paths = (
        "session", "image__session", "result_set__image__session", "detection__result_set__image__session",
        "review__session", "review__image__session", "review__result_set__image__session",
    )
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    tables = set(connection.introspection.table_names())
    found: set = set()
    for model in review_models:
        if model._meta.db_table not in tables:  # the review app's migrations may not exist yet
            continue
        user_fields = [
            f.name for f in model._meta.get_fields()
            if getattr(f, "many_to_one", False) and f.concrete and f.related_model is user_model
        ]
        session_path = next((p for p in paths if _lookup_exists(model, p)), None)
        if not user_fields or session_path is None:
            continue
        rows = model.objects.filter(**{f"{session_path}__in": session_ids})
        for field in user_fields:
            found.update(rows.exclude(**{f"{field}__isnull": True}).values_list(f"{field}_id", flat=True))
    return found


def _lookup_exists(model, path: str) -> bool:
    current = model
    for part in path.split("__"):
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            return False
        if not getattr(field, "is_relation", False) or field.related_model is None:
            return False
        current = field.related_model
    return current._meta.label_lower == "imaging.imagesession"


def _check_not_reviewer(study: Study, user) -> None:
    session_ids = list(study.sessions.values_list("id", flat=True))
    if user.pk in reviewer_user_ids_for_sessions(session_ids):
        raise DomainError(
            "This user reviewed detections of the study's sessions and cannot validate it.",
            extra={"user": user.get_username()},
        )


@transaction.atomic
def study_validator_add(*, actor, study: Study, user, request=None) -> StudyValidator:
    """Add a validator (a user with the validator role in a center taking part) to a draft study."""
    _require_admin(actor, study)
    _require_status(study, StudyStatus.DRAFT, action="change validators")
    center_ids = set(study.centers.values_list("id", flat=True))
    if not center_ids & set(center_ids_for_user(user, [Role.VALIDATOR])):
        raise DomainError("That user is not a validator in a center taking part.", extra={"user": user.get_username()})
    _check_not_reviewer(study, user)
    if study.picks.filter(picked_by=user).exists():
        raise DomainError("The embryologist who picked the comparator cells cannot validate the study.")
    membership, created = StudyValidator.objects.get_or_create(study=study, user=user)
    if created:
        audit_record(actor=actor, action="validation.validator.add", center=study.center, obj=study,
                     after={"validator": user.get_username()}, request=request)
    return membership


@transaction.atomic
def study_validator_remove(*, actor, study: Study, user, request=None) -> None:
    _require_admin(actor, study)
    _require_status(study, StudyStatus.DRAFT, action="change validators")
    deleted, _ = StudyValidator.objects.filter(study=study, user=user).delete()
    if deleted:
        audit_record(actor=actor, action="validation.validator.remove", center=study.center, obj=study,
                     before={"validator": user.get_username()}, request=request)


def study_images(study: Study):
    """The images a study covers: the chosen ones, else every image of its sessions."""
    from portal.imaging.models import Image

    chosen = study.images.all()
    if chosen.exists():
        return chosen.order_by("id")
    return Image.objects.filter(session__in=study.sessions.all()).order_by("id")


@transaction.atomic
def study_fields_ensure(*, study: Study) -> list[StudyField]:
    """One opaque field token per image of the study (idempotent)."""
    existing = {f.image_id: f for f in study.fields.all()}
    for image in study_images(study):
        if image.pk not in existing:
            existing[image.pk] = StudyField.objects.create(study=study, image=image)
    return list(existing.values())


def _can_pick(user, study: Study, image) -> bool:
    return user_has_role(user, image.center_id, [Role.CENTER_ADMIN, Role.UPLOADER]) and not (
        study.validators.filter(user=user).exists()
    )


@transaction.atomic
def pick_add(*, actor, study: Study, field: StudyField, x_px: float, y_px: float, request=None) -> Pick:
    """Picked-cells design: the embryologist picks a cell by eye on the image shown without overlay."""
    _require_status(study, StudyStatus.DRAFT, action="pick cells")
    if study.design != Design.PICKED_CELLS:
        raise DomainError("Picks belong to the picked-cells design.")
    image = field.image
    if not _can_pick(actor, study, image):
        raise DomainError("You may not pick cells in this study.", status_code=403)
    if not (0 <= x_px < image.width and 0 <= y_px < image.height):
        raise DomainError("The point is outside the image.", extra={"width": image.width, "height": image.height})
    pick = Pick(study=study, image=image, x_px=x_px, y_px=y_px, picked_by=actor)
    pick.full_clean()
    pick.save()
    audit_record(actor=actor, action="validation.pick.add", center=image.center, obj=pick,
                 after={"study": str(study.pk), "field": field.public_id, "x_px": x_px, "y_px": y_px}, request=request)
    return pick


@transaction.atomic
def pick_remove(*, actor, study: Study, pick_id: int, request=None) -> None:
    _require_status(study, StudyStatus.DRAFT, action="remove picks")
    pick = study.picks.filter(pk=pick_id, picked_by=actor).first()
    if pick is None:
        raise DomainError("No such pick.", status_code=404)
    before = {"x_px": pick.x_px, "y_px": pick.y_px}
    pick.delete()
    audit_record(actor=actor, action="validation.pick.remove", center=study.center, object_type="validation.pick",
                 object_id=str(pick_id), before=before, request=request)


# --- open: freeze the model output and build the blinded cell list ------------------------------------
def _model_result_set(study: Study, image):
    from portal.results.models import ResultSet, ResultSetStatus, ResultSource

    return (
        ResultSet.objects.filter(
            image=image, model_version=study.model_version, source=ResultSource.MODEL,
            status=ResultSetStatus.COMPLETE,
        )
        .order_by("-completed_at", "-created_at")
        .first()
    )


def detection_fingerprint(detection) -> list:
    """What the frozen hash covers for one detection."""
    mask = hashlib.sha256(json.dumps(detection.mask_rle, sort_keys=True).encode()).hexdigest()
    return [
        str(detection.pk), str(detection.result_set_id), detection.index, detection.class_name, detection.score,
        detection.x1, detection.y1, detection.x2, detection.y2, detection.centroid_x_px, detection.centroid_y_px, mask,
    ]


def model_output_hash(study: Study, result_set_ids: Iterable) -> str:
    """SHA-256 over the model version, thresholds and every detection of the frozen result sets."""
    from portal.results.models import Detection

    detections = Detection.objects.filter(result_set_id__in=list(result_set_ids)).order_by("id")
    return _canonical_sha256({
        "model_version": str(study.model_version_id),
        "weights_sha256": study.model_version.weights_sha256,
        "score_threshold": study.score_threshold,
        "candidate_threshold": study.candidate_threshold,
        "result_sets": sorted(str(r) for r in result_set_ids),
        "detections": [detection_fingerprint(d) for d in detections],
    })


def _distance_px(um_per_px: float | None, um: float, fallback_px: float) -> float:
    return um / um_per_px if um_per_px else fallback_px


@transaction.atomic
def study_open(*, actor, study: Study, request=None) -> Study:
    """Freeze the model output and build the blinded, per-validator shuffled cell lists."""
    study = Study.objects.select_for_update().get(pk=study.pk)
    _require_admin(actor, study)
    _require_status(study, StudyStatus.DRAFT, action="open the study")
    validators = list(study.validators.select_related("user"))
    if not validators:
        raise DomainError("Add at least one validator first.")
    if len(validators) < study.validators_per_cell:
        raise DomainError(
            f"The study needs {study.validators_per_cell} validators per cell but has {len(validators)}.",
            extra={"validators": len(validators), "validators_per_cell": study.validators_per_cell},
        )
    for membership in validators:
        _check_not_reviewer(study, membership.user)
    fields = sorted(study_fields_ensure(study=study), key=lambda f: str(f.image_id))
    missing_results, missing_display = [], []
    frozen_sets = {}
    for field in fields:
        result_set = _model_result_set(study, field.image)
        if result_set is None:
            missing_results.append(field.public_id)
        if not field.image.display_file:
            missing_display.append(field.public_id)
        frozen_sets[field.pk] = result_set
    if missing_results or missing_display:
        raise DomainError(
            "Every image needs a complete result of the study's model version and a display rendering.",
            extra={"images_without_results": len(missing_results), "images_without_display": len(missing_display)},
        )

    candidates = []  # (field, detection)
    for field in fields:
        detections = frozen_sets[field.pk].detections.order_by("index")
        for det in detections:
            score = det.score if det.score is not None else 0.0
            positive = det.class_name == TARGET_CLASS and score >= study.score_threshold
            if study.design == Design.WHOLE_FIELD and score >= study.candidate_threshold:
                candidates.append((field, det, positive))
            elif study.design == Design.PICKED_CELLS and positive:
                candidates.append((field, det, positive))
    subsampled_from = None
    if study.design == Design.WHOLE_FIELD and study.subsample_size and len(candidates) > study.subsample_size:
        subsampled_from = len(candidates)
        rng = random.Random(study.subsample_seed)
        keep = sorted(rng.sample(range(len(candidates)), study.subsample_size))
        candidates = [candidates[i] for i in keep]
    cells: list[Cell] = []
    for field, det, positive in candidates:
        cells.append(Cell(
            study=study, field=field, center_id=field.image.center_id,
            x_px=det.centroid_x_px, y_px=det.centroid_y_px, from_model=True, detection=det,
            model_class=det.class_name, model_score=det.score, model_positive=positive,
        ))
    if study.design == Design.PICKED_CELLS:
        by_image = {f.image_id: f for f in fields}
        for pick in study.picks.all():
            field = by_image.get(pick.image_id)
            if field is None:
                continue
            limit = _distance_px(field.image.um_per_px, PICK_MATCH_UM, PICK_MATCH_FALLBACK_PX)
            same = next(
                (c for c in cells if c.field_id == field.pk and c.from_model
                 and math.hypot(c.x_px - pick.x_px, c.y_px - pick.y_px) <= limit),
                None,
            )
            if same is not None:
                same.from_embryologist = True
                continue
            cells.append(Cell(study=study, field=field, center_id=field.image.center_id, x_px=pick.x_px,
                              y_px=pick.y_px, from_embryologist=True, added_by=pick.picked_by))
    if not cells:
        raise DomainError("The study has no cells to score (no model picks, picks or candidates).")

    _render_crops(study, cells)
    Cell.objects.bulk_create(cells)
    _assign(study, validators, list(study.cells.all()))
    study.frozen = {
        "result_sets": sorted(str(r.pk) for r in frozen_sets.values()),
        "cells": len(cells),
        "subsampled_from": subsampled_from,
    }
    study.model_output_sha256 = model_output_hash(study, [r.pk for r in frozen_sets.values()])
    study.status = StudyStatus.OPEN
    study.opened_at = timezone.now()
    study.opened_by = actor
    study.save()
    audit_record(actor=actor, action="validation.study.open", center=study.center, obj=study,
                 before={"status": StudyStatus.DRAFT},
                 after={"status": study.status, "model_output_sha256": study.model_output_sha256,
                        "cells": len(cells), "subsampled_from": subsampled_from}, request=request)
    return study


def _render_crops(study: Study, cells: list[Cell]) -> None:
    sources: dict = {}
    for cell in cells:
        image = cell.field.image
        if image.pk not in sources:
            sources[image.pk] = crops.load_display(image)
        side = crops.window_px(um_per_px=image.um_per_px, crop_um=study.crop_um)
        cell.crop_png = crops.render_crop(sources[image.pk], x_px=cell.x_px, y_px=cell.y_px, side_px=side)


def _assign(study: Study, validators: list[StudyValidator], cells: list[Cell]) -> None:
    """Give each cell to ``validators_per_cell`` validators (balanced, seeded), then shuffle each list."""
    rng = random.Random(study.assignment_seed)
    order = sorted(cells, key=lambda c: c.public_id)
    rng.shuffle(order)
    load = {v.pk: 0 for v in validators}
    lists: dict = {v.pk: [] for v in validators}
    for cell in order:
        ranked = sorted(validators, key=lambda v: (load[v.pk], rng.random()))
        for membership in ranked[: study.validators_per_cell]:
            lists[membership.pk].append(cell)
            load[membership.pk] += 1
    rows = []
    for membership in validators:
        own = sorted(lists[membership.pk], key=lambda c: c.public_id)
        random.Random(membership.order_seed).shuffle(own)
        rows += [Assignment(validator=membership, cell=cell, position=i) for i, cell in enumerate(own)]
    Assignment.objects.bulk_create(rows)


# --- scoring -----------------------------------------------------------------------------------------
def _refuse(*, actor, study: Study, action: str, detail: dict, request=None, message: str) -> None:
    """Audit a refused write (in its own transaction, so it survives) and raise 409."""
    audit_record(actor=actor, action=f"{action}.refused", center=study.center, obj=study,
                 after={"reason": message, "status": study.status, **detail}, request=request)
    raise Conflict(message, extra={"status": study.status})


def _writable_for_scores(*, actor, study: Study, action: str, detail: dict, request=None) -> None:
    if study.status != StudyStatus.OPEN:
        _refuse(actor=actor, study=study, action=action, detail=detail, request=request,
                message=f"The study is {study.get_status_display().lower()}; scores can no longer change.")


def assignment_score(
    *,
    actor,
    study: Study,
    membership: StudyValidator,
    public_id: str,
    morphology: str | None = None,
    prm1: str | None = None,
    pna: str | None = None,
    request=None,
) -> Assignment:
    """A validator's morphology call and (optionally) stain results for one of their cells."""
    detail = {"cell": public_id}
    _writable_for_scores(actor=actor, study=study, action="validation.score", detail=detail, request=request)
    if Signature.objects.filter(study=study, user=actor).exists():
        _refuse(actor=actor, study=study, action="validation.score", detail=detail, request=request,
                message="You have signed your scores; they can no longer change.")
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update().filter(validator=membership, cell__public_id=public_id).first()
        )
        if assignment is None:
            raise DomainError("No such cell.", status_code=404)
        before = {"morphology": assignment.morphology, "prm1": assignment.prm1, "pna": assignment.pna}
        for name, value, choices in (("morphology", morphology, Morphology), ("prm1", prm1, Stain), ("pna", pna, Stain)):
            if value is None:
                continue
            if value != "" and value not in choices.values:
                raise DomainError(f"{name} must be one of {', '.join(choices.values)}.", extra={"field": name})
            setattr(assignment, name, value)
        assignment.scored_at = timezone.now()
        assignment.full_clean()
        assignment.save()
        after = {"morphology": assignment.morphology, "prm1": assignment.prm1, "pna": assignment.pna}
        audit_record(actor=actor, action="validation.score", center=study.center, obj=study,
                     before={"cell": public_id, **before}, after={"cell": public_id, **after}, request=request)
    return assignment


def stain_enter(*, actor, study: Study, public_id: str, prm1: str | None = None, pna: str | None = None,
                request=None) -> StainResult:
    """A stain technician enters PRM1/PNA results for a cell of their own center."""
    detail = {"cell": public_id}
    _writable_for_scores(actor=actor, study=study, action="validation.stain", detail=detail, request=request)
    with transaction.atomic():
        cell = study.cells.filter(public_id=public_id).first()
        if cell is None or not user_has_role(actor, cell.center_id, [Role.STAIN_TECHNICIAN]):
            raise DomainError("No such cell.", status_code=404)
        result = StainResult.objects.select_for_update().filter(cell=cell).first()
        before = {"prm1": result.prm1, "pna": result.pna} if result else None
        if result is None:
            result = StainResult(cell=cell, entered_by=actor)
        for name, value in (("prm1", prm1), ("pna", pna)):
            if value is None:
                continue
            if value != "" and value not in Stain.values:
                raise DomainError(f"{name} must be one of {', '.join(Stain.values)}.", extra={"field": name})
            setattr(result, name, value)
        result.entered_by = actor
        result.full_clean()
        result.save()
        audit_record(actor=actor, action="validation.stain", center=cell.center, obj=study,
                     before={"cell": public_id, **(before or {})},
                     after={"cell": public_id, "prm1": result.prm1, "pna": result.pna}, request=request)
    return result


def missed_cell_add(*, actor, study: Study, membership: StudyValidator, field: StudyField, x_px: float,
                    y_px: float, request=None) -> Cell:
    """Whole field: a validator adds a cell the list missed, by clicking the image shown without overlay.

    The new cell goes to the adding validator and, when the study scores cells more than once, to
    other validators who have not signed yet (appended to the end of their lists).
    """
    detail = {"field": field.public_id, "x_px": x_px, "y_px": y_px}
    _writable_for_scores(actor=actor, study=study, action="validation.missed_cell", detail=detail, request=request)
    if study.design != Design.WHOLE_FIELD:
        raise DomainError("Missed cells are added in whole-field studies only.")
    if Signature.objects.filter(study=study, user=actor).exists():
        _refuse(actor=actor, study=study, action="validation.missed_cell", detail=detail, request=request,
                message="You have signed your scores; your list can no longer change.")
    image = field.image
    if not (0 <= x_px < image.width and 0 <= y_px < image.height):
        raise DomainError("The point is outside the image.", extra={"width": image.width, "height": image.height})
    with transaction.atomic():
        Study.objects.select_for_update().filter(pk=study.pk).first()
        limit = _distance_px(image.um_per_px, MISSED_MIN_DISTANCE_UM, MISSED_MIN_DISTANCE_FALLBACK_PX)
        for other in field.cells.all():
            if math.hypot(other.x_px - x_px, other.y_px - y_px) < limit:
                raise Conflict("A cell at this point is already in the list.")
        cell = Cell(study=study, field=field, center_id=image.center_id, x_px=x_px, y_px=y_px,
                    from_validator=True, added_by=actor)
        _render_crops(study, [cell])
        cell.save()
        signed = set(study.signatures.values_list("user_id", flat=True))
        others = [v for v in study.validators.exclude(pk=membership.pk) if v.user_id not in signed]
        random.Random(f"{study.assignment_seed}:{cell.public_id}").shuffle(others)
        for target in [membership, *others[: study.validators_per_cell - 1]]:
            last = target.assignments.aggregate(m=Max("position"))["m"]
            Assignment.objects.create(validator=target, cell=cell, position=(last + 1) if last is not None else 0)
        audit_record(actor=actor, action="validation.missed_cell.add", center=image.center, obj=study,
                     after={"cell": cell.public_id, **detail}, request=request)
    return cell


# --- sign, lock, unblind ------------------------------------------------------------------------------
def scores_hash_for(membership: StudyValidator) -> str:
    """SHA-256 of one validator's scores (cell public id, morphology, PRM1, PNA), what a signature binds."""
    rows = membership.assignments.select_related("cell").order_by("cell__public_id")
    return _canonical_sha256({
        "study": str(membership.study_id),
        "validator": membership.user.get_username(),
        "scores": [[a.cell.public_id, a.morphology, a.prm1, a.pna] for a in rows],
    })


def signature_password_verify(*, actor, study: Study, password: str, action: str, request=None) -> None:
    """The e-signature check: the actor re-enters their password; a wrong one is audited as
    ``<action>.failed`` (in its own transaction, so it survives) and refused with 400."""
    if not actor.check_password(password or ""):
        audit_record(actor=actor, action=f"{action}.failed", center=study.center, obj=study,
                     after={"reason": "wrong password"}, request=request)
        raise DomainError("The password is not correct.", extra={"field": "password"}, status_code=400)


def study_sign(*, actor, study: Study, membership: StudyValidator, password: str, request=None) -> Signature:
    """The validator signs their completed list after re-entering their password."""
    detail: dict = {}
    _writable_for_scores(actor=actor, study=study, action="validation.sign", detail=detail, request=request)
    signature_password_verify(actor=actor, study=study, password=password, action="validation.sign", request=request)
    with transaction.atomic():
        if Signature.objects.filter(study=study, user=actor).exists():
            raise Conflict("You have already signed this study.")
        unscored = membership.assignments.filter(morphology="").count()
        if unscored:
            raise DomainError(f"{unscored} cells have no morphology call yet.", extra={"unscored": unscored})
        signature = Signature.objects.create(
            study=study, user=actor, full_name=actor.get_full_name() or actor.get_username(),
            signed_at=timezone.now(), scores_sha256=scores_hash_for(membership),
            cells_scored=membership.assignments.count(),
        )
        audit_record(actor=actor, action="validation.sign", center=study.center, obj=study,
                     after={"meaning": signature.meaning, "scores_sha256": signature.scores_sha256,
                            "cells_scored": signature.cells_scored, "full_name": signature.full_name},
                     request=request)
    return signature


def all_scores_hash(study: Study) -> str:
    """SHA-256 over every validator's scores and every stain technician's entry."""
    assignments = Assignment.objects.filter(validator__study=study).select_related("cell", "validator__user")
    stains = StainResult.objects.filter(cell__study=study).select_related("cell", "entered_by")
    return _canonical_sha256({
        "study": str(study.pk),
        "scores": sorted([a.cell.public_id, a.validator.user.get_username(), a.morphology, a.prm1, a.pna]
                         for a in assignments),
        "stains": sorted([s.cell.public_id, s.entered_by.get_username(), s.prm1, s.pna] for s in stains),
    })


@transaction.atomic
def study_lock(*, actor, study: Study, request=None) -> Study:
    """The study administrator locks the study once every validator has signed."""
    study = Study.objects.select_for_update().get(pk=study.pk)
    _require_admin(actor, study)
    _require_status(study, StudyStatus.OPEN, action="lock the study")
    signatures = {s.user_id: s for s in study.signatures.all()}
    unsigned = [v.user.get_username() for v in study.validators.select_related("user") if v.user_id not in signatures]
    if unsigned:
        raise Conflict("Every validator must sign before the study is locked.", extra={"unsigned": unsigned})
    for membership in study.validators.select_related("user"):
        if scores_hash_for(membership) != signatures[membership.user_id].scores_sha256:
            raise Conflict("A validator's scores no longer match their signature.",
                           extra={"validator": membership.user.get_username()})
    study.scores_sha256 = all_scores_hash(study)
    study.status = StudyStatus.LOCKED
    study.locked_at = timezone.now()
    study.locked_by = actor
    study.save()
    audit_record(actor=actor, action="validation.study.lock", center=study.center, obj=study,
                 before={"status": StudyStatus.OPEN},
                 after={"status": study.status, "scores_sha256": study.scores_sha256}, request=request)
    return study


def _resolve_stain(technician: str, validator_values: list[str]) -> str:
    if technician:
        return technician
    values = {v for v in validator_values if v}
    if not values:
        return "missing"
    if len(values) > 1:
        return "conflict"
    return values.pop()


def study_cell_rows(study: Study) -> list[dict[str, Any]]:
    """Plain per-cell rows for ``statistics.study_statistics`` and the CSV (model fields included)."""
    assignments = Assignment.objects.filter(validator__study=study).select_related("validator__user")
    by_cell: dict = {}
    for a in assignments:
        by_cell.setdefault(a.cell_id, []).append(a)
    rows = []
    for cell in study.cells.select_related("center", "stain_result").order_by("public_id"):
        own = by_cell.get(cell.pk, [])
        stain = getattr(cell, "stain_result", None)
        rows.append({
            "id": cell.public_id,
            "center": cell.center.code,
            "from_model": cell.from_model,
            "from_embryologist": cell.from_embryologist,
            "from_validator": cell.from_validator,
            "model_positive": cell.model_positive,
            "model_class": cell.model_class,
            "model_score": cell.model_score,
            "prm1": _resolve_stain(stain.prm1 if stain else "", [a.prm1 for a in own]),
            "pna": _resolve_stain(stain.pna if stain else "", [a.pna for a in own]),
            "ratings": {a.validator.user.get_username(): a.morphology for a in own},
        })
    return rows


def study_unblind(*, actor, study: Study, request=None) -> Study:
    """After lock: verify the frozen model output and compute every statistic of the report."""
    from portal.validation import statistics

    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        _require_admin(actor, study)
        _require_status(study, StudyStatus.LOCKED, action="unblind the study")
        raters = [v.user.get_username() for v in study.validators.select_related("user").order_by("added_at", "id")]
        results = statistics.study_statistics(
            cells=study_cell_rows(study), raters=raters, design=study.design, rule=study.ground_truth_rule,
            validators_per_cell=study.validators_per_cell, bootstrap_seed=study.bootstrap_seed,
            bootstrap_draws=study.bootstrap_draws,
        )
        recomputed = model_output_hash(study, study.frozen.get("result_sets", []))
        results["model_output_verified"] = recomputed == study.model_output_sha256
        results["scores_verified"] = all_scores_hash(study) == study.scores_sha256
        study.results = results
        study.status = StudyStatus.UNBLINDED
        study.unblinded_at = timezone.now()
        study.unblinded_by = actor
        study.save()
        audit_record(actor=actor, action="validation.study.unblind", center=study.center, obj=study,
                     before={"status": StudyStatus.LOCKED},
                     after={"status": study.status, "model_output_verified": results["model_output_verified"],
                            "scores_verified": results["scores_verified"]}, request=request)
    return study


# --- signed transitions (confirmation + e-signature) -----------------------------------------------------
LOCK_MEANING = "I lock this study: no score can change afterwards"
UNBLIND_MEANING = "I unblind this study and release its results"


def _signed_transition(*, actor, study: Study, password: str, action: str, meaning: str, transition,
                       request=None) -> Study:
    _require_admin(actor, study)
    signature_password_verify(actor=actor, study=study, password=password, action=action, request=request)
    with transaction.atomic():
        study = transition(actor=actor, study=study, request=request)
        audit_record(actor=actor, action=f"{action}.signature", center=study.center, obj=study,
                     after={"meaning": meaning, "full_name": actor.get_full_name() or actor.get_username(),
                            "status": study.status, "scores_sha256": study.scores_sha256}, request=request)
    return study


def study_lock_sign(*, actor, study: Study, password: str, request=None) -> Study:
    """Lock after the administrator confirmed and re-entered their password (an audited e-signature)."""
    return _signed_transition(actor=actor, study=study, password=password, action="validation.study.lock",
                              meaning=LOCK_MEANING, transition=study_lock, request=request)


def study_unblind_sign(*, actor, study: Study, password: str, request=None) -> Study:
    """Unblind after the administrator confirmed and re-entered their password (an audited e-signature)."""
    return _signed_transition(actor=actor, study=study, password=password, action="validation.study.unblind",
                              meaning=UNBLIND_MEANING, transition=study_unblind, request=request)
