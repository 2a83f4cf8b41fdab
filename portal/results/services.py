"""Writing result sets: a job's run on one image, stored idempotently and never deleted afterwards."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from portal.audit.services import audit_record
from portal.results.models import Detection, ResultSet, ResultSetStatus, ResultSource


def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO RLE ``{"size": [h, w], "counts": str}`` of a boolean mask."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def _field(prediction, name: str):
    value = getattr(prediction, name, None)
    if value is None:
        return None
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def detections_from_prediction(
    prediction, *, class_names: list[str], um_per_px: float | None, score_threshold: float | None = None
) -> list[dict[str, Any]]:
    """Rows for ``Detection`` from the engine's per-image result, by score (highest first).

    Measurements in µm come from the engine when it gives them, else from ``um_per_px``; they are
    empty when the pixel size is unknown.
    """
    boxes = _field(prediction, "boxes")
    n = 0 if boxes is None else int(boxes.shape[0])
    if n == 0:
        return []
    scores = _field(prediction, "scores")
    class_ids = _field(prediction, "class_ids")
    masks = _field(prediction, "masks")
    area_um2 = _field(prediction, "area_um2")
    diameter_um = _field(prediction, "diameter_um")
    centroid_px = _field(prediction, "centroid_px")
    predicted_names = list(getattr(prediction, "class_names", None) or [])
    rows = []
    order = np.argsort(-scores, kind="stable") if scores is not None else np.arange(n)
    for i in order:
        score = float(scores[i]) if scores is not None else None
        if score_threshold is not None and score is not None and score < score_threshold:
            continue
        cid = int(class_ids[i]) if class_ids is not None else 0
        if 0 <= cid < len(class_names):
            name = class_names[cid]
        elif len(predicted_names) == n:
            name = str(predicted_names[i])
        elif 0 <= cid < len(predicted_names):
            name = str(predicted_names[cid])
        else:
            name = str(cid)
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        if masks is not None:
            mask = masks[i].astype(bool)
            area_px = float(mask.sum())
            rle = mask_to_rle(mask)
            if area_px > 0:
                ys, xs = np.nonzero(mask)
                cx, cy = float(xs.mean()) + 0.5, float(ys.mean()) + 0.5  # pixel centres, as the engine
            else:
                cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        else:
            area_px = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            rle = {"size": [0, 0], "counts": ""}
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        if centroid_px is not None and centroid_px.shape[0] == n and np.isfinite(centroid_px[i]).all():
            cx, cy = float(centroid_px[i][0]), float(centroid_px[i][1])
        row = {
            "source": ResultSource.MODEL, "class_name": name[:50], "score": score,
            "x1": x1, "y1": y1, "x2": x2, "y2": y2, "mask_rle": rle, "area_px": area_px,
            "centroid_x_px": cx, "centroid_y_px": cy,
            "area_um2": None, "diameter_um": None, "centroid_x_um": None, "centroid_y_um": None,
        }
        if um_per_px:
            row["area_um2"] = (float(area_um2[i]) if area_um2 is not None and np.isfinite(area_um2[i])
                               else area_px * um_per_px * um_per_px)
            row["diameter_um"] = (float(diameter_um[i]) if diameter_um is not None and np.isfinite(diameter_um[i])
                                  else 2.0 * math.sqrt(row["area_um2"] / math.pi))
            row["centroid_x_um"], row["centroid_y_um"] = cx * um_per_px, cy * um_per_px
        rows.append(row)
    return rows


def result_set_start(*, job, image) -> ResultSet:
    """The job's result set for ``image``: created PARTIAL, or the one an earlier attempt left."""
    result_set, _ = ResultSet.objects.get_or_create(
        job=job, image=image,
        defaults={"center_id": image.center_id, "model_version_id": job.model_version_id,
                  "parameters": job.parameters, "source": ResultSource.MODEL, "status": ResultSetStatus.PARTIAL},
    )
    return result_set


def result_set_write(*, result_set: ResultSet, rows: list[dict[str, Any]]) -> ResultSet:
    """Replace the detections of a PARTIAL result set with ``rows`` and complete it (one transaction).

    Call inside the caller's transaction after checking the claim. A COMPLETE set is never touched:
    that is what makes a retry after a crash safe.
    """
    locked = ResultSet.objects.select_for_update().get(pk=result_set.pk)
    if locked.status == ResultSetStatus.COMPLETE:
        return locked
    locked.detections.all().delete()  # only this set's own rows, left by an interrupted attempt
    Detection.objects.bulk_create([Detection(result_set=locked, index=i, **row) for i, row in enumerate(rows)])
    locked.status = ResultSetStatus.COMPLETE
    locked.completed_at = timezone.now()
    locked.save(update_fields=["status", "completed_at"])
    audit_record(actor=None, action="result_set.create", center=locked.center_id, obj=locked,
                 after={"image": str(locked.image_id), "job": str(locked.job_id), "detections": len(rows)})
    return locked


@transaction.atomic
def result_set_delete_partial(*, result_set: ResultSet) -> None:
    """Remove a PARTIAL set (an abandoned attempt). Complete sets are immutable and stay."""
    locked = ResultSet.objects.select_for_update().get(pk=result_set.pk)
    if locked.status == ResultSetStatus.PARTIAL:
        locked.detections.all().delete()
        locked.delete()
