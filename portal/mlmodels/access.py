"""Access to the model registry: ``access_model_version(*, user, id, action)`` returns the version or
raises ``NotFound``; ``access_model_center`` the center a registry write names.

Site-wide versions (no center) are read by everyone who reads a registry and managed by superusers only.
A user blinded from any session sees no registry (it would name the model their study tests).
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from portal.centers.access import absent_or_refused, access_center, center_gate
from portal.centers.models import Center
from portal.centers.policy import Action
from portal.core.errors import NotFound
from portal.mlmodels import selectors
from portal.mlmodels.models import ModelVersion


def access_model_version(*, user, id, action: Action = Action.MODELS_READ) -> ModelVersion:
    """A model version ``user`` may read, and do ``action`` on (``models.read`` or ``models.manage``)."""
    model_version = ModelVersion.objects.select_related("center").filter(pk=id).first()
    if model_version is None:
        raise absent_or_refused(ModelVersion.objects, user=user, kind="mlmodels.modelversion", object_id=id,
                                action=action, message=_("No such model version."))
    if getattr(user, "is_superuser", False):
        return model_version
    if model_version.center_id is not None:
        center_gate(user=user, center_id=model_version.center_id, action=Action.MODELS_READ,
                    kind="mlmodels.modelversion", object_id=id)
    if not selectors.user_sees_registry(user):
        raise NotFound(_("No such model version."))
    if model_version.center_id is None:
        if action != Action.MODELS_READ:
            raise PermissionDenied(_("Only superusers manage site-wide models."))
        return model_version
    if action != Action.MODELS_READ:
        center_gate(user=user, center_id=model_version.center_id, action=action, kind="mlmodels.modelversion",
                    object_id=id)
    return model_version


def access_model_center(*, user, id) -> Center | None:
    """The center whose registry a write names (None: site-wide, superusers only)."""
    if id is None:
        if not getattr(user, "is_superuser", False):
            raise PermissionDenied(_("Only superusers manage site-wide models."))
        return None
    if getattr(user, "is_superuser", False):
        center = Center.objects.filter(pk=id).first()
        if center is None:
            raise NotFound(_("No such center."))
        return center
    return access_center(user=user, id=id, action=Action.MODELS_MANAGE)
