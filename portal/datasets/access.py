"""Access to dataset versions: ``access_dataset_version(*, user, id, action)`` returns the version or
raises ``NotFound`` (absent, or of a center the user holds no role in); sessions for training use are
reached through ``portal.imaging.access.access_session``."""
from __future__ import annotations

from portal.centers.access import center_gate
from portal.centers.policy import Action
from portal.core.errors import NotFound
from portal.datasets.models import DatasetVersion


def access_dataset_version(*, user, id, action: Action = Action.DATASETS_READ) -> DatasetVersion:
    """A dataset version of a center where ``user`` may do ``action``."""
    version = DatasetVersion.objects.select_related("line", "center").filter(pk=id).first()
    if version is None:
        raise NotFound("No such dataset version.")
    if getattr(user, "is_superuser", False):
        return version
    center_gate(user=user, center_id=version.center_id, action=action, kind="datasets.datasetversion",
                object_id=id)
    return version
