"""Users of the portal. Roles per center live in ``portal.centers.Membership``."""
from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A portal user (clinic staff, reviewer, validator, admin or site auditor)."""

    is_auditor = models.BooleanField(
        default=False, help_text="Site auditor: reads the audit trail of every center, nothing else."
    )

    @property
    def display_name(self) -> str:
        """Full name when known, else the username."""
        return self.get_full_name() or self.username
