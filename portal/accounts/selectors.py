"""Account reads."""
from __future__ import annotations

from datetime import datetime

from django_otp import user_has_device
from rest_framework.authtoken.models import Token

from portal.centers.models import Membership, Role

OTP_REQUIRED_ROLES = (Role.CENTER_ADMIN, Role.VALIDATOR)


def api_token_created_at(*, user) -> datetime | None:
    """When ``user``'s API token was issued, or None when they have none (the key itself is never shown again)."""
    return Token.objects.filter(user=user).values_list("created", flat=True).first()


def user_requires_otp(user) -> bool:
    """Two-factor authentication is required for center admins, validators (who sign), site auditors and
    staff (admin site); optional for everyone else."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_auditor or user.is_staff or user.is_superuser:
        return True
    return Membership.objects.filter(user=user, role__in=OTP_REQUIRED_ROLES).exists()


def user_has_otp_device(user) -> bool:
    """True when the user has a confirmed authenticator or backup codes."""
    return user_has_device(user, confirmed=True)
