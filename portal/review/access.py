"""Access to review objects: ``access_session``, ``access_image``, ``access_detection`` and
``access_pick_list`` (``*, user, id, action``), default action ``review.view``.

Center, role and blinding are checked together (``portal.imaging.access.session_gate``): another
center's object, or one of a session the user is blinded from, is ``NotFound``; a member of the center
without the review action gets 403 (``review.*`` actions are refused openly, see the policy table).
"""
from __future__ import annotations

from portal.centers.policy import Action
from portal.imaging import access as imaging_access
from portal.imaging.access import access_in_session
from portal.imaging.models import Image, ImageSession
from portal.results.models import Detection
from portal.review.models import PickList


def access_session(*, user, id, action: Action = Action.REVIEW_VIEW) -> ImageSession:
    """A session ``user`` may review (or do ``action`` on)."""
    return imaging_access.access_session(user=user, id=id, action=action)


def access_image(*, user, id, action: Action = Action.REVIEW_VIEW) -> Image:
    """An image ``user`` may review (or do ``action`` on)."""
    return imaging_access.access_image(user=user, id=id, action=action)


def access_detection(*, user, id, action: Action = Action.REVIEW_VIEW) -> Detection:
    """A detection ``user`` may review (or do ``action`` on)."""
    return access_in_session(
        Detection.objects.select_related("result_set", "result_set__image", "result_set__image__session"),
        user=user, id=id, action=action, kind="results.detection",
        session_of=lambda d: d.result_set.image.session_id, center_of=lambda d: d.result_set.center_id)


def access_pick_list(*, user, id, action: Action = Action.REVIEW_EXPORT) -> PickList:
    """A pick list ``user`` may read (an export: ``review.export``)."""
    return access_in_session(PickList.objects.select_related("session", "session__patient", "created_by"),
                             user=user, id=id, action=action, kind="review.picklist")
