"""Job reads, filtered by the user's centers (policy ``jobs.read``) and blinding."""
from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from portal.centers.access import center_ids_for
from portal.centers.policy import Action
from portal.imaging.selectors import blinded_session_ids, user_is_blinded
from portal.jobs.models import InferenceJob, JobImage
from portal.results.models import ResultSet


def job_list(*, user, session_id=None, status: str | None = None) -> QuerySet[InferenceJob]:
    """Jobs of the user's centers outside sessions they are blinded from, newest first."""
    qs = (InferenceJob.objects.filter(center_id__in=center_ids_for(user, Action.JOBS_READ))
          .exclude(session_id__in=blinded_session_ids(user)).select_related("model_version"))
    if session_id is not None:
        qs = qs.filter(session_id=session_id)
    if status:
        qs = qs.filter(status=status)
    return qs


def session_jobs_progress(*, user, session_id, limit: int = 10) -> list[InferenceJob]:
    """The latest jobs of a session with their images and their result sets' scale warnings, for the
    session page's progress panel."""
    return list(job_list(user=user, session_id=session_id).prefetch_related(
        Prefetch("job_images", queryset=JobImage.objects.order_by("id")),
        Prefetch("result_sets", queryset=ResultSet.objects.only("id", "job_id", "image_id", "scale_status",
                                                                "scale_warning")),
    )[:limit])


def user_sees_model_names(user) -> bool:
    """Whether job and result listings may name models: not while ``user`` is blinded from any session
    (a model named on another session's job would tell a validator which model their study tests)."""
    return not user_is_blinded(user)
