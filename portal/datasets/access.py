"""Access to dataset versions: ``access_dataset_version(*, user, id, action)`` returns the version or
raises ``NotFound`` (absent, of a center the user holds no role in, or asked for by a user blinded from
any session: a dataset's instances are the model's output as reviewed); sessions for training use are
reached through ``portal.imaging.access.access_session``."""
from __future__ import annotations

from django.utils.translation import gettext as _

from portal.centers.access import absent_or_refused, center_gate
from portal.centers.policy import Action
from portal.core.errors import NotFound
from portal.datasets.models import DatasetVersion
from portal.imaging.selectors import user_is_blinded


def access_dataset_version(*, user, id, action: Action = Action.DATASETS_READ) -> DatasetVersion:
    """A dataset version of a center where ``user`` may do ``action``."""
    version = DatasetVersion.objects.select_related("line", "center").filter(pk=id).first()
    if version is None:
        raise absent_or_refused(DatasetVersion.objects, user=user, kind="datasets.datasetversion", object_id=id,
                                action=action, message=_("No such dataset version."))
    if getattr(user, "is_superuser", False):
        return version
    center_gate(user=user, center_id=version.center_id, action=action, kind="datasets.datasetversion",
                object_id=id)
    if user_is_blinded(user):  # instances come from model output: never for a user blinded from a session
        raise NotFound(_("No such dataset version."))
    return version
