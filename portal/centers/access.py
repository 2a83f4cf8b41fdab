"""The center part of the access layer: membership and the policy table, the one not-found answer, and
the audit event of a refused attempt on an object that exists.

Each app's ``access.py`` builds its ``access_<thing>(*, user, id, action)`` on ``center_gate`` (imaging
adds the blinding check in ``portal.imaging.access.session_gate``); list selectors filter with
``center_ids_for``. Absent, another center's and blinded objects all raise the same
``portal.core.errors.NotFound``; a member who lacks an action that ``REFUSED_OPENLY`` lists gets
``PermissionDenied`` (403).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _
from rest_framework.permissions import BasePermission

from portal.audit.services import audit_record
from portal.centers.models import Center, Membership
from portal.centers.policy import REFUSED_OPENLY, Action, roles_allow, roles_for
from portal.centers.selectors import center_ids_for_user, user_roles_in_center
from portal.core.errors import NotFound


def center_ids_for(user, action: Action) -> list:
    """Ids of the centers where ``user`` may do ``action``."""
    return center_ids_for_user(user, roles_for(action))


def access_centers(*, user, action: Action, message: str = "") -> list:
    """Ids of the centers where ``user`` may do ``action``; ``PermissionDenied`` (403) when there is none.

    The gate of list pages, list endpoints and create forms, where no object names a center yet.
    """
    ids = center_ids_for(user, action)
    if not ids:
        raise PermissionDenied(message or "No role of yours allows this.")
    return ids


def user_may(user, center_id, action: Action) -> bool:
    """Whether ``user`` may do ``action`` in the center."""
    return roles_allow(user_roles_in_center(user, center_id), action)


def access_refused(*, user, kind: str, object_id, center_id, action: Action, reason: str) -> NotFound:
    """Record a refused attempt on an object that exists (another center's, or blinded) and return the
    not-found error to raise. The event names the user, the kind and id of the object and the reason;
    it is filed under the object's center and copies nothing of the object."""
    audit_record(actor=user, action="access.refused", center=center_id, object_type=kind,
                 object_id=str(object_id), after={"action": str(action), "reason": reason})
    return NotFound(_("Not found."))


def absent_or_refused(queryset, *, user, kind: str, object_id, action: Action, message: str,
                      center_of: Callable[[Any], Any] = lambda obj: obj.center_id, **lookup) -> NotFound:
    """The error for an object the user's lookup did not find (``lookup`` defaults to ``pk=object_id``).

    Under PostgreSQL row-level security another center's object is invisible to the user's query; so
    that the attempt is still audited as ``access.refused``, the same lookup runs once more across
    centers (only to learn the object's center). Without row-level security nothing was hidden: absent.
    """
    from portal.centers.rls import rls_active, system_scope

    if rls_active():
        with system_scope("the center of a refused object, for its audit event"):
            obj = queryset.filter(**(lookup or {"pk": object_id})).first()
            center_id = center_of(obj) if obj is not None else None
        if obj is not None:
            return access_refused(user=user, kind=kind, object_id=object_id, center_id=center_id, action=action,
                                  reason="other_center")
    return NotFound(message)


def center_gate(*, user, center_id, action: Action, kind: str, object_id) -> set[str]:
    """Check that ``user`` may do ``action`` on an object of ``center_id``; return their roles there.

    Not a member of the center: the attempt is audited and ``NotFound`` raised. A member without the
    action: ``PermissionDenied`` for actions in ``REFUSED_OPENLY``, else ``NotFound``.
    """
    roles = user_roles_in_center(user, center_id)
    if not roles:
        raise access_refused(user=user, kind=kind, object_id=object_id, center_id=center_id, action=action,
                             reason="other_center")
    if not roles_allow(roles, action):
        if action in REFUSED_OPENLY:
            raise PermissionDenied
        raise NotFound(_("Not found."))
    return roles


def access_center(*, user, id, action: Action = Action.CENTER_READ) -> Center:
    """A center where ``user`` may do ``action``, else ``NotFound`` (or ``PermissionDenied``, see
    ``center_gate``)."""
    center = Center.objects.filter(pk=id).first()
    if center is None:
        raise NotFound(_("No such center."))
    center_gate(user=user, center_id=center.pk, action=action, kind="centers.center", object_id=center.pk)
    return center


class IsCenterMember(BasePermission):
    """DRF gate of the jobs, results and registry APIs: authenticated and holding a role in a center.

    Objects are still reached only through the ``access_*`` functions; this only answers 403 to users who
    hold no role anywhere (a site auditor), before any lookup.
    """

    allow_superuser = False
    message = "Only members of a center may use this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if self.allow_superuser and user.is_superuser:
            return True
        return Membership.objects.filter(user=user).exists()


class IsCenterMemberOrSuperuser(IsCenterMember):
    allow_superuser = True
