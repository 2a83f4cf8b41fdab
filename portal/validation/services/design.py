"""Designing a study (draft): create it, its validators, the embryologist's picks, and the blinding rows
(``imaging.SessionBlinding``) for everyone it blinds until unblinding."""
from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext as _

from portal.audit.services import audit_record
from portal.centers.access import center_ids_for, user_may
from portal.centers.models import Membership, Role
from portal.centers.policy import Action
from portal.core.errors import DomainError
from portal.imaging.models import SessionBlinding
from portal.review.selectors import decider_ids_for_sessions
from portal.validation.models import (
    Design,
    Pick,
    Study,
    StudyField,
    StudyStatus,
    StudyValidator,
)
from portal.validation.services._common import (
    _require_admin,
    _require_status,
    _study_summary,
)


def blinding_source(study: Study) -> str:
    """The ``SessionBlinding.source`` of the rows a study writes."""
    return f"validation.study:{study.pk}"


def blinded_user_ids(study: Study) -> set:
    """Everyone a study blinds until it is unblinded: its validators and the stain technicians of the
    centers taking part (they score and stain its cells)."""
    validators = set(study.validators.values_list("user_id", flat=True))
    stain = set(Membership.objects.filter(center__in=study.centers.all(), role=Role.STAIN_TECHNICIAN)
                .values_list("user_id", flat=True))
    return validators | stain


@transaction.atomic
def study_blinding_sync(*, study: Study) -> None:
    """Make the study's ``SessionBlinding`` rows match who it blinds now (none once unblinded)."""
    source = blinding_source(study)
    wanted: set = set()
    if study.status != StudyStatus.UNBLINDED:
        session_ids = list(study.sessions.values_list("id", flat=True))
        wanted = {(user_id, session_id) for user_id in blinded_user_ids(study) for session_id in session_ids}
    rows = SessionBlinding.objects.filter(source=source)
    existing = set(rows.values_list("user_id", "session_id"))
    for user_id, session_id in existing - wanted:
        rows.filter(user_id=user_id, session_id=session_id).delete()
    SessionBlinding.objects.bulk_create(
        [SessionBlinding(user_id=u, session_id=s, source=source) for u, s in sorted(wanted - existing, key=str)],
        ignore_conflicts=True,
    )


