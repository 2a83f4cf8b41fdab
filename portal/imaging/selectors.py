"""Reads of patients, sessions and images, always filtered by the user's centers and roles.

Who reads what: uploaders, reviewers and center admins read their center's patients, sessions and
images (metadata and pixels). Validators (blinded) and stain technicians do not: their apps give them
the crops they need. Objects of other centers, or of a center where the user lacks a reading role, are
simply absent (``Http404``), never ``403``.
"""
from __future__ import annotations

from datetime import date

from django.db.models import Count, QuerySet
from django.http import Http404

from portal.centers.models import Role
from portal.centers.selectors import center_ids_for_user
from portal.imaging.models import Image, ImageSession, Patient

READ_ROLES = (Role.UPLOADER, Role.REVIEWER, Role.CENTER_ADMIN)
WRITE_ROLES = (Role.UPLOADER, Role.CENTER_ADMIN)


def readable_center_ids(user) -> list:
    return center_ids_for_user(user, READ_ROLES)


def writable_center_ids(user) -> list:
    return center_ids_for_user(user, WRITE_ROLES)


def user_can_read_imaging(user) -> bool:
    return bool(readable_center_ids(user))


def user_can_write_imaging(user) -> bool:
    return bool(writable_center_ids(user))


def patient_list(*, user, center_id=None, code: str = "") -> QuerySet[Patient]:
    qs = Patient.objects.filter(center_id__in=readable_center_ids(user)).select_related("center")
    if center_id:
        qs = qs.filter(center_id=center_id)
    if code:
        qs = qs.filter(code__icontains=code.strip())
    return qs.annotate(session_count=Count("sessions")).order_by("code")


def patient_get(*, user, pk, for_write: bool = False) -> Patient:
    ids = writable_center_ids(user) if for_write else readable_center_ids(user)
    patient = Patient.objects.filter(center_id__in=ids, pk=pk).select_related("center").first()
    if patient is None:
        raise Http404("No such patient.")
    return patient


def session_list(
    *, user, center_id=None, patient_id=None, patient_code: str = "", date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[ImageSession]:
    qs = ImageSession.objects.filter(center_id__in=readable_center_ids(user)).select_related("center", "patient")
    if patient_id:
        qs = qs.filter(patient_id=patient_id)
    qs = session_filter(qs, center_id=center_id, patient_code=patient_code, date_from=date_from, date_to=date_to)
    return qs.annotate(image_count=Count("images")).order_by("-acquisition_date", "-created_at")


def session_filter(
    qs: QuerySet[ImageSession], *, center_id=None, patient_code: str = "", date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[ImageSession]:
    """The session-list filters shared by every page that lists sessions (center, patient code, dates)."""
    if center_id:
        qs = qs.filter(center_id=center_id)
    if patient_code:
        qs = qs.filter(patient__code__icontains=patient_code.strip())
    if date_from:
        qs = qs.filter(acquisition_date__gte=date_from)
    if date_to:
        qs = qs.filter(acquisition_date__lte=date_to)
    return qs


def session_get(*, user, pk, for_write: bool = False) -> ImageSession:
    ids = writable_center_ids(user) if for_write else readable_center_ids(user)
    session = ImageSession.objects.filter(center_id__in=ids, pk=pk).select_related("center", "patient").first()
    if session is None:
        raise Http404("No such session.")
    return session


def image_list(
    *, user, center_id=None, session_id=None, patient_code: str = "", status: str = "",
    date_from: date | None = None, date_to: date | None = None, needs_um_per_px: bool | None = None,
) -> QuerySet[Image]:
    qs = Image.objects.filter(center_id__in=readable_center_ids(user)).select_related(
        "center", "session", "session__patient"
    )
    if center_id:
        qs = qs.filter(center_id=center_id)
    if session_id:
        qs = qs.filter(session_id=session_id)
    if patient_code:
        qs = qs.filter(session__patient__code__icontains=patient_code.strip())
    if status:
        qs = qs.filter(status=status)
    if date_from:
        qs = qs.filter(session__acquisition_date__gte=date_from)
    if date_to:
        qs = qs.filter(session__acquisition_date__lte=date_to)
    if needs_um_per_px is not None:
        qs = qs.filter(um_per_px__isnull=needs_um_per_px)
    return qs


def image_get(*, user, pk, for_write: bool = False) -> Image:
    ids = writable_center_ids(user) if for_write else readable_center_ids(user)
    image = Image.objects.filter(center_id__in=ids, pk=pk).select_related("center", "session", "session__patient").first()
    if image is None:
        raise Http404("No such image.")
    return image
