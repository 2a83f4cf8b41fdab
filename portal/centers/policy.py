"""The one policy table: which role may do what in its center.

Every app's access functions (``portal/<app>/access.py``: ``access_<thing>(*, user, id, action)``) and
every list selector ask this table, through ``portal.centers.access``; no app keeps a role list of its
own. A role grants its actions only in the center where the user holds it.
"""
from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from portal.centers.models import Role


class Action(StrEnum):
    CENTER_READ = "center.read"
    IMAGING_READ = "imaging.read"  # patients, sessions, images: metadata and pixels
    IMAGING_WRITE = "imaging.write"  # create patients and sessions, upload, set pixel sizes
    RESULTS_READ = "results.read"  # result sets and detections (model output)
    REVIEW_VIEW = "review.view"  # review pages, viewer, image files shown with overlays
    REVIEW_DECIDE = "review.decide"  # decisions and drawn instances
    REVIEW_ADJUDICATE = "review.adjudicate"
    REVIEW_EXPORT = "review.export"  # COCO export, pick lists
    JOBS_READ = "jobs.read"
    JOBS_RUN = "jobs.run"  # start and cancel analyses
    MODELS_READ = "models.read"  # the model registry
    MODELS_MANAGE = "models.manage"  # upload, activate, delete model versions
    VALIDATION_MANAGE = "validation.manage"  # run studies of the center
    VALIDATION_VALIDATE = "validation.validate"  # be added to a study as a (blinded) validator
    VALIDATION_STAIN = "validation.stain"  # enter stain results of the center's cells (blinded)
    VALIDATION_PICK = "validation.pick"  # pick comparator cells in draft studies
    VALIDATION_REPORT = "validation.report"  # read an unblinded study's report (administrators, its validators)
    DATASETS_READ = "datasets.read"  # dataset versions, their manifests and COCO exports (own center's images)
    DATASETS_MANAGE = "datasets.manage"  # training use (consent), sorted populations, new dataset versions
    TRAINING_READ = "training.read"  # training jobs, model cards, promotion gates
    TRAINING_RUN = "training.run"  # start and cancel training jobs, re-analyse sessions with a promoted model
    MODELS_PROMOTE = "models.promote"  # promote a candidate (or roll back) with an e-signature


A = Action
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.UPLOADER: frozenset({
        A.CENTER_READ, A.IMAGING_READ, A.IMAGING_WRITE, A.RESULTS_READ, A.REVIEW_VIEW, A.JOBS_READ, A.JOBS_RUN,
        A.MODELS_READ, A.VALIDATION_PICK,
    }),
    Role.REVIEWER: frozenset({
        A.CENTER_READ, A.IMAGING_READ, A.RESULTS_READ, A.REVIEW_VIEW, A.REVIEW_DECIDE, A.REVIEW_EXPORT,
        A.JOBS_READ, A.JOBS_RUN, A.MODELS_READ, A.DATASETS_READ, A.TRAINING_READ,
    }),
    # Validators and stain technicians work blinded to the model: no imaging pages, no registry, and
    # no model output of any session they are blinded from (``imaging.SessionBlinding``).
    Role.VALIDATOR: frozenset({A.CENTER_READ, A.RESULTS_READ, A.JOBS_READ, A.VALIDATION_VALIDATE,
                               A.VALIDATION_REPORT}),
    Role.STAIN_TECHNICIAN: frozenset({A.CENTER_READ, A.RESULTS_READ, A.JOBS_READ, A.VALIDATION_STAIN}),
    Role.CENTER_ADMIN: frozenset({
        A.CENTER_READ, A.IMAGING_READ, A.IMAGING_WRITE, A.RESULTS_READ, A.REVIEW_VIEW, A.REVIEW_DECIDE,
        A.REVIEW_ADJUDICATE, A.REVIEW_EXPORT, A.JOBS_READ, A.JOBS_RUN, A.MODELS_READ, A.MODELS_MANAGE,
        A.VALIDATION_MANAGE, A.VALIDATION_PICK, A.VALIDATION_REPORT, A.DATASETS_READ, A.DATASETS_MANAGE,
        A.TRAINING_READ, A.TRAINING_RUN, A.MODELS_PROMOTE,
    }),
}

# A member of the object's center who lacks one of these actions is told so (403): the object is one
# they work with, only the operation is not theirs. For every other action the object stays hidden (404).
REFUSED_OPENLY: frozenset[Action] = frozenset({
    A.REVIEW_VIEW, A.REVIEW_DECIDE, A.REVIEW_ADJUDICATE, A.REVIEW_EXPORT, A.JOBS_RUN, A.MODELS_MANAGE,
    A.DATASETS_MANAGE, A.TRAINING_RUN, A.MODELS_PROMOTE,
})

# Actions that show what a model said about a session's cells: a user blinded from the session
# (``imaging.SessionBlinding``) is answered "not found", whatever their roles.
MODEL_OUTPUT_ACTIONS: frozenset[Action] = frozenset({
    A.RESULTS_READ, A.REVIEW_VIEW, A.REVIEW_DECIDE, A.REVIEW_ADJUDICATE, A.REVIEW_EXPORT, A.JOBS_READ, A.JOBS_RUN,
})


def roles_for(action: Action) -> tuple[str, ...]:
    """The roles that grant ``action``."""
    return tuple(role for role, actions in ROLE_ACTIONS.items() if action in actions)


def roles_allow(roles: Iterable[str], action: Action) -> bool:
    """Whether any of ``roles`` grants ``action``."""
    return any(action in ROLE_ACTIONS.get(role, ()) for role in roles)
