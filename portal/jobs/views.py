"""HTML: start an analysis from the session page, a job's page, cancel."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from portal.centers.selectors import user_has_role
from portal.core.api import DomainError
from portal.jobs import selectors, services


def _back(request, fallback):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return redirect(target)
    return redirect(fallback)


@login_required
@require_POST
def session_start(request, session_id):
    session = selectors.session_for_user(user=request.user, session_id=session_id)
    if session is None:
        raise Http404
    if not user_has_role(request.user, session.center_id, services.JOB_ROLES):
        raise PermissionDenied
    try:
        job = services.job_create(session=session, user=request.user, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
        return _back(request, "core:home")
    messages.success(request, f"Analysis of {job.images_total} image(s) queued.")
    return _back(request, job_detail_url(job))


def job_detail_url(job) -> str:
    from django.urls import reverse

    return reverse("jobs:detail", kwargs={"job_id": job.pk})


@login_required
def job_detail(request, job_id):
    job = selectors.job_get(user=request.user, job_id=job_id)
    if job is None:
        raise Http404
    sets = {rs.image_id: rs for rs in job.result_sets.all()}
    images = [{"job_image": ji, "result_set_id": sets[ji.image_id].pk if ji.image_id in sets else None,
               "scale_warning": sets[ji.image_id].scale_warning if ji.image_id in sets else ""}
              for ji in job.job_images.all()]
    return render(request, "jobs/job_detail.html", {"job": job, "images": images})


@login_required
@require_POST
def job_cancel(request, job_id):
    job = selectors.job_get(user=request.user, job_id=job_id)
    if job is None:
        raise Http404
    if not user_has_role(request.user, job.center_id, services.JOB_ROLES):
        raise PermissionDenied
    try:
        services.job_cancel(job=job, user=request.user, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Cancellation requested.")
    return _back(request, job_detail_url(job))
