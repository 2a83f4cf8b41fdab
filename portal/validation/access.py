"""Access to validation studies, their cells and fields: ``access_study(*, user, id, action)``,
``access_study_validator``, ``access_cell`` and ``access_field``. Each returns the object or raises the
one ``NotFound`` (absent, another center's, or not one of the user's studies); every refusal of a study
of centers where the user holds no role is audited.

What each action means for a study (the policy table says which roles grant it):
``access_stain_field`` and ``access_stain_image`` serve stain technicians: a field (plain brightfield) of
their own center in a study past draft, and the fluorescence images uploaded for it.

``validation.manage``: an administrator of the running center; ``validation.validate``: one of the
study's validators, past draft; ``validation.stain``: a stain technician of a center taking part, past
draft; ``validation.pick``: clinic staff of a center taking part in a draft study they do not validate;
``validation.report``: the study is unblinded, and the user administers it or validated it.
"""
from __future__ import annotations

from django.utils.translation import gettext as _

from portal.centers.access import absent_or_refused, access_refused, center_ids_for, user_may
from portal.centers.policy import Action
from portal.centers.selectors import center_ids_for_user
from portal.centers.timezones import center_time_zone_activate
from portal.core.errors import NotFound
from portal.validation.models import Cell, StainImage, Study, StudyField, StudyStatus, StudyValidator


def _refuse(*, user, study: Study, action: Action, kind: str = "validation.study", object_id=None) -> NotFound:
    """The not-found error for ``study``; audited when the user holds no role in any of its centers."""
    center_ids = set(study.centers.values_list("id", flat=True)) | {study.center_id}
    if not center_ids & set(center_ids_for_user(user)):
        return access_refused(user=user, kind=kind, object_id=object_id or study.pk, center_id=study.center_id,
                              action=action, reason="other_center")
    return NotFound(_("No such study."))


def _allowed(user, study: Study, action: Action) -> bool:
    if action == Action.VALIDATION_MANAGE:
        return user_may(user, study.center_id, action)
    if action == Action.VALIDATION_VALIDATE:
        return study.status != StudyStatus.DRAFT and study.validators.filter(user=user).exists()
    if action == Action.VALIDATION_STAIN:
        return (study.status != StudyStatus.DRAFT
                and study.centers.filter(id__in=center_ids_for(user, action)).exists())
    if action == Action.VALIDATION_PICK:
        return (study.status == StudyStatus.DRAFT
                and study.centers.filter(id__in=center_ids_for(user, action)).exists()
                and not study.validators.filter(user=user).exists())
    if action == Action.VALIDATION_REPORT:
        return study.status == StudyStatus.UNBLINDED and (
            user_may(user, study.center_id, Action.VALIDATION_MANAGE) or study.validators.filter(user=user).exists())
    return False


def access_study(*, user, id, action: Action) -> Study:
    """A study on which ``user`` may do ``action`` (see the module doc)."""
    study = Study.objects.select_related("center", "model_version").filter(pk=id).first()
    if study is None:
        raise absent_or_refused(Study.objects, user=user, kind="validation.study", object_id=id, action=action,
                                message=_("No such study."))
    if not _allowed(user, study, action):
        raise _refuse(user=user, study=study, action=action)
    center_time_zone_activate(study.center)  # the study's pages show its center's time (centers.timezones)
    return study


def access_study_validator(*, user, id) -> StudyValidator:
    """The user's validator row of a study past draft (``membership.study`` is the study)."""
    study = access_study(user=user, id=id, action=Action.VALIDATION_VALIDATE)
    membership = StudyValidator.objects.select_related("study").get(study=study, user=user)
    return membership


