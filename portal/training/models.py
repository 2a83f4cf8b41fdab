"""Training jobs, model evaluations (model cards), promotions and rollbacks.

A training job follows the state machine of ``portal.jobs`` (queued → running → succeeded / failed /
cancelled; claimed by a conditional update, kept alive by a heartbeat, re-queued by the sweeper).
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.centers.models import Center
from portal.core.models import UUIDModel
from portal.datasets.models import DatasetVersion
from portal.jobs.models import JobStatus
from portal.mlmodels.models import ModelVersion


class TrainingJob(UUIDModel):
    """Fine-tuning (from ``base_model``) or training from scratch on a dataset version's train split."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="training_jobs")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="training_jobs")
    base_model = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+", help_text="Empty: from scratch.")
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    worker_id = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    last_enqueued_at = models.DateTimeField(null=True, blank=True)
    enqueue_count = models.PositiveIntegerField(default=0)
    queue = models.CharField(max_length=64, help_text="The broker queue of its messages, fixed when the job is "
                             "created (every retry and re-send goes there too).")
    cancel_requested = models.BooleanField(default=False)
    error_message = models.TextField(blank=True)
    stage = models.CharField(max_length=20, blank=True, default="",
                             help_text="training, registering or evaluating while running.")
    iteration = models.PositiveIntegerField(default=0)
    max_iter = models.PositiveIntegerField(default=0)
    losses = models.JSONField(default=list, blank=True, help_text="[{iteration, total_loss, ...}], thinned.")
    seconds_per_iter = models.FloatField(null=True, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)
    resumed_from = models.JSONField(default=list, blank=True, help_text="Checkpoint iterations resumed from.")
    candidate = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="training_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="training_status_heartbeat")]

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class ModelEvaluation(UUIDModel):
    """Metrics of one model on a dataset version's test split: all of it (``center`` empty) or one
    center's held-out images. ``predictions_name``: the COCO results in storage, for the paired gate."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="evaluations")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="evaluations")
    center = models.ForeignKey(Center, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    n_images = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict)
    predictions_name = models.CharField(max_length=300)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "dataset_version", "center"],
                                    name="one_evaluation_per_scope"),
            models.UniqueConstraint(fields=["model_version", "dataset_version"], condition=models.Q(center__isnull=True),
                                    name="one_whole_test_evaluation"),
        ]


class PromotionKind(models.TextChoices):
    PROMOTE = "promote", _("Promotion")
    ROLLBACK = "rollback", _("Rollback")


class ModelPromotion(UUIDModel):
    """A signed change of a center's active model: a gated promotion, or a rollback to the previous one."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=10, choices=PromotionKind.choices)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    previous_model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, null=True, blank=True,
                                               related_name="+")
    gate = models.JSONField(default=dict, blank=True)
    meaning = models.CharField(max_length=200)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]
