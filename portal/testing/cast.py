"""Test support: the cast every test needs, built in code.

Center A (code "CA") and center B (code "CB") each have an uploader, a reviewer, a second reviewer,
a validator, a second validator, a stain technician and a center admin; plus a site auditor and a
superuser. Every password is ``PASSWORD``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model

from portal.centers.models import Center, Role
from portal.centers.services import center_create, membership_grant

PASSWORD = "correct-horse-battery-9"
ROLE_USERS = {
    "uploader": Role.UPLOADER,
    "reviewer": Role.REVIEWER,
    "reviewer2": Role.REVIEWER,
    "validator": Role.VALIDATOR,
    "validator2": Role.VALIDATOR,
    "stain": Role.STAIN_TECHNICIAN,
    "admin": Role.CENTER_ADMIN,
}


@dataclass
class CenterCast:
    center: Center
    users: dict = field(default_factory=dict)

    def __getattr__(self, name):
        users = self.__dict__.get("users", {})
        if name in users:
            return users[name]
        raise AttributeError(name)


@dataclass
class Cast:
    a: CenterCast
    b: CenterCast
    auditor: object
    superuser: object


def make_user(username: str, **extra):
    """Create a user whose password is ``PASSWORD``."""
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)
    return user


def build_cast() -> Cast:
    """Create both centers with their users, the auditor and a superuser."""
    centers = {}
    for key, code in (("a", "CA"), ("b", "CB")):
        center = center_create(code=code, name=f"Center {code}")
        cast = CenterCast(center=center)
        for name, role in ROLE_USERS.items():
            user = make_user(f"{key}_{name}")
            membership_grant(user=user, center=center, role=role)
            cast.users[name] = user
        centers[key] = cast
    auditor = make_user("auditor", is_auditor=True)
    superuser = get_user_model().objects.create_superuser(username="root", password=PASSWORD)
    return Cast(a=centers["a"], b=centers["b"], auditor=auditor, superuser=superuser)


# --- two-factor authentication in tests ------------------------------------------------------------

def otp_device_for(user):
    """The user's confirmed authenticator device (created on first call). ``totp_now(device)`` gives a
    code it accepts."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)


def totp_now(device) -> str:
    """The code the authenticator app would show now for ``device``, computed from its key as the app
    does (RFC 6238). django-otp refuses a code twice; this forgets the last used step first so a test
    can log the same user in several times within 30 s."""
    import time

    from django_otp.oath import TOTP

    type(device).objects.filter(pk=device.pk).update(last_t=-1)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


def otp_verify_session(client, user) -> None:
    """Mark ``client``'s logged-in session as verified by a second factor (as after the code page)."""
    from django_otp import DEVICE_ID_SESSION_KEY

    session = client.session
    session[DEVICE_ID_SESSION_KEY] = otp_device_for(user).persistent_id
    session.save()


def login_verified(client, user) -> None:
    """Log ``user`` in on ``client`` with the password and the second factor done."""
    client.force_login(user)
    otp_verify_session(client, user)
