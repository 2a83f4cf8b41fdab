"""Registry reads, filtered by the user's centers."""
from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from portal.centers.access import center_ids_for
from portal.centers.models import Center
from portal.centers.policy import Action
from portal.imaging.selectors import user_is_blinded
from portal.mlmodels.models import ActiveModel, ModelVersion


def registry_center_ids(user) -> list:
    """Ids of the centers whose models ``user`` may see: where a role grants ``models.read``
    (validators and stain technicians work blinded to the model and see none), none while the user is
    blinded from any session."""
    if user_is_blinded(user):
        return []
    return center_ids_for(user, Action.MODELS_READ)


def user_sees_registry(user) -> bool:
    """Whether ``user`` may see the model registry at all (superusers, and ``models.read`` holders)."""
    return bool(getattr(user, "is_superuser", False) or registry_center_ids(user))


def centers_managed(user) -> QuerySet[Center]:
    """Centers whose models ``user`` manages (``models.manage``)."""
    return Center.objects.filter(id__in=center_ids_for(user, Action.MODELS_MANAGE))


def model_version_list(*, user) -> QuerySet[ModelVersion]:
    """Site-wide models and the models of the user's centers (superusers: all; blinded-only roles and
    auditors without a membership: none)."""
    used = (Exists(ModelVersion.objects.filter(pk=OuterRef("pk"), jobs__isnull=False))
            | Exists(ModelVersion.objects.filter(pk=OuterRef("pk"), result_sets__isnull=False)))
    # ``is_used`` (as services.model_is_used) in the same query, not one query per listed model
    qs = ModelVersion.objects.select_related("center").annotate(is_used=used)
    if getattr(user, "is_superuser", False):
        return qs
    ids = registry_center_ids(user)
    if not ids:
        return qs.none()
    return qs.filter(Q(center__isnull=True) | Q(center_id__in=ids))


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
    ids = registry_center_ids(user)
    rows = ActiveModel.objects.select_related("model_version").filter(Q(center__isnull=True) | Q(center_id__in=ids))
    return {row.center_id: row.model_version for row in rows}
