"""Dataset reads, filtered by the user's centers."""
from __future__ import annotations

from django.db.models import QuerySet

from portal.centers.access import center_ids_for
from portal.centers.policy import Action
from portal.datasets.models import DatasetVersion, SessionTrainingUse
from portal.imaging.models import ImageSession
from portal.imaging.selectors import user_is_blinded


def dataset_version_list(*, user) -> QuerySet[DatasetVersion]:
    """Versions of the lines of the centers where ``user`` may read datasets, newest first."""
    qs = DatasetVersion.objects.select_related("line", "center").order_by("-created_at")
    if getattr(user, "is_superuser", False):
        return qs
    if user_is_blinded(user):
        return qs.none()
    return qs.filter(center_id__in=center_ids_for(user, Action.DATASETS_READ))


def training_sessions(*, user) -> QuerySet[ImageSession]:
    """Sessions of the centers where ``user`` manages datasets, with their training use (if any)."""
    return (ImageSession.objects.filter(center_id__in=center_ids_for(user, Action.DATASETS_MANAGE))
            .select_related("patient", "center", "training_use").order_by("-acquisition_date", "-created_at"))


def training_use_of(session: ImageSession) -> SessionTrainingUse | None:
    """The session's training use row, or None (not for training)."""
    return SessionTrainingUse.objects.filter(session=session).first()


def center_ids_managed(user) -> list:
    """Centers where ``user`` manages datasets."""
    return center_ids_for(user, Action.DATASETS_MANAGE)
