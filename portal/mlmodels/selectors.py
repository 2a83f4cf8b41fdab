"""Registry reads, filtered by the user's centers."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from portal.centers.models import Center
from portal.centers.selectors import center_ids_for_user
from portal.mlmodels.models import ActiveModel, ModelVersion


def model_version_list(*, user) -> QuerySet[ModelVersion]:
    """Site-wide models and the models of the user's centers (superusers: all)."""
    qs = ModelVersion.objects.select_related("center")
    if getattr(user, "is_superuser", False):
        return qs
    if getattr(user, "is_auditor", False) and not center_ids_for_user(user):
        return qs.none()
    ids = center_ids_for_user(user)
    if not ids:
        return qs.none()
    return qs.filter(Q(center__isnull=True) | Q(center_id__in=ids))


def model_version_get(*, user, model_version_id) -> ModelVersion | None:
    return model_version_list(user=user).filter(pk=model_version_id).first()


def model_active_for_center(*, center: Center | None) -> ModelVersion | None:
    """The center's active model, else the site default, else None."""
    if center is not None:
        row = ActiveModel.objects.select_related("model_version").filter(center=center).first()
        if row is not None:
            return row.model_version
    row = ActiveModel.objects.select_related("model_version").filter(center__isnull=True).first()
    return row.model_version if row else None


def active_models_by_center(*, user) -> dict:
    """Map center id (None: site default) -> active ModelVersion, for the centers the user sees."""
    ids = center_ids_for_user(user)
    rows = ActiveModel.objects.select_related("model_version").filter(Q(center__isnull=True) | Q(center_id__in=ids))
    return {row.center_id: row.model_version for row in rows}
