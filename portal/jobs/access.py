"""Access to inference jobs: ``access_job(*, user, id, action)`` returns the job or raises ``NotFound``
(absent, another center's, or of a session the user is blinded from). Sessions are reached through
``portal.imaging.access.access_session`` with a jobs action."""
from __future__ import annotations

from django.db.models import Prefetch

from portal.centers.policy import Action
from portal.imaging.access import access_in_session
from portal.jobs.models import InferenceJob, JobImage
from portal.results.models import ResultSet


def access_job(*, user, id, action: Action = Action.JOBS_READ) -> InferenceJob:
    """One job with its images (and each image's result set of this job) that ``user`` may do ``action`` on."""
    queryset = InferenceJob.objects.select_related("model_version").prefetch_related(
        Prefetch("job_images", queryset=JobImage.objects.order_by("id")),
        Prefetch("result_sets", queryset=ResultSet.objects.only("id", "job_id", "image_id", "status")),
    )
    return access_in_session(queryset, user=user, id=id, action=action, kind="jobs.inferencejob")
