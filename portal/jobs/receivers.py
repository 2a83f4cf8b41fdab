"""The jobs app's signal receivers: tell the people of a session that its analysis ended."""
from __future__ import annotations

from django.urls import reverse

from portal.centers.models import Membership, Role
from portal.core.models import NotificationKind
from portal.core.services import notifications_create
from portal.imaging.models import SessionBlinding
from portal.jobs.models import InferenceJob, JobStatus

KIND_FOR_STATUS = {
    JobStatus.SUCCEEDED: NotificationKind.ANALYSIS_SUCCEEDED,
    JobStatus.FAILED: NotificationKind.ANALYSIS_FAILED,
    JobStatus.CANCELLED: NotificationKind.ANALYSIS_CANCELLED,
}


def job_recipient_ids(job: InferenceJob) -> list:
    """Who hears that the job ended: the session's uploader, who started the job, and the reviewers of
    the center, minus anyone blinded from the session (a notification names no model, but a blinded
    user has no business with the session's analyses)."""
    session = job.session
    ids = [session.created_by_id, job.created_by_id]
    ids += list(Membership.objects.filter(center_id=job.center_id, role=Role.REVIEWER)
                .order_by("user_id").values_list("user_id", flat=True))
    members = set(Membership.objects.filter(center_id=job.center_id).values_list("user_id", flat=True))
    blinded = set(SessionBlinding.objects.filter(session=session).values_list("user_id", flat=True))
    return [uid for uid in dict.fromkeys(ids) if uid in members and uid not in blinded]


def notify_job_finished(*, job_id, status: str, **_signal) -> None:
    """Receiver of ``jobs.signals.job_finished``: one notification per recipient."""
    kind = KIND_FOR_STATUS.get(status)
    if kind is None:
        return
    job = InferenceJob.objects.select_related("session", "session__patient").get(pk=job_id)
    session = job.session
    notifications_create(
        user_ids=job_recipient_ids(job), kind=kind, center_id=job.center_id,
        link=reverse("imaging:session-detail", kwargs={"pk": session.pk}),
        params={"session": f"{session.patient.code} {session.acquisition_date.isoformat()}",
                "images_done": job.images_done, "images_total": job.images_total},
    )