def blinding_on_membership_change(*, center_id) -> None:
    """A role in a center changed: studies of that center (not unblinded) blind its stain technicians."""
    for study in Study.objects.filter(centers__id=center_id).exclude(status=StudyStatus.UNBLINDED).distinct():
        study_blinding_sync(study=study)


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
    if not user_may(actor, center.pk, Action.VALIDATION_MANAGE):
        raise DomainError(_("Only a center administrator may create a study for that center."), status_code=403)
    sessions = list(sessions)
    images = list(images or [])
    center_set = {c.pk: c for c in (centers or [])}
    center_set.setdefault(center.pk, center)
    if not sessions:
        raise DomainError(_("Choose at least one image session."), extra={"field": "sessions"})
    for session in sessions:
        if session.center_id not in center_set:
            raise DomainError(_("A session belongs to a center that is not taking part."), extra={"field": "sessions"})
    session_ids = {s.pk for s in sessions}
    for image in images:
        if image.session_id not in session_ids:
            raise DomainError(_("An image is not in the chosen sessions."), extra={"field": "images"})
    if model_version.center_id not in (None, center.pk):
        raise DomainError(_("That model version belongs to another center."), extra={"field": "model_version"})
    if design == Design.WHOLE_FIELD and candidate_threshold > score_threshold:
        raise DomainError(
            _("The candidate threshold must not exceed the score threshold."), extra={"field": "candidate_threshold"}
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
    study_blinding_sync(study=study)
    audit_record(actor=actor, action="validation.study.create", center=center, obj=study,
                 after=_study_summary(study), request=request)
    return study


def _check_not_reviewer(study: Study, user) -> None:
    session_ids = list(study.sessions.values_list("id", flat=True))
    if user.pk in decider_ids_for_sessions(session_ids):
        raise DomainError(
            _("This user reviewed detections of the study's sessions and cannot validate it."),
            extra={"user": user.get_username()},
        )


# One answer for "no such user" and "not allowed", so the username form cannot probe for accounts.
VALIDATOR_NOT_FOUND = "No validator of a center taking part has that username."
STUDY_VALIDATOR_NOT_FOUND = "No validator of this study has that username."


@transaction.atomic
def study_validator_add(*, actor, study: Study, user, request=None) -> StudyValidator:
    """Add a validator (a user with the validator role in a center taking part) to a draft study."""
    _require_admin(actor, study)
    _require_status(study, StudyStatus.DRAFT, action="change validators")
    center_ids = set(study.centers.values_list("id", flat=True))
    if not center_ids & set(center_ids_for(user, Action.VALIDATION_VALIDATE)):
        raise DomainError(VALIDATOR_NOT_FOUND, extra={"field": "username"})
    _check_not_reviewer(study, user)
    if study.picks.filter(picked_by=user).exists():
        raise DomainError(_("The embryologist who picked the comparator cells cannot validate the study."))
    membership, created = StudyValidator.objects.get_or_create(study=study, user=user)
    study_blinding_sync(study=study)
    if created:
        audit_record(actor=actor, action="validation.validator.add", center=study.center, obj=study,
                     after={"validator": user.get_username()}, request=request)
    return membership


@transaction.atomic
def study_validator_remove(*, actor, study: Study, user, request=None) -> None:
    _require_admin(actor, study)
    _require_status(study, StudyStatus.DRAFT, action="change validators")
    deleted, _by_model = StudyValidator.objects.filter(study=study, user=user).delete()
    study_blinding_sync(study=study)
    if deleted:
        audit_record(actor=actor, action="validation.validator.remove", center=study.center, obj=study,
                     before={"validator": user.get_username()}, request=request)


def study_validator_add_by_username(*, actor, study: Study, username: str, request=None) -> StudyValidator:
    """``study_validator_add`` for a typed username: an unknown name gets the same answer as a user
    who may not validate the study (``VALIDATOR_NOT_FOUND``)."""
    _require_admin(actor, study)
    _require_status(study, StudyStatus.DRAFT, action="change validators")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise DomainError(VALIDATOR_NOT_FOUND, extra={"field": "username"})
    return study_validator_add(actor=actor, study=study, user=user, request=request)


def study_validator_remove_by_username(*, actor, study: Study, username: str, request=None) -> None:
    """Remove the study's validator named ``username``; an unknown name and a user who is not the
    study's validator get the same 404 (``STUDY_VALIDATOR_NOT_FOUND``)."""
    _require_admin(actor, study)
    _require_status(study, StudyStatus.DRAFT, action="change validators")
    membership = StudyValidator.objects.filter(study=study, user__username=username).select_related("user").first()
    if membership is None:
        raise DomainError(STUDY_VALIDATOR_NOT_FOUND, extra={"field": "username"}, status_code=404)
    study_validator_remove(actor=actor, study=study, user=membership.user, request=request)


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
    return user_may(user, image.center_id, Action.VALIDATION_PICK) and not (
        study.validators.filter(user=user).exists()
    )


@transaction.atomic
def pick_add(*, actor, study: Study, field: StudyField, x_px: float, y_px: float, request=None) -> Pick:
    """Picked-cells design: the embryologist picks a cell by eye on the image shown without overlay."""
    _require_status(study, StudyStatus.DRAFT, action="pick cells")
    if study.design != Design.PICKED_CELLS:
        raise DomainError(_("Picks belong to the picked-cells design."))
    image = field.image
    if not _can_pick(actor, study, image):
        raise DomainError(_("You may not pick cells in this study."), status_code=403)
    if not (0 <= x_px < image.width and 0 <= y_px < image.height):
        raise DomainError(_("The point is outside the image."), extra={"width": image.width, "height": image.height})
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
        raise DomainError(_("No such pick."), status_code=404)
    before = {"x_px": pick.x_px, "y_px": pick.y_px}
    pick.delete()
    audit_record(actor=actor, action="validation.pick.remove", center=study.center, object_type="validation.pick",
                 object_id=str(pick_id), before=before, request=request)
