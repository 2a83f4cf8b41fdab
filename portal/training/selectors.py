"""Training reads, filtered by the user's centers (and empty for users blinded from any session)."""
from __future__ import annotations

from django.db.models import QuerySet

from portal.centers.access import center_ids_for
from portal.centers.policy import Action
from portal.mlmodels.models import ModelVersion
from portal.mlmodels.selectors import user_sees_registry
from portal.training.models import ModelEvaluation, ModelPromotion, TrainingJob


def training_job_list(*, user) -> QuerySet[TrainingJob]:
    """Training jobs of the centers where ``user`` may read training, newest first."""
    qs = TrainingJob.objects.select_related("dataset_version__line", "base_model", "candidate", "center")
    if getattr(user, "is_superuser", False):
        return qs
    if not user_sees_registry(user):
        return qs.none()
    return qs.filter(center_id__in=center_ids_for(user, Action.TRAINING_READ))


def evaluations_of(model_version: ModelVersion, *, user) -> list[ModelEvaluation]:
    """The model's evaluations that ``user`` may read: those on the held-out images of centers where they
    hold ``training.read``, and whole (pooled) test splits of dataset versions owned by such a center, with
    the per-center figures of other centers taken out. Whole test splits first, then per center."""
    readable = {str(c) for c in center_ids_for(user, Action.TRAINING_READ)}
    out = []
    for evaluation in (ModelEvaluation.objects.filter(model_version=model_version)
                       .select_related("dataset_version__line", "center").order_by("dataset_version", "center__code")):
        owner = evaluation.center_id if evaluation.center_id else evaluation.dataset_version.center_id
        if str(owner) not in readable:
            continue
        per_center = (evaluation.metrics or {}).get("per_center")
        if per_center:
            evaluation.metrics = {**evaluation.metrics,
                                  "per_center": {k: v for k, v in per_center.items() if k in readable}}
        out.append(evaluation)
    return out


def promotions_of(*, user, center_id) -> QuerySet[ModelPromotion]:
    """The center's promotions and rollbacks, newest first."""
    return ModelPromotion.objects.filter(center_id=center_id).select_related(
        "model_version", "previous_model_version", "signed_by")