def access_cell(*, user, study_id, public_id: str) -> Cell:
    """A cell whose crop ``user`` may see: its validators, the study's stain technicians (past draft) and
    its administrators."""
    cell = Cell.objects.filter(study_id=study_id, public_id=public_id).select_related("study").first()
    if cell is None:
        raise absent_or_refused(Cell.objects, user=user, kind="validation.cell", object_id=public_id,
                                action=Action.VALIDATION_VALIDATE, message=_("No such cell."),
                                center_of=lambda c: c.study.center_id, study_id=study_id, public_id=public_id)
    study = cell.study
    if cell.assignments.filter(validator__user=user).exists():
        return cell
    if study.status != StudyStatus.DRAFT and cell.center_id in center_ids_for(user, Action.VALIDATION_STAIN):
        return cell
    if _allowed(user, study, Action.VALIDATION_MANAGE):
        return cell
    raise _refuse(user=user, study=study, action=Action.VALIDATION_VALIDATE, kind="validation.cell",
                  object_id=public_id)


def access_field(*, user, study_id, public_id: str) -> StudyField:
    """The plain image of a field: validators of an open whole-field study, validators of other designs
    for the fields of their own cells (context while scoring), pickers of a draft one (only the fields of
    their own centers)."""
    field = StudyField.objects.filter(study_id=study_id, public_id=public_id).select_related("study", "image").first()
    if field is None:
        raise absent_or_refused(StudyField.objects, user=user, kind="validation.studyfield", object_id=public_id,
                                action=Action.VALIDATION_VALIDATE, message=_("No such field."),
                                center_of=lambda f: f.study.center_id, study_id=study_id, public_id=public_id)
    study = field.study
    if study.status == StudyStatus.DRAFT:
        if (_allowed(user, study, Action.VALIDATION_PICK)
                and field.image.center_id in center_ids_for(user, Action.VALIDATION_PICK)):
            return field
    elif study.validators.filter(user=user).exists() and (
            study.design == "whole_field" or field.cells.filter(assignments__validator__user=user).exists()):
        return field  # whole field: every field; otherwise the fields of the cells the validator scores
    raise _refuse(user=user, study=study, action=Action.VALIDATION_VALIDATE, kind="validation.studyfield",
                  object_id=public_id)


def _stain_field_allowed(user, field: StudyField) -> bool:
    return (field.study.status != StudyStatus.DRAFT
            and field.image.center_id in center_ids_for(user, Action.VALIDATION_STAIN))


def access_stain_field(*, user, study_id, public_id: str) -> StudyField:
    """A field of a study past draft whose image belongs to a center where ``user`` is a stain technician
    (the plain brightfield, never an overlay)."""
    field = (StudyField.objects.filter(study_id=study_id, public_id=public_id)
             .select_related("study", "image").first())
    if field is None:
        raise absent_or_refused(StudyField.objects, user=user, kind="validation.studyfield", object_id=public_id,
                                action=Action.VALIDATION_STAIN, message=_("No such field."),
                                center_of=lambda f: f.study.center_id, study_id=study_id, public_id=public_id)
    if not _stain_field_allowed(user, field):
        raise _refuse(user=user, study=field.study, action=Action.VALIDATION_STAIN, kind="validation.studyfield",
                      object_id=public_id)
    return field


def access_stain_image(*, user, study_id, id) -> StainImage:
    """A fluorescence image of a field that ``user`` may reach through ``access_stain_field``."""
    stain_image = (StainImage.objects.filter(study_id=study_id, pk=id)
                   .select_related("study", "field", "field__study", "field__image").first())
    if stain_image is None:
        raise absent_or_refused(StainImage.objects, user=user, kind="validation.stainimage", object_id=id,
                                action=Action.VALIDATION_STAIN, message=_("No such stain image."),
                                center_of=lambda s: s.study.center_id, study_id=study_id, pk=id)
    if not _stain_field_allowed(user, stain_image.field):
        raise _refuse(user=user, study=stain_image.study, action=Action.VALIDATION_STAIN,
                      kind="validation.stainimage", object_id=str(stain_image.pk))
    return stain_image
