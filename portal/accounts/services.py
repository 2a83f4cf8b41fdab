"""Login throttling and personal API tokens."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from portal.accounts.models import LoginFailure
from portal.audit.services import audit_record


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


def api_token_issue(*, user, request=None) -> str:
    """Give ``user`` a new API token (replacing any old one, which stops working at once) and return
    its key: the only time the key is shown. Audited without the key."""
    with transaction.atomic():
        replaced = Token.objects.filter(user=user).delete()[0] > 0
        token = Token.objects.create(user=user)
        audit_record(actor=user, action="api_token.rotate" if replaced else "api_token.create",
                     object_type="authtoken.token", object_id=str(user.pk), request=request)
    return token.key


def api_token_revoke(*, user, request=None) -> bool:
    """Delete ``user``'s API token; False when there was none. Audited."""
    with transaction.atomic():
        deleted = Token.objects.filter(user=user).delete()[0] > 0
        if deleted:
            audit_record(actor=user, action="api_token.revoke", object_type="authtoken.token",
                         object_id=str(user.pk), request=request)
    return deleted
