"""Pseudonymized patients, image sessions and images."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.centers.models import Center
from portal.core.models import UUIDModel


class BirthYearBucket(models.TextChoices):
    """Five-year buckets only: a full date of birth is an identifier."""

    UNKNOWN = "", _("Not given")
    B1950 = "1950-1954", _("1950–1954")
    B1955 = "1955-1959", _("1955–1959")
    B1960 = "1960-1964", _("1960–1964")
    B1965 = "1965-1969", _("1965–1969")
    B1970 = "1970-1974", _("1970–1974")
    B1975 = "1975-1979", _("1975–1979")
    B1980 = "1980-1984", _("1980–1984")
    B1985 = "1985-1989", _("1985–1989")
    B1990 = "1990-1994", _("1990–1994")
    B1995 = "1995-1999", _("1995–1999")
    B2000 = "2000-2004", _("2000–2004")
    B2005 = "2005-2009", _("2005–2009")
class Patient(UUIDModel):
    """A pseudonymized patient: a portal-generated code, no name, no date of birth, no free text."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="patients")
    code = models.CharField(max_length=32, unique=True, editable=False)
    birth_year_bucket = models.CharField(max_length=9, choices=BirthYearBucket.choices, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Modality(models.TextChoices):
    BRIGHTFIELD = "brightfield", _("Brightfield")
    HOFFMAN = "hoffman", _("Hoffman modulation contrast")
    PHASE_CONTRAST = "phase_contrast", _("Phase contrast")
class StageRotation(models.IntegerChoices):
    R0 = 0, _("0°")
    R90 = 90, _("90°")
    R180 = 180, _("180°")
    R270 = 270, _("270°")
class ImageSession(UUIDModel):
    """One acquisition of a patient's sample on a microscope."""

    NOTES_MAX_LENGTH = 500

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="sessions")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="sessions")
    acquisition_date = models.DateField()
    microscope = models.CharField(max_length=100, blank=True)
    objective = models.CharField(max_length=50, blank=True)
    modality = models.CharField(max_length=20, choices=Modality.choices, default=Modality.BRIGHTFIELD)
    um_per_px = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.02), MaxValueValidator(5.0)],
        help_text="Micrometres per pixel for images whose file does not state it.",
    )
    # Orientation of the camera image relative to the stage axes, for stage position lists.
    stage_flip_x = models.BooleanField(default=False)
    stage_flip_y = models.BooleanField(default=False)
    stage_rotation = models.IntegerField(choices=StageRotation.choices, default=StageRotation.R0)
    notes = models.CharField(
        max_length=NOTES_MAX_LENGTH, blank=True,
        help_text="Technical notes only. Never enter names, dates of birth or record numbers.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Set once (``services.session_freeze``) when something that depends on the session's measurements
    # starts, e.g. a validation study opens: from then on its fields and its images' pixel sizes are fixed.
    frozen_at = models.DateTimeField(null=True, blank=True, editable=False)
    frozen_reason = models.CharField(max_length=200, blank=True, editable=False)

    class Meta:
        ordering = ["-acquisition_date", "-created_at"]

    def __str__(self) -> str:
        return f"{self.patient.code} {self.acquisition_date}"


class UmPerPxSource(models.TextChoices):
    OME_TIFF = "ome_tiff", _("OME-TIFF PhysicalSizeX")
    IMAGEJ_TIFF = "imagej_tiff", _("ImageJ TIFF description + XResolution")
    TIFF_RESOLUTION = "tiff_resolution", _("TIFF resolution unit cm/inch")
    PNG_PHYS = "png_phys", _("PNG pHYs chunk")
    JPEG_DENSITY = "jpeg_density", _("JPEG density")
    SESSION = "session", _("Session setting")
    MANUAL = "manual", _("Set by a user")
    NONE = "none", _("Unknown")
class ImageStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    QUEUED = "queued", _("Queued for analysis")
    ANALYZING = "analyzing", _("Analyzing")
    ANALYZED = "analyzed", _("Analyzed")
    FAILED = "failed", _("Analysis failed")
def image_upload_path(instance: Image, filename: str) -> str:
    return f"images/{instance.center_id}/{instance.session_id}/{instance.id}{_suffix(filename)}"


def display_upload_path(instance: Image, filename: str) -> str:
    return f"display/{instance.center_id}/{instance.session_id}/{instance.id}.png"


def thumbnail_upload_path(instance: Image, filename: str) -> str:
    return f"thumbnails/{instance.center_id}/{instance.session_id}/{instance.id}.png"


def _suffix(filename: str) -> str:
    return "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


ORIGINAL_NAME_MAX_LENGTH = 200


class Image(UUIDModel):
    """One stored image (a page of a multi-page TIFF is its own image), re-encoded without metadata."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="images")
    session = models.ForeignKey(ImageSession, on_delete=models.PROTECT, related_name="images")
    file = models.FileField(upload_to=image_upload_path, max_length=300)
    display_file = models.FileField(upload_to=display_upload_path, max_length=300, blank=True)
    thumbnail_file = models.FileField(upload_to=thumbnail_upload_path, max_length=300, blank=True)
    original_sha256 = models.CharField(max_length=64, db_index=True)
    stored_sha256 = models.CharField(max_length=64)
    original_format = models.CharField(max_length=16)
    # The clinic's own file name, so the owning center finds the microscope file again. Shown only
    # through ``selectors.display_name_for``: never to other centers, blinded users or in exports.
    original_name = models.CharField(max_length=ORIGINAL_NAME_MAX_LENGTH, blank=True, default="")
    stored_format = models.CharField(max_length=8, default="png", help_text="png (8-bit) or tiff (16-bit).")
    page_index = models.PositiveIntegerField(default=0)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bit_depth = models.PositiveSmallIntegerField(default=8)
    channels = models.PositiveSmallIntegerField(default=3)
    # 8-bit display/inference view = clip((v - low) / (high - low) * 255); decided once at upload.
    display_window_low = models.FloatField(default=0.0)
    display_window_high = models.FloatField(default=255.0)
    um_per_px = models.FloatField(null=True, blank=True)
    um_per_px_source = models.CharField(max_length=20, choices=UmPerPxSource.choices, default=UmPerPxSource.NONE)
    stage_x_um = models.FloatField(null=True, blank=True)
    stage_y_um = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=ImageStatus.choices, default=ImageStatus.UPLOADED)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["created_at", "page_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["center", "original_sha256", "page_index"], name="unique_image_per_center"
            ),
        ]

    @property
    def needs_um_per_px(self) -> bool:
        """True when no pixel size is known: the uploader must set one."""
        return self.um_per_px is None


class SessionBlinding(models.Model):
    """``user`` is blinded from the model output of ``session``: results, review pages, jobs, models.

    Written by the validation app while a study that includes the session is not yet unblinded (its
    validators and the stain technicians of its centers); ``source`` names the study. Every read of model
    output filters on this table, so the rule holds without asking the app that writes it.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(ImageSession, on_delete=models.CASCADE, related_name="blindings")
    source = models.CharField(max_length=64, help_text='What blinds the user, e.g. "validation.study:<id>".')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "session", "source"], name="unique_session_blinding"),
        ]
        indexes = [models.Index(fields=["user", "session"], name="session_blinding_user")]
