"""Password checks (counted by django-axes), two-factor devices and personal API tokens."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token

from portal.accounts.lockout import lockout_message
from portal.audit.services import audit_record
from portal.core.errors import DomainError

TOTP_DEVICE_NAME = "authenticator"
BACKUP_DEVICE_NAME = "backup codes"


def password_check(*, user, password: str, request=None) -> bool:
    """True when ``password`` is ``user``'s password. Goes through ``authenticate(request=...)`` so that
    django-axes counts every failure against this username and address, like a failed login.

    Raises ``DomainError`` (429) once this username is locked out from this address. A call without a
    request (a script, a test) is counted under no address.
    """
    http_request = getattr(request, "_request", request) or HttpRequest()
    matched = authenticate(http_request, username=user.get_username(), password=password or "")
    if getattr(http_request, "axes_locked_out", False):
        seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
        raise DomainError(lockout_message(), extra={"retry_after_seconds": seconds}, status_code=429)
    return matched is not None and matched.pk == user.pk


# --- two-factor devices ---------------------------------------------------------------------------

def otp_enrolment_device(*, user) -> TOTPDevice:
    """The user's unconfirmed authenticator device being enrolled (created on first call, reused after,
    so reloading the enrolment page keeps the same secret)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
    return device


def otp_enrol_confirm(*, user, device: TOTPDevice, token: str, request) -> list[str] | None:
    """Confirm the enrolment with a code from the authenticator. On success the session counts as
    verified and the new backup codes are returned (the only time they are shown); None when the code
    is wrong. Audited either way."""
    if device.user_id != user.pk or device.confirmed:
        raise DomainError(_("This enrolment is not pending."), status_code=409)
    if not device.verify_token((token or "").strip()):
        audit_record(actor=user, action="auth.otp.enrol.failed", object_type="otp.device",
                     object_id=str(user.pk), request=request)
        return None
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = otp_backup_codes_issue(user=user)
        audit_record(actor=user, action="auth.otp.enrol", object_type="otp.device", object_id=str(user.pk),
                     request=request)
    otp_login(request, device)
    return codes


def otp_backup_codes_issue(*, user) -> list[str]:
    """Replace the user's backup codes (django-otp static tokens, each works once) and return them to be
    shown once; any earlier codes stop working."""
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        device = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
        codes = [StaticToken.random_token() for _ in range(settings.OTP_BACKUP_CODES)]
        StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def otp_verify(*, user, token: str, request) -> bool:
    """Check a code from the authenticator or an unused backup code; on success mark the session as
    verified (django-otp). django-otp slows repeated failures per device. Audited either way."""
    device = match_token(user, (token or "").strip().replace(" ", ""))
    if device is None:
        audit_record(actor=user, action="auth.otp.failed", object_type="otp.device", object_id=str(user.pk),
                     request=request)
        return False
    otp_login(request, device)
    audit_record(actor=user, action="auth.otp.verify", object_type="otp.device", object_id=str(user.pk),
                 after={"method": "backup code" if isinstance(device, StaticDevice) else "authenticator"},
                 request=request)
    return True


# --- API tokens -----------------------------------------------------------------------------------

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


@transaction.atomic
def user_language_set(*, user, language: str) -> None:
    """Remember the portal language ``user`` chose (a code of ``settings.LANGUAGES``; "" = the browser's)."""
    if language and language not in dict(settings.LANGUAGES):
        raise DomainError(_("This language is not offered."), extra={"language": language})
    user.language = language
    user.save(update_fields=["language"])
