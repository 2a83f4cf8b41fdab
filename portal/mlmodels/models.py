"""The model registry: versions of the detector, as bundles."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.centers.models import Center
from portal.core.models import UUIDModel


class ModelVersion(UUIDModel):
    """One registered model bundle (config, weights, class names). Immutable once a job has used it."""

    name = models.CharField(max_length=100)
    version = models.CharField(max_length=50)
    center = models.ForeignKey(
        Center, on_delete=models.PROTECT, null=True, blank=True, related_name="model_versions",
        help_text="Owner center; empty for a site-wide model.",
    )
    class_names = models.JSONField(default=list)
    metrics = models.JSONField(default=dict, blank=True)
    training_summary = models.JSONField(default=dict, blank=True)
    weights_sha256 = models.CharField(max_length=64)
    bundle_path = models.CharField(max_length=500, help_text="Media storage folder of the bundle (models/<name>-<version>-<sha>); an absolute "
                                             "path is a directory outside media storage.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name", "-created_at"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="unique_model_name_version")]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class ActiveModel(models.Model):
    """Which model version a center (or the whole site, center empty) uses for new jobs."""

    center = models.OneToOneField(Center, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["center"], condition=models.Q(center__isnull=True), name="one_site_default_model"
            ),
        ]
