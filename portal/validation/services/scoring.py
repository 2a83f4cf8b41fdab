"""Scoring an open study: validators' calls, stain technicians' results, missed cells. Every write refused
after the study closed is audited (outside the refused transaction, so the event survives)."""
from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from portal.audit.services import audit_record
from portal.centers.access import user_may
from portal.centers.policy import Action
from portal.core.errors import Conflict, DomainError
from portal.validation.lib.assignment import seeded_shuffle
from portal.validation.lib.matching import (
    any_closer,
    distance_limit_px,
)
from portal.validation.models import (
    Assignment,
    Cell,
    Design,
    Morphology,
    Signature,
    Stain,
    StainResult,
    Study,
    StudyField,
    StudyValidator,
)
from portal.validation.services._common import (
    MISSED_MIN_DISTANCE_FALLBACK_PX,
    MISSED_MIN_DISTANCE_UM,
    _refuse,
    _writable_for_scores,
)
from portal.validation.services.opening import _render_crops


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
                message=gettext_noop("You have signed your scores; they can no longer change."))
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update().filter(validator=membership, cell__public_id=public_id).first()
        )
        if assignment is None:
            raise DomainError(_("No such cell."), status_code=404)
        before = {"morphology": assignment.morphology, "prm1": assignment.prm1, "pna": assignment.pna}
        for name, value, choices in (("morphology", morphology, Morphology), ("prm1", prm1, Stain), ("pna", pna, Stain)):
            if value is None:
                continue
            if value != "" and value not in choices.values:
                raise DomainError(_('%(name)s must be one of %(join)s.') % {"name": name, "join": ', '.join(choices.values)}, extra={"field": name})
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
        if cell is None or not user_may(actor, cell.center_id, Action.VALIDATION_STAIN):
            raise DomainError(_("No such cell."), status_code=404)
        result = StainResult.objects.select_for_update().filter(cell=cell).first()
        before = {"prm1": result.prm1, "pna": result.pna} if result else None
        if result is None:
            result = StainResult(cell=cell, entered_by=actor)
        for name, value in (("prm1", prm1), ("pna", pna)):
            if value is None:
                continue
            if value != "" and value not in Stain.values:
                raise DomainError(_('%(name)s must be one of %(join)s.') % {"name": name, "join": ', '.join(Stain.values)}, extra={"field": name})
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
        raise DomainError(_("Missed cells are added in whole-field studies only."))
    if Signature.objects.filter(study=study, user=actor).exists():
        _refuse(actor=actor, study=study, action="validation.missed_cell", detail=detail, request=request,
                message=gettext_noop("You have signed your scores; your list can no longer change."))
    image = field.image
    if not (0 <= x_px < image.width and 0 <= y_px < image.height):
        raise DomainError(_("The point is outside the image."), extra={"width": image.width, "height": image.height})
    with transaction.atomic():
        Study.objects.select_for_update().filter(pk=study.pk).first()
        limit = distance_limit_px(image.um_per_px, MISSED_MIN_DISTANCE_UM, MISSED_MIN_DISTANCE_FALLBACK_PX)
        if any_closer([(c.x_px, c.y_px) for c in field.cells.all()], x_px, y_px, limit):
            raise Conflict(_("A cell at this point is already in the list."))
        cell = Cell(study=study, field=field, center_id=image.center_id, x_px=x_px, y_px=y_px,
                    from_validator=True, added_by=actor)
        _render_crops(study, [cell])
        cell.save()
        signed = set(study.signatures.values_list("user_id", flat=True))
        others = [v for v in study.validators.exclude(pk=membership.pk) if v.user_id not in signed]
        others = seeded_shuffle(others, f"{study.assignment_seed}:{cell.public_id}")
        for target in [membership, *others[: study.validators_per_cell - 1]]:
            last = target.assignments.aggregate(m=Max("position"))["m"]
            Assignment.objects.create(validator=target, cell=cell, position=(last + 1) if last is not None else 0)
        audit_record(actor=actor, action="validation.missed_cell.add", center=image.center, obj=study,
                     after={"cell": cell.public_id, **detail}, request=request)
    return cell
