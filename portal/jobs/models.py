"""Inference jobs. The database is the truth; a Celery message only says "work on job N"."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.centers.models import Center
from portal.core.models import UUIDModel
from portal.imaging.models import Image, ImageSession
from portal.mlmodels.models import ModelVersion


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")
class InferenceJob(UUIDModel):
    """Analysis of a session's images (or a subset) by one model version with fixed parameters."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="jobs")
    session = models.ForeignKey(ImageSession, on_delete=models.PROTECT, related_name="jobs")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="jobs")
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    images_total = models.PositiveIntegerField(default=0)
    images_done = models.PositiveIntegerField(default=0)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=200, blank=True)
    error_message = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    retry_at = models.DateTimeField(null=True, blank=True, help_text="A failed attempt is retried after this time.")
    last_enqueued_at = models.DateTimeField(null=True, blank=True, help_text="When a message was last sent.")
    enqueue_count = models.PositiveIntegerField(default=0)
    triggered_by = models.CharField(max_length=10, default="user", help_text='"user" or "upload" (automatic).')
    queue = models.CharField(max_length=64, help_text="The broker queue of its messages, fixed when the job is "
                             "created (every retry and re-send goes there too).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat")]

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobImageStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
class JobImage(models.Model):
    """One image of a job, claimed by a worker with a conditional update and kept alive by a heartbeat."""

    job = models.ForeignKey(InferenceJob, on_delete=models.CASCADE, related_name="job_images")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="job_images")
    status = models.CharField(max_length=8, choices=JobImageStatus.choices, default=JobImageStatus.PENDING)
    claimed_by = models.CharField(max_length=200, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "image"], name="unique_job_image")]
