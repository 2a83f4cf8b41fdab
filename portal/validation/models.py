"""Blinded validation studies: the frozen cell list, validators' scores, stain results, signatures.

What a validator may see is decided by the serializers in ``portal.validation.api`` (blinded ones have
no model fields at all). The model's answers for each cell (``Cell.model_*``) are frozen at open and
covered by ``Study.model_output_sha256``; nothing here is ever shown to a validator before unblinding.
"""
from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.core.models import UUIDModel


def new_public_id() -> str:
    """An opaque random id for a cell or field, shown to validators instead of any database id."""
    return secrets.token_hex(8)


def new_seed() -> int:
    """A random seed (stored, so shuffles, subsampling and bootstrap can be reproduced)."""
    return secrets.randbits(31)


class StudyStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    OPEN = "open", _("Open for scoring")
    LOCKED = "locked", _("Locked")
    UNBLINDED = "unblinded", _("Unblinded")
class GroundTruthRule(models.TextChoices):
    PRM1 = "prm1", _("PRM1 only")
    PNA = "pna", _("PNA only")
    BOTH = "both", _("PRM1 and PNA both positive")
    EITHER = "either", _("PRM1 and/or PNA positive")
class Prm1Method(models.TextChoices):
    MRNA_IN_SITU = "mrna_in_situ", _("PRM1 mRNA in situ hybridization")
    PROTEIN_IHC = "protein_immunostaining", _("PRM1 protein immunostaining")
class Design(models.TextChoices):
    PICKED_CELLS = "picked_cells", _("Picked cells (model picks vs embryologist picks)")
    WHOLE_FIELD = "whole_field", _("Whole field (all candidates + missed cells)")
class Morphology(models.TextChoices):
    YES = "yes", _("Spermatid")
    NO = "no", _("Not a spermatid")
    UNSURE = "unsure", _("Unsure")
class Stain(models.TextChoices):
    POSITIVE = "pos", _("Positive")
    NEGATIVE = "neg", _("Negative")
    NOT_ASSESSABLE = "na", _("Not assessable")
PROTEIN_PRM1_WARNING = _(
    "PRM1 protein appears from elongating spermatid steps on; round spermatids are PRM1-protein "
    "negative. Protein immunostaining therefore undercounts true round spermatids as positives; "
    "mRNA in situ (from step-1 round spermatids on) is the appropriate PRM1 ground truth."
)


class Study(UUIDModel):
    """One blinded validation study. Status moves draft -> open -> locked -> unblinded."""

    name = models.CharField(max_length=200)
    center = models.ForeignKey(
        "centers.Center", on_delete=models.PROTECT, related_name="validation_studies",
        help_text="The center whose administrators run the study.",
    )
    centers = models.ManyToManyField("centers.Center", related_name="+", help_text="Centers taking part.")
    sessions = models.ManyToManyField("imaging.ImageSession", related_name="validation_studies")
    images = models.ManyToManyField(
        "imaging.Image", related_name="validation_studies", blank=True,
        help_text="Images included; all images of the sessions when left empty at open.",
    )
    model_version = models.ForeignKey("mlmodels.ModelVersion", on_delete=models.PROTECT, related_name="+")
    score_threshold = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)], default=0.5)
    candidate_threshold = models.FloatField(
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)], default=0.05,
        help_text="Whole field: every detection of any class at or above this score is a candidate cell.",
    )
    ground_truth_rule = models.CharField(max_length=8, choices=GroundTruthRule.choices, default=GroundTruthRule.EITHER)
    prm1_method = models.CharField(max_length=24, choices=Prm1Method.choices, default=Prm1Method.MRNA_IN_SITU)
    design = models.CharField(max_length=16, choices=Design.choices, default=Design.PICKED_CELLS)
    subsample_size = models.PositiveIntegerField(
        null=True, blank=True, help_text="Whole field: score a random subset of this many candidates."
    )
    subsample_seed = models.BigIntegerField(default=new_seed)
    validators_per_cell = models.PositiveSmallIntegerField(default=2, validators=[MinValueValidator(1)])
    crop_um = models.FloatField(default=24.0, validators=[MinValueValidator(5.0), MaxValueValidator(200.0)])
    assignment_seed = models.BigIntegerField(default=new_seed, help_text="Seed of the cell-to-validator assignment.")
    bootstrap_seed = models.BigIntegerField(default=new_seed)
    bootstrap_draws = models.PositiveIntegerField(default=2000, validators=[MinValueValidator(100)])
    status = models.CharField(max_length=10, choices=StudyStatus.choices, default=StudyStatus.DRAFT, db_index=True)
    model_output_sha256 = models.CharField(max_length=64, blank=True)
    frozen = models.JSONField(default=dict, blank=True, help_text="Result sets and counts frozen at open.")
    scores_sha256 = models.CharField(max_length=64, blank=True, help_text="Hash of every score at lock.")
    opened_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)
    unblinded_at = models.DateTimeField(null=True, blank=True)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    locked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    unblinded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    results = models.JSONField(null=True, blank=True, help_text="Statistics computed at unblinding.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def prm1_warning(self) -> str:
        return str(PROTEIN_PRM1_WARNING) if self.prm1_method == Prm1Method.PROTEIN_IHC else ""


class StudyValidator(models.Model):
    """A validator taking part in a study, with the seed of their own cell order."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="validators")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="validation_roles")
    order_seed = models.BigIntegerField(default=new_seed)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["added_at", "id"]
        constraints = [models.UniqueConstraint(fields=["study", "user"], name="unique_study_validator")]


class StudyField(models.Model):
    """An image of the study as validators know it: by an opaque token, never its database id."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="fields")
    image = models.ForeignKey("imaging.Image", on_delete=models.PROTECT, related_name="+")
    public_id = models.CharField(max_length=32, default=new_public_id)

    class Meta:
        ordering = ["public_id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "image"], name="unique_study_field_image"),
            models.UniqueConstraint(fields=["study", "public_id"], name="unique_study_field_public_id"),
        ]


class Pick(models.Model):
    """Picked-cells design: a cell the embryologist chose by eye, on the image shown without overlay."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="picks")
    image = models.ForeignKey("imaging.Image", on_delete=models.PROTECT, related_name="+")
    x_px = models.FloatField(validators=[MinValueValidator(0.0)])
    y_px = models.FloatField(validators=[MinValueValidator(0.0)])
    picked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]


class Cell(models.Model):
    """One cell of the frozen cell list. ``public_id`` is all a validator ever learns about it."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="cells")
    public_id = models.CharField(max_length=32, default=new_public_id)
    field = models.ForeignKey(StudyField, on_delete=models.PROTECT, related_name="cells")
    center = models.ForeignKey("centers.Center", on_delete=models.PROTECT, related_name="+")
    x_px = models.FloatField()
    y_px = models.FloatField()
    # Where the cell came from (hidden until unblinding).
    from_model = models.BooleanField(default=False, help_text="A model detection (candidate).")
    from_embryologist = models.BooleanField(default=False)
    from_validator = models.BooleanField(default=False, help_text="Added as missed by a validator.")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    detection = models.ForeignKey("results.Detection", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    model_class = models.CharField(max_length=50, blank=True)
    model_score = models.FloatField(null=True, blank=True)
    model_positive = models.BooleanField(default=False, help_text="round_spermatid at or above the threshold.")
    crop_png = models.BinaryField(editable=False)

    class Meta:
        ordering = ["public_id"]
        constraints = [models.UniqueConstraint(fields=["study", "public_id"], name="unique_cell_public_id")]


class Assignment(models.Model):
    """One cell in one validator's list, at its shuffled position, with that validator's scores."""

    validator = models.ForeignKey(StudyValidator, on_delete=models.CASCADE, related_name="assignments")
    cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="assignments")
    position = models.PositiveIntegerField()
    morphology = models.CharField(max_length=6, choices=Morphology.choices, blank=True)
    prm1 = models.CharField(max_length=3, choices=Stain.choices, blank=True)
    pna = models.CharField(max_length=3, choices=Stain.choices, blank=True)
    scored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["validator", "position"]
        constraints = [
            models.UniqueConstraint(fields=["validator", "cell"], name="unique_assignment"),
            models.UniqueConstraint(fields=["validator", "position"], name="unique_assignment_position"),
        ]


class StainResult(models.Model):
    """Stain results entered for a cell by a stain technician (these take precedence over validators')."""

    cell = models.OneToOneField(Cell, on_delete=models.CASCADE, related_name="stain_result")
    prm1 = models.CharField(max_length=3, choices=Stain.choices, blank=True)
    pna = models.CharField(max_length=3, choices=Stain.choices, blank=True)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)


