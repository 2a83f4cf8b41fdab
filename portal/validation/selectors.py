"""Reads for validation studies. Every read takes the requesting user and filters by center and role.

``image_is_blinded_for`` / ``session_is_blinded_for`` are the blinding gate other apps call: the results,
jobs and review apps answer 404 for detections, overlays and review pages of a blinded session.
"""
from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404

from portal.centers.models import Role
from portal.centers.selectors import center_ids_for_user
from portal.validation.models import (
    Assignment,
    Cell,
    Signature,
    Study,
    StudyField,
    StudyStatus,
    StudyValidator,
)

# A validator stays blinded from assignment (draft) until the study is unblinded.
BLINDED_STATUSES = (StudyStatus.DRAFT, StudyStatus.OPEN, StudyStatus.LOCKED)


def _blinding_studies(user) -> QuerySet[Study]:
    if not getattr(user, "is_authenticated", False):
        return Study.objects.none()
    return Study.objects.filter(status__in=BLINDED_STATUSES, validators__user=user)


def session_is_blinded_for(user, session) -> bool:
    """True when ``user`` validates a study (not yet unblinded) that includes ``session``.

    Callers must then answer 404 for the session's detections, overlays, exports and review pages.
    """
    session_id = getattr(session, "pk", session)
    return _blinding_studies(user).filter(sessions__id=session_id).exists()


def image_is_blinded_for(user, image) -> bool:
    """True when ``user`` validates a study (not yet unblinded) that includes ``image``'s session."""
    session_id = getattr(image, "session_id", None)
    if session_id is None:
        from portal.imaging.models import Image

        session_id = Image.objects.filter(pk=getattr(image, "pk", image)).values_list("session_id", flat=True).first()
    if session_id is None:
        return False
    return session_is_blinded_for(user, session_id)


def blinded_session_ids_for(user) -> set:
    """Ids of every session ``user`` is blinded from (for filtering list endpoints in one query)."""
    return set(_blinding_studies(user).values_list("sessions__id", flat=True))


# --- studies, as their administrators see them -------------------------------------------------------
def study_list_for_admin(user) -> QuerySet[Study]:
    """Studies run by a center where ``user`` is a center administrator."""
    return Study.objects.filter(center_id__in=center_ids_for_user(user, [Role.CENTER_ADMIN])).select_related(
        "center", "model_version"
    )


def study_get_for_admin(user, study_id) -> Study:
    """One study for its administrator, else 404."""
    study = study_list_for_admin(user).filter(pk=study_id).first()
    if study is None:
        raise Http404("No such study.")
    return study


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


def study_get_for_validator(user, study_id) -> tuple[Study, StudyValidator]:
    """A study and the user's validator row, else 404."""
    membership = (
        StudyValidator.objects.filter(study_id=study_id, user=user)
        .exclude(study__status=StudyStatus.DRAFT)
        .select_related("study")
        .first()
    )
    if membership is None:
        raise Http404("No such study.")
    return membership.study, membership


def study_list_for_stain(user) -> QuerySet[Study]:
    """Open or locked studies of a center where ``user`` is a stain technician."""
    center_ids = center_ids_for_user(user, [Role.STAIN_TECHNICIAN])
    return (
        Study.objects.filter(centers__id__in=center_ids)
        .exclude(status=StudyStatus.DRAFT)
        .distinct()
    )


def study_get_for_stain(user, study_id) -> Study:
    study = study_list_for_stain(user).filter(pk=study_id).first()
    if study is None:
        raise Http404("No such study.")
    return study


def assignments_for(membership: StudyValidator) -> QuerySet[Assignment]:
    """The validator's cells in their own shuffled order."""
    return membership.assignments.select_related("cell").order_by("position")


def assignment_get(membership: StudyValidator, public_id: str) -> Assignment:
    assignment = membership.assignments.select_related("cell").filter(cell__public_id=public_id).first()
    if assignment is None:
        raise Http404("No such cell.")
    return assignment


def cell_get_for_viewer(user, study_id, public_id: str) -> Cell:
    """A cell's crop may be seen by its validators, the study's stain technicians and administrators."""
    cell = Cell.objects.filter(study_id=study_id, public_id=public_id).select_related("study").first()
    if cell is None:
        raise Http404("No such cell.")
    study = cell.study
    if cell.assignments.filter(validator__user=user).exists():
        return cell
    if study.status != StudyStatus.DRAFT and cell.center_id in center_ids_for_user(user, [Role.STAIN_TECHNICIAN]):
        return cell
    if study_list_for_admin(user).filter(pk=study.pk).exists():
        return cell
    raise Http404("No such cell.")


def field_get_for_validator(membership: StudyValidator, public_id: str) -> StudyField:
    field = StudyField.objects.filter(study_id=membership.study_id, public_id=public_id).select_related("image").first()
    if field is None:
        raise Http404("No such field.")
    return field


def stain_cells_for(user, study: Study) -> QuerySet[Cell]:
    """Cells of the user's stain-technician centers, in public-id (random) order, with entered results."""
    center_ids = center_ids_for_user(user, [Role.STAIN_TECHNICIAN])
    return study.cells.filter(center_id__in=center_ids).select_related("stain_result").order_by("public_id")


def study_get_for_report(user, study_id) -> Study:
    """An unblinded study's report: its administrators, and its validators once unblinded."""
    study = study_list_for_admin(user).filter(pk=study_id, status=StudyStatus.UNBLINDED).first()
    if study is None:
        study = Study.objects.filter(pk=study_id, status=StudyStatus.UNBLINDED, validators__user=user).first()
    if study is None:
        raise Http404("No such report.")
    return study


def study_get_for_picker(user, study_id) -> Study:
    """A draft picked-cells study, for clinic staff (center admin or uploader) of a center taking part
    who do not validate it."""
    center_ids = center_ids_for_user(user, [Role.CENTER_ADMIN, Role.UPLOADER])
    study = (
        Study.objects.filter(pk=study_id, centers__id__in=center_ids, status=StudyStatus.DRAFT)
        .exclude(validators__user=user)
        .distinct()
        .first()
    )
    if study is None:
        raise Http404("No such study.")
    return study


def picks_for(user, study: Study) -> list[dict]:
    fields = {f.image_id: f.public_id for f in study.fields.all()}
    return [
        {"id": p.pk, "field": fields.get(p.image_id, ""), "x_px": p.x_px, "y_px": p.y_px}
        for p in study.picks.filter(picked_by=user)
    ]


def field_get_for_viewer(user, study_id, public_id: str) -> StudyField:
    """The plain image of a field: validators of an open whole-field study, pickers of a draft one."""
    field = StudyField.objects.filter(study_id=study_id, public_id=public_id).select_related("study", "image").first()
    if field is None:
        raise Http404("No such field.")
    study = field.study
    if study.status == StudyStatus.DRAFT:
        study_get_for_picker(user, study.pk)
        if field.image.center_id not in center_ids_for_user(user, [Role.CENTER_ADMIN, Role.UPLOADER]):
            raise Http404("No such field.")
        return field
    if study.design == "whole_field" and StudyValidator.objects.filter(study=study, user=user).exists():
        return field
    raise Http404("No such field.")
