"""Shared checks of the validation services: who administers a study, which status allows what."""
from __future__ import annotations

from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from portal.audit.services import audit_record
from portal.centers.access import user_may
from portal.centers.policy import Action
from portal.core.errors import Conflict, DomainError
from portal.validation.models import Study, StudyStatus

TARGET_CLASS = "round_spermatid"
PICK_MATCH_UM = 4.0  # an embryologist pick this close to a model pick is the same cell
PICK_MATCH_FALLBACK_PX = 20.0
MISSED_MIN_DISTANCE_UM = 3.0
MISSED_MIN_DISTANCE_FALLBACK_PX = 15.0


def _require_admin(actor, study: Study) -> None:
    if not user_may(actor, study.center_id, Action.VALIDATION_MANAGE):
        raise DomainError(_("Only an administrator of the study's center may do this."), status_code=403)


def _require_status(study: Study, *allowed: str, action: str) -> None:
    if study.status not in allowed:
        raise Conflict(
            _('Cannot %(action)s: the study is %(get_status_display)s.') % {"action": action, "get_status_display": study.get_status_display().lower()},
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


def _refuse(*, actor, study: Study, action: str, detail: dict, request=None, message: str) -> None:
    """Audit a refused write (in its own transaction, so it survives) and raise 409."""
    audit_record(actor=actor, action=f"{action}.refused", center=study.center, obj=study,
                 after={"reason": message, "status": study.status, **detail}, request=request)
    raise Conflict(_(message), extra={"status": study.status})  # the audit keeps the English text


def _writable_for_scores(*, actor, study: Study, action: str, detail: dict, request=None) -> None:
    if study.status != StudyStatus.OPEN:
        _refuse(actor=actor, study=study, action=action, detail=detail, request=request,
                message=f"The study is {study.get_status_display().lower()}; scores can no longer change.")


def _study_transition(*, actor, study: Study, status: str, stamp: str, after: dict, request=None) -> None:
    """Move ``study`` to ``status``, record when and by whom (``<stamp>_at``, ``<stamp>_by``), save and audit
    ``validation.study.<stamp>`` with the old and new status and ``after``."""
    before = {"status": study.status}
    study.status = status
    setattr(study, f"{stamp}_at", timezone.now())
    setattr(study, f"{stamp}_by", actor)
    study.save()
    audit_record(actor=actor, action=f"validation.study.{stamp.removesuffix('ed')}", center=study.center, obj=study,
                 before=before, after={"status": study.status, **after}, request=request)
