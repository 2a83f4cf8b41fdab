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
