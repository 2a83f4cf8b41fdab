"""Access to inference jobs: ``access_job(*, user, id, action)`` returns the job or raises ``NotFound``
(absent, another center's, or of a session the user is blinded from). Sessions are reached through
``portal.imaging.access.access_session`` with a jobs action."""
from __future__ import annotations

from django.db.models import Prefetch

from portal.centers.policy import Action
from portal.core.errors import NotFound
from portal.imaging.access import session_gate
from portal.jobs.models import InferenceJob, JobImage
from portal.results.models import ResultSet


def access_job(*, user, id, action: Action = Action.JOBS_READ) -> InferenceJob:
    """One job with its images (and each image's result set of this job) that ``user`` may do ``action`` on."""
    job = (InferenceJob.objects.select_related("model_version").prefetch_related(
        Prefetch("job_images", queryset=JobImage.objects.order_by("id")),
        Prefetch("result_sets", queryset=ResultSet.objects.only("id", "job_id", "image_id", "status")),
    ).filter(pk=id).first())
    if job is None:
        raise NotFound("No such job.")
    session_gate(user=user, center_id=job.center_id, session_id=job.session_id, action=action,
                 kind="jobs.inferencejob", object_id=id)
    return job
