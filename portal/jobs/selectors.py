"""Job reads, filtered by the user's center memberships."""
from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from portal.centers.selectors import center_ids_for_user
from portal.imaging.models import ImageSession
from portal.jobs.models import InferenceJob, JobImage
from portal.results.models import ResultSet


def _blinded_session_ids(user) -> set:
    """Sessions the user is blinded from: a validator must not learn job or model ids of them."""
    from portal.validation.selectors import blinded_session_ids_for  # validation reads jobs' models

    return blinded_session_ids_for(user)


def job_list(*, user, session_id=None, status: str | None = None) -> QuerySet[InferenceJob]:
    """Jobs of the user's centers (any role) outside sessions they are blinded from, newest first."""
    qs = (InferenceJob.objects.filter(center_id__in=center_ids_for_user(user))
          .exclude(session_id__in=_blinded_session_ids(user)).select_related("model_version"))
    if session_id is not None:
        qs = qs.filter(session_id=session_id)
    if status:
        qs = qs.filter(status=status)
    return qs


def job_get(*, user, job_id) -> InferenceJob | None:
    """One job with its images (and each image's result set of this job), or None when not visible."""
    return job_list(user=user).prefetch_related(
        Prefetch("job_images", queryset=JobImage.objects.order_by("id")),
        Prefetch("result_sets", queryset=ResultSet.objects.only("id", "job_id", "image_id", "status")),
    ).filter(pk=job_id).first()


def session_for_user(*, user, session_id) -> ImageSession | None:
    """The session when it belongs to one of the user's centers and the user is not blinded from it."""
    if session_id in _blinded_session_ids(user):
        return None
    return ImageSession.objects.filter(pk=session_id, center_id__in=center_ids_for_user(user)).first()


def session_jobs_progress(*, user, session_id, limit: int = 10) -> list[InferenceJob]:
    """The latest jobs of a session with their images and their result sets' scale warnings, for the
    session page's progress panel."""
    return list(job_list(user=user, session_id=session_id).prefetch_related(
        Prefetch("job_images", queryset=JobImage.objects.order_by("id")),
        Prefetch("result_sets", queryset=ResultSet.objects.only("id", "job_id", "image_id", "scale_status",
                                                                "scale_warning")),
    )[:limit])
