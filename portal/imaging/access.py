"""Access to patients, sessions and images, and the gate every app that shows model output builds on.

``access_<thing>(*, user, id, action)`` returns the object or raises ``portal.core.errors.NotFound``
(absent, another center's, or, for an action that shows model output, a session the user is blinded
from); see ``portal.centers.access.center_gate`` for a member who lacks the action.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from portal.centers.access import absent_or_refused, access_refused, center_gate
from portal.centers.policy import MODEL_OUTPUT_ACTIONS, Action
from portal.imaging.models import Image, ImageSession, Patient
from portal.imaging.selectors import session_is_blinded


def session_gate(*, user, center_id, session_id, action: Action, kind: str, object_id) -> set[str]:
    """Center, role and blinding together, for any object of a session; returns the user's roles there.

    The blinding check comes first among members: a user blinded from the session gets ``NotFound``
    (audited) for every action that shows model output, whatever roles they hold.
    """
    if action in MODEL_OUTPUT_ACTIONS and session_is_blinded(user=user, session_id=session_id):
        raise access_refused(user=user, kind=kind, object_id=object_id, center_id=center_id, action=action,
                             reason="blinded")
    return center_gate(user=user, center_id=center_id, action=action, kind=kind, object_id=object_id)


T = TypeVar("T")


def access_in_session(
    queryset: QuerySet[T], *, user, id, action: Action, kind: str,
    session_of: Callable[[Any], Any] = lambda obj: obj.session_id,
    center_of: Callable[[Any], Any] = lambda obj: obj.center_id,
) -> T:
    """The object ``id`` of ``queryset`` (an object of one session) after ``session_gate``; ``NotFound``
    when there is none. The building block of every ``access_<thing>`` of a session's objects."""
    obj = queryset.filter(pk=id).first()
    if obj is None:
        raise absent_or_refused(queryset, user=user, kind=kind, object_id=id, action=action, center_of=center_of,
                                message=_("No such %(rsplit)s.") % {"rsplit": kind.rsplit(".", 1)[-1]})
    session_gate(user=user, center_id=center_of(obj), session_id=session_of(obj), action=action, kind=kind,
                 object_id=id)
    return obj


def access_patient(*, user, id, action: Action = Action.IMAGING_READ) -> Patient:
    """A patient ``user`` may do ``action`` on."""
    patient = Patient.objects.filter(pk=id).select_related("center").first()
    if patient is None:
        raise absent_or_refused(Patient.objects, user=user, kind="imaging.patient", object_id=id, action=action,
                                message=_("No such patient."))
    center_gate(user=user, center_id=patient.center_id, action=action, kind="imaging.patient", object_id=id)
    return patient


def access_session(*, user, id, action: Action = Action.IMAGING_READ) -> ImageSession:
    """A session ``user`` may do ``action`` on (blinding applies to model-output actions)."""
    return access_in_session(ImageSession.objects.select_related("center", "patient"), user=user, id=id,
                             action=action, kind="imaging.imagesession", session_of=lambda session: session.pk)


def access_image(*, user, id, action: Action = Action.IMAGING_READ) -> Image:
    """An image ``user`` may do ``action`` on (blinding applies to model-output actions)."""
    return access_in_session(Image.objects.select_related("center", "session", "session__patient"), user=user,
                             id=id, action=action, kind="imaging.image")
