"""Access to the core app's objects: a notification is reached by its own user only."""
from __future__ import annotations

from django.utils.translation import gettext as _

from portal.core.errors import NotFound
from portal.core.models import Notification


def access_notification(*, user, id) -> Notification:
    """The user's own notification; "absent" and "someone else's" answer the same ``NotFound``, and an
    attempt on someone else's is audited (``access.refused``)."""
    from portal.centers.access import absent_or_refused, access_refused
    from portal.centers.policy import Action

    if not getattr(user, "is_authenticated", False):
        raise NotFound(_("Not found."))
    notification = Notification.objects.filter(pk=id).first()
    if notification is None:  # under row-level security another center's notification is invisible here
        raise absent_or_refused(Notification.objects, user=user, kind="core.notification", object_id=id,
                                action=Action.CENTER_READ, message=_("Not found."))
    if notification.user_id != user.pk:
        raise access_refused(user=user, kind="core.notification", object_id=notification.pk,
                             center_id=notification.center_id, action=Action.CENTER_READ, reason="not_recipient")
    return notification
