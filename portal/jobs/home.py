"""The jobs app's home page panel: analyses queued or running in the user's centers."""
from __future__ import annotations

from django.http import HttpRequest

from portal.centers.access import center_ids_for
from portal.centers.policy import Action
from portal.jobs.models import JobStatus
from portal.jobs.selectors import job_list


def jobs_home_panel(request: HttpRequest) -> dict | None:
    """For users who start analyses: the unfinished analyses of their centers (no model named)."""
    centers = center_ids_for(request.user, Action.JOBS_RUN)
    if not centers:
        return None
    jobs = list(job_list(user=request.user).filter(center_id__in=centers,
                                                   status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
                .select_related("session", "session__patient").order_by("-created_at")[:20])
    return {"template": "jobs/_home_panel.html", "order": 20, "running_jobs": jobs}
