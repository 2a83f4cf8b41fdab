"""Writes for centers and memberships."""
from __future__ import annotations

from django.db import transaction

from portal.centers.models import Center, Membership, Role


@transaction.atomic
def center_create(*, code: str, name: str, time_zone: str = "UTC") -> Center:
    """Create a center after validation (``time_zone``: an IANA name, checked by ``full_clean``)."""
    center = Center(code=code.strip().upper(), name=name.strip(), time_zone=time_zone.strip())
    center.full_clean()
    center.save()
    return center


@transaction.atomic
def membership_grant(*, user, center: Center, role: str) -> Membership:
    """Give ``user`` a role in ``center`` (idempotent)."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(Role.values)}")
    membership, _ = Membership.objects.get_or_create(user=user, center=center, role=role)
    return membership


@transaction.atomic
def center_time_zone_set(*, center: Center, time_zone: str) -> Center:
    """Change the zone a center's times are shown in (storage stays UTC); ``ValidationError`` if unknown."""
    center.time_zone = time_zone.strip()
    center.full_clean()
    center.save(update_fields=["time_zone"])
    return center
