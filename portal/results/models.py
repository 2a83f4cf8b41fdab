"""Result sets and detections. Immutable and versioned: reviewer decisions and studies point at them."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.centers.models import Center
from portal.core.models import UUIDModel
from portal.imaging.models import Image


class ResultSource(models.TextChoices):
    MODEL = "model", _("Model")
    MANUAL = "manual", _("Drawn by a reviewer")
class ResultSetStatus(models.TextChoices):
    PARTIAL = "partial", _("Being written")
    COMPLETE = "complete", _("Complete")
class ResultSet(UUIDModel):
    """The detections of one run on one image (a job's run, or a reviewer's manual instances)."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="result_sets")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="result_sets")
    source = models.CharField(max_length=8, choices=ResultSource.choices, default=ResultSource.MODEL)
    job = models.ForeignKey(
        "jobs.InferenceJob", on_delete=models.PROTECT, null=True, blank=True, related_name="result_sets"
    )
    model_version = models.ForeignKey(
        "mlmodels.ModelVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="result_sets"
    )
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=ResultSetStatus.choices, default=ResultSetStatus.PARTIAL)
    completed_at = models.DateTimeField(null=True, blank=True)
    # How the image reached the model (inference.predictor.ScalePlan): "physical" (resampled to the
    # model's pixel size), "out_of_range", "unknown" (no µm/px), "model_unscaled" (the model states no
    # pixel size); the warning is shown to users whenever it is not empty.
    scale_status = models.CharField(max_length=16, blank=True, default="")
    scale_warning = models.TextField(blank=True, default="")
    model_um_per_px = models.FloatField(null=True, blank=True,
                                        help_text="µm/px the model saw the image at (empty: its fixed resize).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "image"], condition=models.Q(job__isnull=False), name="one_result_set_per_job_image"
            ),
        ]


class Detection(UUIDModel):
    """One cell instance: class, score, box, mask (COCO RLE) and measurements."""

    result_set = models.ForeignKey(ResultSet, on_delete=models.CASCADE, related_name="detections")
    index = models.PositiveIntegerField(help_text="Order within the result set (by score for model output).")
    source = models.CharField(max_length=8, choices=ResultSource.choices, default=ResultSource.MODEL)
    class_name = models.CharField(max_length=50)
    score = models.FloatField(null=True, blank=True)
    x1 = models.FloatField()
    y1 = models.FloatField()
    x2 = models.FloatField()
    y2 = models.FloatField()
    mask_rle = models.JSONField(help_text='COCO RLE: {"size": [h, w], "counts": str}')
    polygon = models.JSONField(null=True, blank=True, help_text="For manual instances: [[x, y], ...] px.")
    area_px = models.FloatField()
    area_um2 = models.FloatField(null=True, blank=True)
    diameter_um = models.FloatField(null=True, blank=True)
    centroid_x_px = models.FloatField()
    centroid_y_px = models.FloatField()
    centroid_x_um = models.FloatField(null=True, blank=True)
    centroid_y_um = models.FloatField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["result_set", "index"]
        constraints = [models.UniqueConstraint(fields=["result_set", "index"], name="unique_detection_index")]
