"""Reads of patients, sessions and images, always filtered by the user's centers and roles.

Who reads what: uploaders, reviewers and center admins read their center's patients, sessions and
images (metadata and pixels). Validators (blinded) and stain technicians do not: their apps give them
the crops they need. One object is reached through ``portal.imaging.access``; the blinding reads here
(``SessionBlinding``) are what every app that shows model output filters on.
"""
from __future__ import annotations

from datetime import date

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from portal.centers.access import center_ids_for
from portal.centers.models import Center
from portal.centers.policy import Action
from portal.imaging.models import Image, ImageSession, Patient, SessionBlinding


def readable_center_ids(user) -> list:
    return center_ids_for(user, Action.IMAGING_READ)


def writable_center_ids(user) -> list:
    return center_ids_for(user, Action.IMAGING_WRITE)


def writable_centers(user) -> QuerySet[Center]:
    """Centers where ``user`` may create patients and sessions (for forms' choices)."""
    return Center.objects.filter(id__in=writable_center_ids(user))


def writable_patients(user) -> QuerySet[Patient]:
    """Patients of the centers where ``user`` may create sessions (for forms' choices)."""
    return Patient.objects.filter(center_id__in=writable_center_ids(user))


# --- blinding: a fact every reader of model output filters on ------------------------------------------
def blinded_session_ids(user) -> QuerySet:
    """Ids of the sessions ``user`` is blinded from (a subquery; see ``SessionBlinding``)."""
    user_id = user.pk if getattr(user, "is_authenticated", False) else None
    return SessionBlinding.objects.filter(user_id=user_id).values("session_id")


def session_is_blinded(*, user, session_id) -> bool:
    """Whether ``user`` is blinded from the model output of the session."""
    if not getattr(user, "is_authenticated", False):
        return False
    return SessionBlinding.objects.filter(user=user, session_id=session_id).exists()


def user_is_blinded(user) -> bool:
    """Whether ``user`` is blinded from any session: such users learn no model names or versions."""
    if not getattr(user, "is_authenticated", False):
        return False
    return SessionBlinding.objects.filter(user=user).exists()


def patient_list(*, user, center_id=None, code: str = "") -> QuerySet[Patient]:
    qs = Patient.objects.filter(center_id__in=readable_center_ids(user)).select_related("center")
    if center_id:
        qs = qs.filter(center_id=center_id)
    if code:
        qs = qs.filter(code__icontains=code.strip())
    return qs.annotate(session_count=Count("sessions")).order_by("code")


def session_list(
    *, user, center_id=None, patient_id=None, patient_code: str = "", date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[ImageSession]:
    qs = ImageSession.objects.filter(center_id__in=readable_center_ids(user)).select_related("center", "patient")
    if patient_id:
        qs = qs.filter(patient_id=patient_id)
    qs = session_filter(qs, center_id=center_id, patient_code=patient_code, date_from=date_from, date_to=date_to)
    # A correlated count, not Count("images") with GROUP BY: the page's COUNT(*) then needs no join.
    images = Image.objects.filter(session=OuterRef("pk")).order_by().values("session").annotate(n=Count("*"))
    return qs.annotate(image_count=Coalesce(Subquery(images.values("n")), 0)).order_by("-acquisition_date",
                                                                                         "-created_at")


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


# --- the clinic's file names: one rule for every page that shows them ----------------------------------
def display_names_for(user, images) -> dict:
    """``{image id: the clinic's file name}`` for the images whose file name ``user`` may see, "" for the others.

    Only members of the image's own center who read its images (uploaders, reviewers, center
    administrators) and who are not blinded from its session see it; other centers, validators and
    stain technicians, blinded users and anonymous users get "". Two queries however many images.
    """
    images = list(images)
    if not images or not getattr(user, "is_authenticated", False):
        return {image.pk: "" for image in images}
    readable = {str(c) for c in readable_center_ids(user)}
    blinded = {str(s) for s in blinded_session_ids(user).values_list("session_id", flat=True)}
    return {
        image.pk: image.original_name
        if str(image.center_id) in readable and str(image.session_id) not in blinded else ""
        for image in images
    }


def display_name_for(user, image: Image) -> str:
    """The clinic's file name of ``image`` if ``user`` may see it (see ``display_names_for``), else ""."""
    return display_names_for(user, [image])[image.pk]
