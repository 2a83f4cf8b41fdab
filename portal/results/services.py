"""Writing result sets: a job's run on one image, stored idempotently and never deleted afterwards."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone

from portal.audit.services import audit_record
from portal.results.models import Detection, ResultSet, ResultSetStatus, ResultSource


def _finite_or_none(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def detections_from_prediction(
    prediction, *, class_names: list[str], score_threshold: float | None = None
) -> list[dict[str, Any]]:
    """Rows for ``Detection`` from the engine's ``inference.predictor.Prediction``, highest score first.

    Masks (COCO RLE), areas, diameters and centroids are the engine's own measurements; µm values are
    empty when the image's pixel size is unknown. Class names come from the model version, by class id.
    """
    n = len(prediction)
    if n == 0:
        return []
    rles = prediction.masks_rle()
    centroid_um = prediction.centroid_um
    rows = []
    for i in np.argsort(-prediction.scores, kind="stable"):
        score = float(prediction.scores[i])
        if score_threshold is not None and score < score_threshold:
            continue
        class_id = int(prediction.class_ids[i])
        name = class_names[class_id] if 0 <= class_id < len(class_names) else str(prediction.class_names[i])
        x1, y1, x2, y2 = (float(v) for v in prediction.boxes[i])
        rows.append({
            "source": ResultSource.MODEL, "class_name": name[:50], "score": score,
            "x1": x1, "y1": y1, "x2": x2, "y2": y2, "mask_rle": rles[i],
            "area_px": float(prediction.area_px[i]),
            "area_um2": _finite_or_none(prediction.area_um2[i]),
            "diameter_um": _finite_or_none(prediction.diameter_um[i]),
            "centroid_x_px": float(prediction.centroid_px[i][0]),
            "centroid_y_px": float(prediction.centroid_px[i][1]),
            "centroid_x_um": _finite_or_none(centroid_um[i][0]) if centroid_um is not None else None,
            "centroid_y_um": _finite_or_none(centroid_um[i][1]) if centroid_um is not None else None,
        })
    return rows


def result_set_start(*, job, image) -> ResultSet:
    """The job's result set for ``image``: created PARTIAL, or the one an earlier attempt left."""
    result_set, _ = ResultSet.objects.get_or_create(
        job=job, image=image,
        defaults={"center_id": image.center_id, "model_version_id": job.model_version_id,
                  "parameters": job.parameters, "source": ResultSource.MODEL, "status": ResultSetStatus.PARTIAL},
    )
    return result_set


def scale_from_prediction(prediction) -> dict[str, Any]:
    """The result set's scale fields from the engine's ``Prediction`` (how the image reached the model)."""
    return {"scale_status": str(prediction.scale_status)[:16], "scale_warning": str(prediction.scale_warning),
            "model_um_per_px": prediction.model_um_per_px}


def result_set_write(*, result_set: ResultSet, rows: list[dict[str, Any]],
                     scale: dict[str, Any] | None = None) -> ResultSet:
    """Replace the detections of a PARTIAL result set with ``rows`` and complete it (one transaction).

    ``scale``: the fields of :func:`scale_from_prediction`. Call inside the caller's transaction after
    checking the claim. A COMPLETE set is never touched: that is what makes a retry after a crash safe.
    """
    locked = ResultSet.objects.select_for_update().get(pk=result_set.pk)
    if locked.status == ResultSetStatus.COMPLETE:
        return locked
    locked.detections.all().delete()  # only this set's own rows, left by an interrupted attempt
    Detection.objects.bulk_create([Detection(result_set=locked, index=i, **row) for i, row in enumerate(rows)])
    locked.status = ResultSetStatus.COMPLETE
    locked.completed_at = timezone.now()
    fields = ["status", "completed_at"]
    for name, value in (scale or {}).items():
        if name not in ("scale_status", "scale_warning", "model_um_per_px"):
            raise ValueError(f"unknown scale field {name!r}")
        setattr(locked, name, value)
        fields.append(name)
    locked.save(update_fields=fields)
    audit_record(actor=None, action="result_set.create", center=locked.center_id, obj=locked,
                 after={"image": str(locked.image_id), "job": str(locked.job_id), "detections": len(rows),
                        "scale_status": locked.scale_status})
    return locked


@transaction.atomic
def result_set_delete_partial(*, result_set: ResultSet) -> None:
    """Remove a PARTIAL set (an abandoned attempt). Complete sets are immutable and stay."""
    locked = ResultSet.objects.select_for_update().get(pk=result_set.pk)
    if locked.status == ResultSetStatus.PARTIAL:
        locked.detections.all().delete()
        locked.delete()
