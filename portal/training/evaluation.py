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
from django.utils.translation import gettext as _

from portal.centers.models import Center
from portal.datasets.models import DatasetVersion
from portal.datasets.services import dataset_version_coco, dataset_version_materialise
from portal.mlmodels.models import ModelVersion
from portal.mlmodels.selectors import model_active_for_center
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
    """COCO result dicts of ``model_version`` on the images of ``gt`` (copied from storage into a
    temporary folder for the engine's ``predict_coco``)."""
    import tempfile

    from inference.evaluation.model_card import predict_coco
    from portal.jobs.inference import predictor_for

    predictor = predictor_for(model_version=model_version, device=device)
    with tempfile.TemporaryDirectory(prefix="evaluation-") as tmp:
        dataset_version_materialise(version=version, coco=gt, root=tmp)
        return predict_coco(predictor, gt=gt, image_root=tmp)


def model_evaluation_ensure(*, model_version: ModelVersion, dataset_version: DatasetVersion,
                            center: Center | None = None, device: str | None = None,
                            compute: bool = True) -> ModelEvaluation | None:
    """The evaluation of ``model_version`` on the version's test split (of ``center`` when given),
    computed once and kept (predictions in storage, metrics in the row). With ``compute=False`` (web
    requests: inference belongs to the worker) a missing evaluation is None."""
    from inference.evaluation.model_card import card_metrics

    existing = ModelEvaluation.objects.filter(model_version=model_version, dataset_version=dataset_version,
                                              center=center).first()
    if existing is not None or not compute:
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
        # the gate compares with the center's active model on the same images: evaluate it here, on the
        # worker, so that the gate page (a web request) only reads stored predictions
        current = model_active_for_center(center=center)
        if current is not None and current.pk != model_version.pk:
            model_evaluation_ensure(model_version=current, dataset_version=dataset_version, center=center,
                                    device=device)
    return out


def _predictions(evaluation: ModelEvaluation) -> list[dict]:
    with default_storage.open(evaluation.predictions_name, "rb") as handle:
        return json.loads(handle.read())


def class_ap(metrics: dict) -> dict[str, float | None]:
    """Per-class mask AP of a ``card_metrics`` result (None where the class has no ground truth)."""
    rows = (metrics.get("segm") or {}).get("per_class") or {}
    return {name: (rows.get(name) or {}).get("AP") for name in CLASS_NAMES}


def gate_compare(*, candidate: ModelVersion, current: ModelVersion | None, dataset_version: DatasetVersion,
                 center: Center, device: str | None = None, compute: bool = True) -> dict:
    """The promotion gate on ``center``'s held-out images of ``dataset_version`` (business rule):

    RS AP50 must not be worse (paired bootstrap over images, 95% interval of candidate − current above
    ``GATE_MIN_DIFFERENCE``) and no class's AP may drop by more than ``GATE_MAX_CLASS_AP_DROP``
    (``inference.evaluation.model_card.promotion_comparison`` computes both on the stored predictions).
    """
    from inference.evaluation.model_card import promotion_comparison

    gt = test_split_coco(dataset_version_coco(dataset_version), center_id=center.pk)
    base = {"center": str(center.pk), "dataset_version": str(dataset_version.pk), "candidate": str(candidate.pk),
            "current": str(current.pk) if current else None, "n_images": len(gt["images"]),
            "rule": {"min_difference": GATE_MIN_DIFFERENCE, "max_class_ap_drop": GATE_MAX_CLASS_AP_DROP,
                     "bootstrap_draws": GATE_BOOTSTRAP_DRAWS, "target_class": TARGET_CLASS}}
    if not gt["images"]:
        return {**base, "passed": False, "reasons": [_("This center has no held-out images in the dataset.")]}
    ev_b = model_evaluation_ensure(model_version=candidate, dataset_version=dataset_version, center=center,
                                   device=device, compute=compute)
    ev_a = None if current is None else model_evaluation_ensure(
        model_version=current, dataset_version=dataset_version, center=center, device=device, compute=compute)
    if ev_b is None or (current is not None and ev_a is None):
        return {**base, "passed": False, "pending": True, "reasons": [
            _("Not evaluated on this center's held-out images yet: the training job evaluates both models; "
              "promoting evaluates what is missing.")]}
    if current is None:
        return {**base, "passed": True, "reasons": [], "candidate_metrics": ev_b.metrics,
                "note": "no active model to compare with"}
    outcome = promotion_comparison(gt=gt, predictions_current=_predictions(ev_a),
                                   predictions_candidate=_predictions(ev_b), class_names=list(CLASS_NAMES),
                                   target_class=TARGET_CLASS, min_difference=GATE_MIN_DIFFERENCE,
                                   max_class_drop=GATE_MAX_CLASS_AP_DROP, n_boot=GATE_BOOTSTRAP_DRAWS, seed=0)
    boot = outcome["bootstrap"]
    classes = [{"class_name": name, "ap_current": row["a"], "ap_candidate": row["b"], "drop": row["drop"],
                "ok": row["drop"] is None or row["drop"] <= GATE_MAX_CLASS_AP_DROP + 1e-12}
               for name, row in outcome["per_class"]["per_class"].items()]
    return {
        **base, "passed": bool(outcome["passes"]), "reasons": outcome["reasons"],
        "rs_ap50": {k: boot[k] for k in ("ap50_a", "ap50_b", "difference", "low", "high")},
        "classes": classes, "current_metrics": ev_a.metrics, "candidate_metrics": ev_b.metrics,
    }
