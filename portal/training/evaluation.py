"""Evaluation of model versions on a dataset version's frozen test split (the model card) and the
promotion gate's comparison on a center's held-out images.

Metrics come from the engine (``inference.evaluation.model_card``): ``card_metrics`` for the card,
``paired_bootstrap_ap50_difference`` for the gate. Predictions are made with the registry's predictor
(``portal.jobs.inference.predictor_for``) on the version's stored 8-bit images, read through
``default_storage`` and the one pixel pipeline, and kept in storage so that a gate compares two models on
exactly the same predictions the cards were computed from.
"""
from __future__ import annotations

import json

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from portal.centers.models import Center
from portal.datasets.models import DatasetVersion
from portal.datasets.services import dataset_version_coco
from portal.mlmodels.models import ModelVersion
from portal.review.classes import CLASS_NAMES, TARGET_CLASS
from portal.training.models import ModelEvaluation

GATE_MIN_DIFFERENCE = -0.01  # lower end of the 95% interval of RS AP50 (candidate − current)
GATE_MAX_CLASS_AP_DROP = 0.02
GATE_BOOTSTRAP_DRAWS = 2000


def test_split_coco(coco: dict, *, center_id=None) -> dict:
    """The frozen test split of a version's COCO dict (one center's images when ``center_id`` is given)."""
    images = [i for i in coco["images"]
              if i["split"] == "test" and (center_id is None or i["center"] == str(center_id))]
    ids = {i["id"] for i in images}
    return {**coco, "images": images, "annotations": [a for a in coco["annotations"] if a["image_id"] in ids]}


def _predict(*, model_version: ModelVersion, version: DatasetVersion, gt: dict, device: str) -> list[dict]:
    """COCO result dicts of ``model_version`` on the images of ``gt``."""
    from inference.pixels import read_image, to_model_rgb
    from portal.jobs.inference import predictor_for
    from portal.results.services import detections_from_prediction

    predictor = predictor_for(model_version=model_version, device=device)
    category_id = {n: k + 1 for k, n in enumerate(CLASS_NAMES)}
    results = []
    for image in gt["images"]:
        with default_storage.open(f"{version.storage_prefix}/{image['file_name']}", "rb") as handle:
            rgb = to_model_rgb(read_image(handle))
        prediction = predictor.predict(rgb, um_per_px=image.get("um_per_px"))
        for row in detections_from_prediction(prediction, class_names=model_version.class_names):
            if row["class_name"] not in category_id:
                continue
            results.append({
                "image_id": image["id"], "category_id": category_id[row["class_name"]], "score": row["score"],
                "bbox": [row["x1"], row["y1"], row["x2"] - row["x1"], row["y2"] - row["y1"]],
                "segmentation": row["mask_rle"],
            })
    return results


def model_evaluation_ensure(*, model_version: ModelVersion, dataset_version: DatasetVersion,
                            center: Center | None = None, device: str | None = None) -> ModelEvaluation:
    """The evaluation of ``model_version`` on the version's test split (of ``center`` when given),
    computed once and kept (predictions in storage, metrics in the row)."""
    from inference.evaluation.model_card import card_metrics

    existing = ModelEvaluation.objects.filter(model_version=model_version, dataset_version=dataset_version,
                                              center=center).first()
    if existing is not None:
        return existing
    gt = test_split_coco(dataset_version_coco(dataset_version), center_id=center.pk if center else None)
    predictions = _predict(model_version=model_version, version=dataset_version, gt=gt,
                           device=device or settings.TRAINING_DEVICE)
    metrics = card_metrics(gt=gt, predictions=predictions, class_names=list(CLASS_NAMES))
    scope = str(center.pk) if center else "all"
    name = f"evaluations/{model_version.pk}/{dataset_version.pk}/{scope}.json"
    if default_storage.exists(name):
        default_storage.delete(name)
    stored = default_storage.save(name, ContentFile(json.dumps(predictions).encode()))
    try:
        with transaction.atomic():
            return ModelEvaluation.objects.create(
                model_version=model_version, dataset_version=dataset_version, center=center,
                n_images=len(gt["images"]), metrics=metrics, predictions_name=stored)
    except IntegrityError:  # computed concurrently: keep the first
        return ModelEvaluation.objects.get(model_version=model_version, dataset_version=dataset_version,
                                           center=center)


