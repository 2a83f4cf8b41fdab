"""Users of the portal. Roles per center live in ``portal.centers.Membership``."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A portal user (clinic staff, reviewer, validator, admin or site auditor)."""

    is_auditor = models.BooleanField(
        _("site auditor"), default=False,
        help_text=_("Site auditor: reads the audit trail of every center, nothing else."),
    )
    language = models.CharField(
        _("language"), max_length=10, blank=True, choices=settings.LANGUAGES,
        help_text=_("The language of the portal for this user; empty: the browser's language."),
    )

    @property
    def display_name(self) -> str:
        """Full name when known, else the username."""
        return self.get_full_name() or self.username
