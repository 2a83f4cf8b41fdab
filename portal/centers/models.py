"""Centers (clinics) and the roles users hold in them."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.core.models import UUIDModel


class Role(models.TextChoices):
    UPLOADER = "uploader", "Uploader (clinic staff)"
    REVIEWER = "reviewer", "Reviewer"
    VALIDATOR = "validator", "Validator (blinded)"
    STAIN_TECHNICIAN = "stain_technician", "Stain technician"
    CENTER_ADMIN = "center_admin", "Center administrator"


class Center(UUIDModel):
    """A clinic. Every patient, session and image belongs to exactly one center."""

    code = models.CharField(max_length=8, unique=True, help_text="Short code used in pseudonyms, e.g. C03.")
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Membership(models.Model):
    """A user holds a role in a center. A user may hold several roles."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    center = models.ForeignKey(Center, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "center", "role"], name="unique_membership_role"),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.role} @ {self.center.code}"
