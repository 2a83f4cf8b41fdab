"""Login throttling."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from portal.accounts.models import LoginFailure


def login_is_throttled(*, username: str, ip_address: str | None) -> bool:
    """True when this username or address has too many recent failed logins."""
    since = timezone.now() - timedelta(seconds=settings.LOGIN_THROTTLE_WINDOW_SECONDS)
    recent = LoginFailure.objects.filter(created_at__gte=since)
    limit = settings.LOGIN_THROTTLE_MAX_FAILURES
    by_user = recent.filter(username__iexact=username).count()
    by_ip = recent.filter(ip_address=ip_address).count() if ip_address else 0
    return by_user >= limit or by_ip >= limit * 4


def login_failure_record(*, username: str, ip_address: str | None) -> None:
    """Remember one failed login."""
    LoginFailure.objects.create(username=username[:150], ip_address=ip_address)


def login_failures_clear(*, username: str) -> None:
    """Forget a user's failed logins after a successful one."""
    LoginFailure.objects.filter(username__iexact=username).delete()
