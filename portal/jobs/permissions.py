"""API permission shared by the jobs, results and registry APIs: a center member (auditors are not)."""
from __future__ import annotations

from rest_framework.permissions import BasePermission

from portal.centers.models import Membership


class IsCenterMember(BasePermission):
    """Authenticated and holding a role in at least one center; superusers when ``allow_superuser``."""

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
