"""Review decisions, adjudications and pick lists.

Every reviewer keeps their own decision per detection (one row per detection and reviewer: nobody
overwrites anybody else's). A center admin's adjudication, where given, is the final call; otherwise the
reviewers' unanimous decision is (``portal.review.lib.finalcall``). Decisions point at the detection and
at the result set they judged, so a newer model run never inherits old decisions silently.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.centers.models import Center
from portal.core.models import UUIDModel
from portal.imaging.models import ImageSession
from portal.results.models import Detection, ResultSet


class Verdict(models.TextChoices):
    ACCEPT = "accept", _("Accept")
    REJECT = "reject", _("Reject")
    UNCERTAIN = "uncertain", _("Uncertain")
class Decision(UUIDModel):
    """One reviewer's current call on one detection (``class_name`` blank: the detection's own class)."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="+")
    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="review_decisions")
    result_set = models.ForeignKey(ResultSet, on_delete=models.CASCADE, related_name="review_decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    class_name = models.CharField(max_length=50, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["detection", "reviewer"], name="one_decision_per_reviewer"),
        ]
        indexes = [models.Index(fields=["result_set", "reviewer"])]


class Adjudication(UUIDModel):
    """A center admin's final call on one detection; overrides the reviewers' decisions."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="+")
    detection = models.OneToOneField(Detection, on_delete=models.CASCADE, related_name="review_adjudication")
    result_set = models.ForeignKey(ResultSet, on_delete=models.CASCADE, related_name="review_adjudications")
    adjudicator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    class_name = models.CharField(max_length=50, blank=True, default="")
    note = models.CharField(max_length=500, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]


class PickList(UUIDModel):
    """A frozen list of accepted round spermatids of one session, ordered by score, to pick cells from."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="+")
    session = models.ForeignKey(ImageSession, on_delete=models.PROTECT, related_name="pick_lists")
    class_name = models.CharField(max_length=50, default="round_spermatid")
    rule = models.CharField(max_length=300, help_text="The rule that selected the items (final call).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]


class PickListItem(models.Model):
    """One cell of a pick list, with the measurements it had when the list was made."""

    pick_list = models.ForeignKey(PickList, on_delete=models.CASCADE, related_name="items")
    rank = models.PositiveIntegerField()
    detection = models.ForeignKey(Detection, on_delete=models.PROTECT, related_name="+")
    decided_by = models.CharField(max_length=40, help_text="adjudication or unanimous:<n reviewers>")
    score = models.FloatField(null=True, blank=True)
    centroid_x_px = models.FloatField()
    centroid_y_px = models.FloatField()
    centroid_x_um = models.FloatField(null=True, blank=True)
    centroid_y_um = models.FloatField(null=True, blank=True)
    diameter_um = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["pick_list", "rank"]
        constraints = [models.UniqueConstraint(fields=["pick_list", "rank"], name="unique_pick_rank")]


class CorrectionOperation(models.TextChoices):
    EDIT = "edit", _("Edited mask (brush, eraser or vertices)")
    SPLIT = "split", _("Split: this part kept, the other part drawn as a new cell")
    MERGE = "merge", _("Merge: another cell's mask joined into this one")


class MaskCorrection(UUIDModel):
    """One reviewer's corrected mask of one detection (any source: model or drawn).

    Rows are a history: the reviewer's current correction of a detection is their newest row that is not
    reverted (``selectors.current_corrections``); reverting marks the newest row, so the one before comes
    back. Each reviewer sees only their own corrections; the final mask follows the final call
    (``portal.review.lib.finalcall.final_mask_owner``).
    """

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="+")
    detection = models.ForeignKey(Detection, on_delete=models.CASCADE, related_name="mask_corrections")
    result_set = models.ForeignKey(ResultSet, on_delete=models.CASCADE, related_name="mask_corrections")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    operation = models.CharField(max_length=10, choices=CorrectionOperation.choices, default=CorrectionOperation.EDIT)
    mask_rle = models.JSONField(help_text="COCO compressed RLE of the whole image")
    polygon = models.JSONField(null=True, blank=True, help_text="[[x, y], ...] when the edit was a polygon")
    x1 = models.FloatField()
    y1 = models.FloatField()
    x2 = models.FloatField()
    y2 = models.FloatField()
    area_px = models.FloatField()
    area_um2 = models.FloatField(null=True, blank=True)
    diameter_um = models.FloatField(null=True, blank=True)
    centroid_x_px = models.FloatField()
    centroid_y_px = models.FloatField()
    centroid_x_um = models.FloatField(null=True, blank=True)
    centroid_y_um = models.FloatField(null=True, blank=True)
    partner = models.ForeignKey(Detection, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                help_text="split: the new cell made of the other part; merge: the cell merged in")
    partner_decision_before = models.JSONField(null=True, blank=True,
                                               help_text="merge: the reviewer's decision on the partner before")
    reverted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["result_set", "reviewer"]), models.Index(fields=["detection", "reviewer"])]


class ImageReviewDone(UUIDModel):
    """A reviewer's mark that they have finished an image (shown on the session page's image cards)."""

    center = models.ForeignKey(Center, on_delete=models.PROTECT, related_name="+")
    image = models.ForeignKey("imaging.Image", on_delete=models.CASCADE, related_name="review_done_marks")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["image", "reviewer"], name="one_done_mark_per_reviewer")]