SIGNATURE_MEANING = "I confirm these scores"


class Signature(models.Model):
    """A validator's electronic signature over their completed list, bound to a hash of the scores."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="signatures")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    full_name = models.CharField(max_length=300)
    meaning = models.CharField(max_length=100, default=SIGNATURE_MEANING)
    signed_at = models.DateTimeField()
    frozen = models.JSONField(default=dict, blank=True, help_text="Result sets and counts frozen at open.")
    scores_sha256 = models.CharField(max_length=64)
    cells_scored = models.PositiveIntegerField()

    class Meta:
        ordering = ["signed_at"]
        constraints = [models.UniqueConstraint(fields=["study", "user"], name="unique_study_signature")]


class StainChannel(models.TextChoices):
    PRM1 = "prm1", _("PRM1")
    PNA = "pna", _("PNA")


class RegistrationMethod(models.TextChoices):
    NONE = "none", _("Not registered")
    MANUAL = "manual", _("Manual (two points)")
    AUTO = "auto", _("Automatic (phase correlation)")


def stain_image_upload_path(instance: StainImage, filename: str) -> str:
    """Where a stain image's 8-bit PNG is stored (by random ids only)."""
    return f"stain/{instance.study_id}/{instance.pk}.png"


class StainImage(UUIDModel):
    """A fluorescence image (one channel, PRM1 or PNA) of a study field, uploaded by a stain technician,
    with its registration over the field: a similarity transform from stain pixels to field pixels
    (see ``portal.validation.lib.registration``). ``file`` holds the 8-bit display PNG made by the
    imaging pipeline (metadata stripped); the upload's own bytes are not kept."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="stain_images")
    field = models.ForeignKey(StudyField, on_delete=models.CASCADE, related_name="stain_images")
    channel = models.CharField(max_length=4, choices=StainChannel.choices)
    file = models.FileField(upload_to=stain_image_upload_path, max_length=300)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bit_depth = models.PositiveSmallIntegerField(default=8)
    um_per_px = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)])
    original_sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    registration_method = models.CharField(max_length=6, choices=RegistrationMethod.choices,
                                           default=RegistrationMethod.NONE)
    scale = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    rotation_rad = models.FloatField(default=0.0)
    offset_x_px = models.FloatField(default=0.0)
    offset_y_px = models.FloatField(default=0.0)
    registration_points = models.JSONField(default=dict, blank=True,
                                           help_text="Manual: the two point pairs clicked (stain, field).")
    registration_quality = models.FloatField(null=True, blank=True,
                                             help_text="Automatic: strength of the correlation peak.")
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                      related_name="+")
    registered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["field", "channel"]
        constraints = [models.UniqueConstraint(fields=["field", "channel"], name="unique_stain_image_channel")]
