"""Signing, locking and unblinding: signatures bind each validator's scores; lock binds all of them;
unblinding verifies the frozen model output, computes the report and lifts the blinding."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.services import password_check
from portal.audit.services import audit_record
from portal.core.errors import Conflict, DomainError
from portal.validation.lib.matching import (
    canonical_sha256,
)
from portal.validation.models import (
    Assignment,
    Signature,
    StainResult,
    Study,
    StudyStatus,
    StudyValidator,
)
from portal.validation.services._common import (
    TARGET_CLASS,
    _require_admin,
    _require_status,
    _study_transition,
    _writable_for_scores,
)
from portal.validation.services.design import study_blinding_sync
from portal.validation.services.opening import model_output_hash


def scores_hash_for(membership: StudyValidator) -> str:
    """SHA-256 of one validator's scores (cell public id, morphology, PRM1, PNA), what a signature binds."""
    rows = membership.assignments.select_related("cell").order_by("cell__public_id")
    return canonical_sha256({
        "study": str(membership.study_id),
        "validator": membership.user.get_username(),
        "scores": [[a.cell.public_id, a.morphology, a.prm1, a.pna] for a in rows],
    })


def signature_password_verify(*, actor, study: Study, password: str, action: str, request=None) -> None:
    """The e-signature check: the actor re-enters their password (counted by django-axes with failed
    logins: ``accounts.services.password_check``); a wrong one is audited as ``<action>.failed`` and
    refused with 400."""
    if not password_check(user=actor, password=password, request=request):
        audit_record(actor=actor, action=f"{action}.failed", center=study.center, obj=study,
                     after={"reason": "wrong password"}, request=request)
        raise DomainError(_("The password is not correct."), extra={"field": "password"}, status_code=400)


def study_sign(*, actor, study: Study, membership: StudyValidator, password: str, request=None) -> Signature:
    """The validator signs their completed list after re-entering their password (wrong passwords count
    towards the same lockout as failed logins: ``accounts.services.password_check``)."""
    detail: dict = {}
    _writable_for_scores(actor=actor, study=study, action="validation.sign", detail=detail, request=request)
    signature_password_verify(actor=actor, study=study, password=password, action="validation.sign", request=request)
    with transaction.atomic():
        if Signature.objects.filter(study=study, user=actor).exists():
            raise Conflict(_("You have already signed this study."))
        unscored = membership.assignments.filter(morphology="").count()
        if unscored:
            raise DomainError(_('%(unscored)s cells have no morphology call yet.') % {"unscored": unscored}, extra={"unscored": unscored})
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
    return canonical_sha256({
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
        raise Conflict(_("Every validator must sign before the study is locked."), extra={"unsigned": unsigned})
    for membership in study.validators.select_related("user"):
        if scores_hash_for(membership) != signatures[membership.user_id].scores_sha256:
            raise Conflict(_("A validator's scores no longer match their signature."),
                           extra={"validator": membership.user.get_username()})
    study.scores_sha256 = all_scores_hash(study)
    _study_transition(actor=actor, study=study, status=StudyStatus.LOCKED, stamp="locked", request=request,
                      after={"scores_sha256": study.scores_sha256})
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
            bootstrap_draws=study.bootstrap_draws, target_class=TARGET_CLASS,
        )
        recomputed = model_output_hash(study, study.frozen.get("result_sets", []))
        results["model_output_verified"] = recomputed == study.model_output_sha256
        results["scores_verified"] = all_scores_hash(study) == study.scores_sha256
        study.results = results
        _study_transition(actor=actor, study=study, status=StudyStatus.UNBLINDED, stamp="unblinded", request=request,
                          after={"model_output_verified": results["model_output_verified"],
                                 "scores_verified": results["scores_verified"]})
        study_blinding_sync(study=study)
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
