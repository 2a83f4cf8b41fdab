"""Abstract bases shared by the portal's models, and the users' notifications."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class UUIDModel(models.Model):
    """A model whose primary key is a random UUID, so ids in URLs cannot be guessed or enumerated."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class NotificationKind(models.TextChoices):
    """What a notification tells; the text shown is composed from the kind and its ``params``."""

    ANALYSIS_SUCCEEDED = "analysis.succeeded", _("Analysis finished")
    ANALYSIS_FAILED = "analysis.failed", _("Analysis failed")
    ANALYSIS_CANCELLED = "analysis.cancelled", _("Analysis cancelled")


class Notification(UUIDModel):
    """A short message to one user (e.g. "the analysis of session … ended"), read or not.

    Created by the apps' signal receivers through ``services.notifications_create``; reached only by its
    own user (``access.access_notification``). ``params`` holds only what the text needs (no model
    output), so a notification never tells a blinded user anything they may not see.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    center = models.ForeignKey("centers.Center", on_delete=models.CASCADE, related_name="+", null=True, blank=True)
    kind = models.CharField(max_length=40, choices=NotificationKind.choices)
    params = models.JSONField(default=dict, blank=True)
    link = models.CharField(max_length=300, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_user_unread")]

    @property
    def text(self) -> str:
        """The message in the reader's language."""
        template = NOTIFICATION_TEXTS.get(self.kind, self.get_kind_display())
        try:
            return str(template) % self.params
        except (KeyError, TypeError, ValueError):
            return str(self.get_kind_display())


NOTIFICATION_TEXTS = {
    NotificationKind.ANALYSIS_SUCCEEDED: _(
        "The analysis of session %(session)s has finished: %(images_done)s of %(images_total)s images analysed."),
    NotificationKind.ANALYSIS_FAILED: _("The analysis of session %(session)s failed."),
    NotificationKind.ANALYSIS_CANCELLED: _("The analysis of session %(session)s was cancelled."),
}
