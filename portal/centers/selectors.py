"""Reads about centers and roles. Every other app filters its querysets through these."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from portal.centers.models import Center, Membership, Role

ALL_CENTER_ROLES = tuple(Role.values)


def center_ids_for_user(user, roles: Iterable[str] | None = None) -> list:
    """Ids of the centers where ``user`` holds one of ``roles`` (any role when None)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    memberships = Membership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=list(roles))
    return list(memberships.values_list("center_id", flat=True).distinct())


def centers_for_user(user, roles: Iterable[str] | None = None) -> QuerySet[Center]:
    """Centers where ``user`` holds one of ``roles``."""
    return Center.objects.filter(id__in=center_ids_for_user(user, roles))


def user_roles_in_center(user, center_id) -> set[str]:
    """The roles ``user`` holds in one center."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    return set(Membership.objects.filter(user=user, center_id=center_id).values_list("role", flat=True))


def user_has_role(user, center_id, roles: Iterable[str]) -> bool:
    """True when ``user`` holds any of ``roles`` in the center."""
    return bool(user_roles_in_center(user, center_id) & set(roles))


def user_roles(user) -> dict[str, set[str]]:
    """Map of center code -> roles of ``user``, for pages that show what a user may do."""
    result: dict[str, set[str]] = {}
    if not getattr(user, "is_authenticated", False):
        return result
    for code, role in Membership.objects.filter(user=user).values_list("center__code", "role"):
        result.setdefault(code, set()).add(role)
    return result


def centers_with_roles(user, centers: Iterable[Center]) -> list[dict]:
    """``{"id", "code", "name", "time_zone", "roles"}`` for each of ``centers``, with the roles ``user`` holds there."""
    centers = list(centers)
    roles: dict = {}
    for center_id, role in Membership.objects.filter(user=user, center__in=centers).values_list("center_id", "role"):
        roles.setdefault(center_id, set()).add(role)
    return [{"id": c.id, "code": c.code, "name": c.name, "time_zone": c.time_zone, "roles": sorted(roles.get(c.id, ()))}
            for c in centers]
