"""Promotion writes: the gated promotion of a candidate to a center's active model, the rollback to the
previous one (both e-signed), and re-analysis of chosen sessions with the center's active model.

The e-signature is the validation app's pattern: the administrator re-enters their password
(``accounts.services.password_check``: django-axes counts failures like failed logins); a wrong one is
audited and refused with 400. A validation study keeps the model it froze at opening
(``validation.Study.model_version``): promotions change only the model of new analyses, and sessions of
a study that is open or locked are not re-analysed.
"""
from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from portal.accounts.services import password_check
from portal.audit.services import audit_record
from portal.centers.access import user_may
from portal.centers.models import Center
from portal.centers.policy import Action
from portal.core.errors import Conflict, DomainError
from portal.imaging.models import ImageSession
from portal.mlmodels.models import ModelVersion
from portal.mlmodels.selectors import model_active_for_center
from portal.mlmodels.services import model_activate
from portal.training.evaluation import gate_compare
from portal.training.models import ModelPromotion, PromotionKind, TrainingJob

PROMOTE_MEANING = "I make this candidate the active model of my center"
ROLLBACK_MEANING = "I return my center to its previous model"


def _require_promote(user, center: Center) -> None:
    if getattr(user, "is_superuser", False):
        return
    if not user_may(user, center.pk, Action.MODELS_PROMOTE):
        raise DomainError(_("Only an administrator of the center promotes models."), status_code=403)


def _signature(*, user, center: Center, password: str, action: str, obj, request=None) -> None:
    if not password_check(user=user, password=password, request=request):
        audit_record(actor=user, action=f"{action}.failed", center=center, obj=obj,
                     after={"reason": "wrong password"}, request=request)
        raise DomainError(_("The password is not correct."), extra={"field": "password"}, status_code=400)


def candidate_job(candidate: ModelVersion) -> TrainingJob:
    """The training job that produced ``candidate`` (its dataset version holds the held-out images)."""
    job = TrainingJob.objects.select_related("dataset_version", "center").filter(candidate=candidate).first()
    if job is None:
        raise DomainError(_("Only a model trained in the portal has a held-out set to be gated on."))
    return job


def promotion_gate(*, candidate: ModelVersion, center: Center, compute: bool = False) -> dict:
    """The gate of ``candidate`` against ``center``'s active model on the center's held-out images. Pages
    read stored evaluations only (``compute=False``: a missing one makes the gate "pending"); the signed
    promotion computes what is missing."""
    job = candidate_job(candidate)
    current = model_active_for_center(center=center)
    if current is not None and current.pk == candidate.pk:
        raise Conflict(_("This model is already the center's active model."))
    return gate_compare(candidate=candidate, current=current, dataset_version=job.dataset_version, center=center,
                        compute=compute)


def model_promote(*, user, candidate: ModelVersion, center: Center, password: str, request=None) -> ModelPromotion:
    """Make ``candidate`` the center's active model when the gate passes, after an e-signature."""
    _require_promote(user, center)
    if candidate.center_id not in (None, center.pk):
        raise DomainError(_("This model belongs to another center."))
    _signature(user=user, center=center, password=password, action="training.promote", obj=candidate,
               request=request)
    gate = promotion_gate(candidate=candidate, center=center, compute=True)
    summary = {k: v for k, v in gate.items() if not k.endswith("_metrics")}
    if not gate["passed"]:
        audit_record(actor=user, action="training.promote.refused", center=center, obj=candidate,
                     after=summary, request=request)
        raise Conflict(_("The candidate does not pass the promotion gate."), extra={"gate": summary})
    with transaction.atomic():
        previous = model_active_for_center(center=center)
        model_activate(model_version=candidate, center=center, user=user)
        promotion = ModelPromotion.objects.create(
            center=center, kind=PromotionKind.PROMOTE, model_version=candidate, previous_model_version=previous,
            gate=summary, meaning=PROMOTE_MEANING, signed_by=user)
        audit_record(actor=user, action="training.promote.signature", center=center, obj=candidate, request=request,
                     after={"meaning": PROMOTE_MEANING, "previous": str(previous.pk) if previous else None,
                            "full_name": user.get_full_name() or user.get_username(), "gate": summary})
    return promotion


def rollback_target(*, center: Center) -> ModelPromotion | None:
    """The latest promotion of the center that made today's active model (its previous one is the
    rollback target), or None."""
    current = model_active_for_center(center=center)
    if current is None:
        return None
    return (ModelPromotion.objects.select_related("previous_model_version")
            .filter(center=center, kind=PromotionKind.PROMOTE, model_version=current,
                    previous_model_version__isnull=False).first())


def model_rollback(*, user, center: Center, password: str, request=None) -> ModelPromotion:
    """Return the center to the model that was active before the last promotion, after an e-signature."""
    _require_promote(user, center)
    last = rollback_target(center=center)
    if last is None:
        raise Conflict(_("There is no previous model to return to."))
    _signature(user=user, center=center, password=password, action="training.rollback",
               obj=last.model_version, request=request)
    with transaction.atomic():
        target = last.previous_model_version
        model_activate(model_version=target, center=center, user=user)
        rollback = ModelPromotion.objects.create(
            center=center, kind=PromotionKind.ROLLBACK, model_version=target,
            previous_model_version=last.model_version, meaning=ROLLBACK_MEANING, signed_by=user)
        audit_record(actor=user, action="training.rollback.signature", center=center, obj=target, request=request,
                     after={"meaning": ROLLBACK_MEANING, "from": str(last.model_version_id),
                            "full_name": user.get_full_name() or user.get_username()})
    return rollback


def sessions_in_open_studies(session_ids) -> set:
    """Sessions that an open or locked validation study holds (its model and results are frozen)."""
    from portal.validation.models import Study, StudyStatus

    return set(Study.objects.filter(sessions__in=session_ids, status__in=[StudyStatus.OPEN, StudyStatus.LOCKED])
               .values_list("sessions", flat=True)) & set(session_ids)


def sessions_reanalyse(*, user, sessions: list[ImageSession], request=None) -> list:
    """Analyse ``sessions`` again with their center's active model: new result sets, the old ones kept.

    Sessions of an open or locked validation study are refused (the study's model stays frozen).
    """
    from portal.jobs.services import job_create

    if not sessions:
        raise DomainError(_("Choose at least one session."), extra={"field": "session_ids"})
    for session in sessions:
        if not getattr(user, "is_superuser", False) and not user_may(user, session.center_id, Action.TRAINING_RUN):
            raise DomainError(_("Only an administrator of the center re-analyses sessions."), status_code=403)
    frozen = sessions_in_open_studies([s.pk for s in sessions])
    if frozen:
        raise Conflict(_("A validation study keeps the model of these sessions frozen."),
                       extra={"sessions": sorted(str(s) for s in frozen)})
    jobs = []
    with transaction.atomic():
        for session in sessions:
            jobs.append(job_create(session=session, user=user, request=request))
        audit_record(actor=user, action="training.reanalyse", center=sessions[0].center_id, object_type="jobs",
                     object_id=",".join(str(j.pk) for j in jobs)[:200], request=request,
                     after={"sessions": [str(s.pk) for s in sessions], "jobs": [str(j.pk) for j in jobs]})
    return jobs
