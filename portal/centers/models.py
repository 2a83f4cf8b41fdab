"""Centers (clinics) and the roles users hold in them."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.centers.timezones import validate_time_zone
from portal.core.models import UUIDModel


class Role(models.TextChoices):
    UPLOADER = "uploader", _("Uploader (clinic staff)")
    REVIEWER = "reviewer", _("Reviewer")
    VALIDATOR = "validator", _("Validator (blinded)")
    STAIN_TECHNICIAN = "stain_technician", _("Stain technician")
    CENTER_ADMIN = "center_admin", _("Center administrator")


class Center(UUIDModel):
    """A clinic. Every patient, session and image belongs to exactly one center."""

    code = models.CharField(_("code"), max_length=8, unique=True,
                            help_text=_("Short code used in pseudonyms, e.g. C03."))
    name = models.CharField(_("name"), max_length=200)
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_time_zone],
        help_text=_("IANA time zone name, e.g. Asia/Shanghai. Times are stored in UTC and shown in this zone."),
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("center")
        verbose_name_plural = _("centers")

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