def model_card_evaluate(*, model_version: ModelVersion, dataset_version: DatasetVersion,
                        device: str | None = None) -> list[ModelEvaluation]:
    """Evaluate on the whole frozen test split and on each center's own held-out images in it."""
    coco = dataset_version_coco(dataset_version)
    center_ids = sorted({i["center"] for i in coco["images"] if i["split"] == "test"})
    out = [model_evaluation_ensure(model_version=model_version, dataset_version=dataset_version, device=device)]
    for center in Center.objects.filter(pk__in=center_ids).order_by("code"):
        out.append(model_evaluation_ensure(model_version=model_version, dataset_version=dataset_version,
                                           center=center, device=device))
    return out


def _predictions(evaluation: ModelEvaluation) -> list[dict]:
    with default_storage.open(evaluation.predictions_name, "rb") as handle:
        return json.loads(handle.read())


def class_ap(metrics: dict) -> dict[str, float | None]:
    """Per-class mask AP of a ``card_metrics`` result (None where the class has no ground truth)."""
    rows = metrics.get("per_class", {})
    out = {}
    for name in CLASS_NAMES:
        row = rows.get(name) or {}
        value = row.get("segm_AP", row.get("AP"))
        out[name] = None if value is None else float(value)
    return out


def gate_compare(*, candidate: ModelVersion, current: ModelVersion | None, dataset_version: DatasetVersion,
                 center: Center, device: str | None = None) -> dict:
    """The promotion gate on ``center``'s held-out images of ``dataset_version`` (business rule):

    RS AP50 must not be worse (paired bootstrap over images, 95% interval of candidate − current above
    ``GATE_MIN_DIFFERENCE``) and no class's AP may drop by more than ``GATE_MAX_CLASS_AP_DROP``.
    """
    from inference.evaluation.model_card import paired_bootstrap_ap50_difference

    gt = test_split_coco(dataset_version_coco(dataset_version), center_id=center.pk)
    if not gt["images"]:
        return {"passed": False, "reasons": ["no_held_out_images"], "n_images": 0,
                "center": str(center.pk), "dataset_version": str(dataset_version.pk)}
    ev_b = model_evaluation_ensure(model_version=candidate, dataset_version=dataset_version, center=center,
                                   device=device)
    if current is None:
        return {"passed": True, "reasons": [], "n_images": ev_b.n_images, "current": None,
                "candidate": str(candidate.pk), "center": str(center.pk), "candidate_metrics": ev_b.metrics,
                "dataset_version": str(dataset_version.pk), "note": "no active model to compare with"}
    ev_a = model_evaluation_ensure(model_version=current, dataset_version=dataset_version, center=center,
                                   device=device)
    boot = paired_bootstrap_ap50_difference(gt=gt, predictions_a=_predictions(ev_a), predictions_b=_predictions(ev_b),
                                            class_name=TARGET_CLASS, n_boot=GATE_BOOTSTRAP_DRAWS, seed=0)
    ap_a, ap_b = class_ap(ev_a.metrics), class_ap(ev_b.metrics)
    classes = []
    for name in CLASS_NAMES:
        a, b = ap_a[name], ap_b[name]
        drop = None if a is None or b is None else a - b
        classes.append({"class_name": name, "ap_current": a, "ap_candidate": b, "drop": drop,
                        "ok": drop is None or drop <= GATE_MAX_CLASS_AP_DROP})
    reasons = []
    if not boot["low"] > GATE_MIN_DIFFERENCE:
        reasons.append("rs_ap50_worse")
    if not all(c["ok"] for c in classes):
        reasons.append("class_ap_drop")
    return {
        "passed": not reasons, "reasons": reasons, "n_images": ev_b.n_images,
        "center": str(center.pk), "dataset_version": str(dataset_version.pk),
        "current": str(current.pk), "candidate": str(candidate.pk),
        "rs_ap50": {k: float(boot[k]) for k in ("ap50_a", "ap50_b", "difference", "low", "high")},
        "rule": {"min_difference": GATE_MIN_DIFFERENCE, "max_class_ap_drop": GATE_MAX_CLASS_AP_DROP,
                 "bootstrap_draws": GATE_BOOTSTRAP_DRAWS},
        "classes": classes, "current_metrics": ev_a.metrics, "candidate_metrics": ev_b.metrics,
    }
