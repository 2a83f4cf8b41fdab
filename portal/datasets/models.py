"""Training data: per-session use (consent) and sorted-population marking, dataset lines and their
immutable, hashed versions.

A dataset version is a snapshot: its images (the 8-bit model view) and annotations are written once to
storage under ``datasets/<version id>/`` and its manifest names the sha256 of every file. A line's test
patients are fixed by its first version and kept by every later one.
"""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.centers.models import Center
from portal.core.models import UUIDModel
from portal.imaging.models import ImageSession


class LabelSource(models.TextChoices):
    REVIEWED = "reviewed", _("Reviewed (final call)")
    SORTED_POPULATION = "sorted-population", _("Sorted population")
    STAIN_CONFIRMED = "stain-confirmed", _("Stain-confirmed")


class SessionTrainingUse(models.Model):
    """The owning center's decision whether a session may train models, and what was sorted into it.

    No row means "not for training". ``sorted_class`` set: the session holds a flow-sorted population
    (``sorted_population`` names the gate, e.g. "1C haploid — round spermatids"); its instances take
    that class unless a reviewer says otherwise.
    """

    session = models.OneToOneField(ImageSession, on_delete=models.CASCADE, related_name="training_use")
    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="+")
    consent = models.BooleanField(_("may be used for training"), default=False)
    sorted_population = models.CharField(_("sorted population (gate)"), max_length=200, blank=True, default="")
    sorted_class = models.CharField(_("class of the sorted population"), max_length=50, blank=True, default="")
    purity_percent = models.FloatField(_("purity %"), null=True, blank=True,
                                       validators=[MinValueValidator(0.0), MaxValueValidator(100.0)])
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    @property
    def is_sorted(self) -> bool:
        return bool(self.sorted_class)


class DatasetLine(UUIDModel):
    """A named series of dataset versions of one center; its test patients are frozen by version 1."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="dataset_lines")
    name = models.CharField(_("name"), max_length=120)
    test_patient_codes = models.JSONField(default=list, blank=True,
                                          help_text="Patients of the frozen test split (set by version 1).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["center", "name"], name="unique_dataset_line_name")]

    def __str__(self) -> str:
        return self.name


class DatasetVersion(UUIDModel):
    """One immutable snapshot of a line. Files live in storage under ``storage_prefix``."""

    line = models.ForeignKey(DatasetLine, on_delete=models.PROTECT, related_name="versions")
    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="+")
    number = models.PositiveIntegerField()
    sessions = models.ManyToManyField(ImageSession, related_name="+")
    center_ids = models.JSONField(default=list, help_text="Centers whose sessions the version pools.")
    storage_prefix = models.CharField(max_length=200)
    manifest = models.JSONField(default=dict, help_text="Files with sha256, splits, counts, selection rules.")
    manifest_sha256 = models.CharField(max_length=64)
    counts = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["line", "-number"]
        constraints = [models.UniqueConstraint(fields=["line", "number"], name="unique_dataset_version_number")]

    def __str__(self) -> str:
        return f"{self.line.name} v{self.number}"

    @property
    def annotations_name(self) -> str:
        return f"{self.storage_prefix}/annotations.json"

    def image_name(self, image_id) -> str:
        return f"{self.storage_prefix}/images/{image_id}.png"
