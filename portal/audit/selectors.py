"""Reads of the audit trail, for site auditors and superusers only."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.audit.models import AuditEvent


def user_can_read_audit(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active
                and (getattr(user, "is_auditor", False) or user.is_superuser))


def _start(d: date) -> datetime:
    return timezone.make_aware(datetime.combine(d, time.min), timezone.get_default_timezone())


def audit_event_list(
    *, user, center_id=None, username: str = "", action: str = "", object_type: str = "", object_id: str = "",
    date_from: date | None = None, date_to: date | None = None,
) -> QuerySet[AuditEvent]:
    """Events filtered by center, user, action (prefix), object and date (inclusive), newest first."""
    if not user_can_read_audit(user):
        raise PermissionDenied(_("Only site auditors read the audit trail."))
    qs = AuditEvent.objects.select_related("center").order_by("-sequence")
    if center_id:
        qs = qs.filter(center_id=center_id)
    if username:
        qs = qs.filter(actor_username__iexact=username.strip())
    if action:
        qs = qs.filter(action__startswith=action.strip())
    if object_type:
        qs = qs.filter(object_type=object_type.strip())
    if object_id:
        qs = qs.filter(object_id=object_id.strip())
    if date_from:
        qs = qs.filter(occurred_at__gte=_start(date_from))
    if date_to:
        qs = qs.filter(occurred_at__lt=_start(date_to + timedelta(days=1)))
    return qs
