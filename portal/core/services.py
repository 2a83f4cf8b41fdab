"""Writes of the core app: users' notifications (created by other apps' signal receivers)."""
from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from portal.core.models import Notification, NotificationKind


def notifications_create(*, user_ids: Iterable, kind: NotificationKind, params: dict, link: str = "",
                         center_id=None) -> list[Notification]:
    """One unread notification per user (duplicates in ``user_ids`` count once), in one transaction."""
    unique = list(dict.fromkeys(uid for uid in user_ids if uid is not None))
    rows = [Notification(user_id=uid, kind=kind, params=params, link=link, center_id=center_id) for uid in unique]
    for row in rows:
        row.full_clean(exclude=["user", "center"])
    with transaction.atomic():
        return Notification.objects.bulk_create(rows)


def notification_mark_read(*, notification: Notification) -> Notification:
    """Mark one notification read (again: nothing changes)."""
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification


def notifications_mark_all_read(*, user) -> int:
    """Mark every unread notification of ``user`` read; returns how many."""
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=timezone.now())
