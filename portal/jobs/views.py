"""HTML: start an analysis from the session page, a job's page, cancel."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.centers.policy import Action
from portal.core.errors import DomainError
from portal.imaging.access import access_session
from portal.jobs import selectors, services
from portal.jobs.access import access_job


def _back(request, fallback):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return redirect(target)
    return redirect(fallback)


@login_required
@require_POST
def session_start(request, session_id):
    session = access_session(user=request.user, id=session_id, action=Action.JOBS_RUN)
    try:
        job = services.job_create(session=session, user=request.user, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
        return _back(request, "core:home")
    messages.success(request, _('Analysis of %(images_total)s image(s) queued.') % {"images_total": job.images_total})
    return _back(request, job_detail_url(job))


def job_detail_url(job) -> str:
    from django.urls import reverse

    return reverse("jobs:detail", kwargs={"job_id": job.pk})


@login_required
def job_detail(request, job_id):
    job = access_job(user=request.user, id=job_id)
    sets = {rs.image_id: rs for rs in job.result_sets.all()}
    images = [{"job_image": ji, "result_set_id": sets[ji.image_id].pk if ji.image_id in sets else None,
               "scale_warning": sets[ji.image_id].scale_warning if ji.image_id in sets else ""}
              for ji in job.job_images.all()]
    return render(request, "jobs/job_detail.html", {
        "job": job, "images": images, "show_model": selectors.user_sees_model_names(request.user)})


@login_required
@require_POST
def job_cancel(request, job_id):
    job = access_job(user=request.user, id=job_id, action=Action.JOBS_RUN)
    try:
        services.job_cancel(job=job, user=request.user, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Cancellation requested."))
    return _back(request, job_detail_url(job))
