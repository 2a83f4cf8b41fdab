"""Reads of the core app: a user's own notifications."""
from __future__ import annotations

from django.db.models import QuerySet

from portal.core.models import Notification


def notifications_for(user, *, limit: int = 50) -> QuerySet[Notification]:
    """The user's newest notifications."""
    if not getattr(user, "is_authenticated", False):
        return Notification.objects.none()
    return Notification.objects.filter(user=user).order_by("-created_at")[:limit]


def unread_count(user) -> int:
    """How many unread notifications ``user`` has (one query)."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()
