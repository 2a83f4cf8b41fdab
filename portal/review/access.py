"""Access to review objects: ``access_session``, ``access_image``, ``access_detection`` and
``access_pick_list`` (``*, user, id, action``), default action ``review.view``.

Center, role and blinding are checked together (``portal.imaging.access.session_gate``): another
center's object, or one of a session the user is blinded from, is ``NotFound``; a member of the center
without the review action gets 403 (``review.*`` actions are refused openly, see the policy table).
"""
from __future__ import annotations

from portal.centers.policy import Action
from portal.core.errors import NotFound
from portal.imaging.access import session_gate
from portal.imaging.models import Image, ImageSession
from portal.results.models import Detection
from portal.review.models import PickList


def access_session(*, user, id, action: Action = Action.REVIEW_VIEW) -> ImageSession:
    """A session ``user`` may review (or do ``action`` on)."""
    session = ImageSession.objects.select_related("patient", "center").filter(pk=id).first()
    if session is None:
        raise NotFound("No such session.")
    session_gate(user=user, center_id=session.center_id, session_id=session.pk, action=action,
                 kind="imaging.imagesession", object_id=id)
    return session


def access_image(*, user, id, action: Action = Action.REVIEW_VIEW) -> Image:
    """An image ``user`` may review (or do ``action`` on)."""
    image = Image.objects.select_related("session", "session__patient", "center").filter(pk=id).first()
    if image is None:
        raise NotFound("No such image.")
    session_gate(user=user, center_id=image.center_id, session_id=image.session_id, action=action,
                 kind="imaging.image", object_id=id)
    return image


def access_detection(*, user, id, action: Action = Action.REVIEW_VIEW) -> Detection:
    """A detection ``user`` may review (or do ``action`` on)."""
    detection = (Detection.objects.select_related("result_set", "result_set__image", "result_set__image__session")
                 .filter(pk=id).first())
    if detection is None:
        raise NotFound("No such detection.")
    image = detection.result_set.image
    session_gate(user=user, center_id=image.center_id, session_id=image.session_id, action=action,
                 kind="results.detection", object_id=id)
    return detection


def access_pick_list(*, user, id, action: Action = Action.REVIEW_EXPORT) -> PickList:
    """A pick list ``user`` may read (an export: ``review.export``)."""
    pick_list = PickList.objects.select_related("session", "session__patient", "created_by").filter(pk=id).first()
    if pick_list is None:
        raise NotFound("No such pick list.")
    session_gate(user=user, center_id=pick_list.center_id, session_id=pick_list.session_id, action=action,
                 kind="review.picklist", object_id=id)
    return pick_list
