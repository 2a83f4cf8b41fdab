"""Receivers of the centers app: remember the user's default time zone in the session at login; forget a
request's cached memberships when one is written or deleted."""
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from portal.centers.models import Membership
from portal.centers.selectors import forget_cached_memberships
from portal.centers.timezones import SESSION_KEY, user_time_zone

post_save.connect(forget_cached_memberships, sender=Membership, dispatch_uid="centers.memberships_saved")
post_delete.connect(forget_cached_memberships, sender=Membership, dispatch_uid="centers.memberships_deleted")


@receiver(user_logged_in, dispatch_uid="centers.time_zone_at_login")
def remember_time_zone(sender, request, user, **kwargs) -> None:
    """Store the zone of the user's centers in the session (``portal.centers.timezones`` rule 2)."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = user_time_zone(user)
