"""Reads about centers and roles. Every other app filters its querysets through these.

Within a request (``memberships_cached``, entered by ``portal.centers.rls.CenterScopeMiddleware``) a
user's memberships are read once and shared by every access check of that request: the gate of a list,
its selector's center filter and each object's role check. Any membership written or deleted meanwhile
empties the cache (``forget_cached_memberships``, on the model's signals: write memberships through
``portal.centers.services``, not ``bulk_create``/``update``, which send none), and one written inside an
atomic block stops the caching until that transaction commits; outside a request (tasks,
commands, tests calling selectors directly) every call reads the database.
"""
from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet

from portal.centers.models import Center, Membership, Role
from portal.centers.rls import current_scope

ALL_CENTER_ROLES = tuple(Role.values)

@dataclass
class _Cache:
    """One request's memberships, by user and scope. ``uncommitted``: a membership was written in a
    transaction that has not committed yet; until it does, nothing is cached (a read would hold the
    uncommitted row, which a rollback takes back)."""

    roles: dict = field(default_factory=dict)
    uncommitted: bool = False


_cache: contextvars.ContextVar[_Cache | None] = contextvars.ContextVar("portal_memberships_cache", default=None)


@contextlib.contextmanager
def memberships_cached() -> Iterator[None]:
    """Read each user's memberships at most once inside the block (one request)."""
    token = _cache.set(_Cache())
    try:
        yield
    finally:
        _cache.reset(token)


def forget_cached_memberships(using: str | None = None, **_kwargs) -> None:
    """Drop what ``memberships_cached`` holds (a membership was written or deleted); inside an atomic block,
    cache nothing more until its transaction commits (never, if it rolls back)."""
    cache = _cache.get()
    if cache is None:
        return
    cache.roles.clear()
    if transaction.get_connection(using).in_atomic_block:
        cache.uncommitted = True
        transaction.on_commit(lambda: _committed(cache), using=using)


def _committed(cache: _Cache) -> None:
    cache.roles.clear()
    cache.uncommitted = False


def _cache_key(user) -> tuple:
    # Under row-level security what the query returns depends on the scope in force (a nested system or
    # center scope sees other rows): the key names it, so no read is reused under another scope.
    scope = current_scope()
    signature = None if scope is None else (scope.center_ids, scope.user_id, scope.audit_all, scope.system)
    return user.pk, signature


def user_memberships(user) -> dict:
    """``{center id: frozenset of roles}`` of ``user`` (empty for anonymous and inactive users); read once
    per request (see the module)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return {}
    cache = _cache.get()
    if cache is not None and cache.uncommitted:
        cache = None
    if cache is not None:
        found = cache.roles.get(_cache_key(user))
        if found is not None:
            return dict(found)  # the caller's own copy: the cached one stays as read
    roles: dict = {}
    for center_id, role in Membership.objects.filter(user=user).values_list("center_id", "role"):
        roles.setdefault(center_id, set()).add(role)
    result = {center_id: frozenset(r) for center_id, r in roles.items()}
    if cache is not None:
        cache.roles[_cache_key(user)] = dict(result)  # after the query: a request's scope is resolved by then
    return result


def center_ids_for_user(user, roles: Iterable[str] | None = None) -> list:
    """Ids of the centers where ``user`` holds one of ``roles`` (any role when None)."""
    memberships = user_memberships(user)
    if roles is None:
        return list(memberships)
    wanted = set(roles)
    return [center_id for center_id, held in memberships.items() if held & wanted]


def centers_for_user(user, roles: Iterable[str] | None = None) -> QuerySet[Center]:
    """Centers where ``user`` holds one of ``roles``."""
    return Center.objects.filter(id__in=center_ids_for_user(user, roles))


def user_roles_in_center(user, center_id) -> set[str]:
    """The roles ``user`` holds in one center."""
    return set(user_memberships(user).get(_center_pk(center_id), ()))


def _center_pk(center_id):
    """A center id as the membership rows hold it (a UUID; callers pass a UUID, its text or a Center)."""
    if isinstance(center_id, Center):
        return center_id.pk
    if isinstance(center_id, uuid.UUID) or center_id is None:
        return center_id
    try:
        return uuid.UUID(str(center_id))
    except ValueError:
        return None


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
