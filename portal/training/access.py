"""Access to training jobs and model cards: ``access_training_job(*, user, id, action)`` and
``access_candidate(*, user, id, action)`` return the object or raise ``NotFound`` (absent, another
center's, or — for anything that shows model output — a user blinded from any session)."""
from __future__ import annotations

from django.utils.translation import gettext as _

from portal.centers.access import absent_or_refused, center_gate
from portal.centers.policy import Action
from portal.core.errors import NotFound
from portal.mlmodels.access import access_model_version
from portal.mlmodels.models import ModelVersion
from portal.mlmodels.selectors import user_sees_registry
from portal.training.models import TrainingJob


def access_training_job(*, user, id, action: Action = Action.TRAINING_READ) -> TrainingJob:
    """A training job of a center where ``user`` may do ``action``."""
    job = TrainingJob.objects.select_related("dataset_version__line", "base_model", "candidate", "center").filter(
        pk=id).first()
    if job is None:
        raise absent_or_refused(TrainingJob.objects, user=user, kind="training.trainingjob", object_id=id,
                                action=action, message=_("No such training job."))
    if getattr(user, "is_superuser", False):
        return job
    center_gate(user=user, center_id=job.center_id, action=action, kind="training.trainingjob", object_id=id)
    if not user_sees_registry(user):  # losses and models are model output: never for blinded users
        raise NotFound(_("No such training job."))
    return job


def access_candidate(*, user, id, action: Action = Action.TRAINING_READ) -> ModelVersion:
    """A model version (card, gate) that ``user`` may see in the registry and do ``action`` on in its
    center; site-wide models are read only."""
    model_version = access_model_version(user=user, id=id)
    if getattr(user, "is_superuser", False) or model_version.center_id is None:
        if model_version.center_id is None and action != Action.TRAINING_READ:
            raise NotFound(_("No such model version."))
        return model_version
    center_gate(user=user, center_id=model_version.center_id, action=action, kind="mlmodels.modelversion",
                object_id=id)
    return model_version
