"""HTML: training jobs (start, live progress, cancel), model cards, the promotion gate (side by side, signed
promotion), rollback, re-analysis and the comparison of two result sets of an image."""
from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.centers.access import access_center, access_centers, center_ids_for
from portal.centers.models import Center
from portal.centers.policy import Action
from portal.core.errors import DomainError, NotFound
from portal.datasets.access import access_dataset_version
from portal.datasets.selectors import dataset_version_list
from portal.imaging.access import access_image, access_session
from portal.imaging.models import ImageSession
from portal.mlmodels.access import access_model_version
from portal.mlmodels.selectors import model_active_for_center, model_version_list, user_sees_registry
from portal.results.models import ResultSet
from portal.training import promotion, selectors, services
from portal.training.access import access_candidate, access_training_job
from portal.training.cards import model_card, pr_curves_svg, reliability_svg
from portal.training.models import TrainingJob


def _uuid(raw) -> str | None:
    try:
        return str(uuid.UUID(str(raw)))
    except (TypeError, ValueError):
        return None


def _require_registry(user) -> None:
    access_centers(user=user, action=Action.TRAINING_READ)
    if not user_sees_registry(user):  # blinded from a session: no model output anywhere
        raise NotFound(_("Not found."))


@login_required
def index(request):
    """Training jobs, the start form, each managed center's active model with its rollback, re-analysis."""
    _require_registry(request.user)
    run_centers = center_ids_for(request.user, Action.TRAINING_RUN)
    promote_centers = Center.objects.filter(pk__in=center_ids_for(request.user, Action.MODELS_PROMOTE)).order_by("code")
    centers = [{"center": c, "active": model_active_for_center(center=c),
                "rollback": promotion.rollback_target(center=c),
                "history": list(selectors.promotions_of(user=request.user, center_id=c.pk)[:5])}
               for c in promote_centers]
    return render(request, "training/index.html", {
        "jobs": selectors.training_job_list(user=request.user)[:50],
        "versions": dataset_version_list(user=request.user).filter(center_id__in=run_centers)[:50],
        "models": model_version_list(user=request.user)[:100] if run_centers else [],
        "defaults": {k: spec[3] for k, spec in services.OPTION_SPEC.items()},
        "centers": centers,
        "sessions": ImageSession.objects.filter(center_id__in=run_centers).select_related("patient", "center")
        .order_by("-acquisition_date")[:100],
    })


@login_required
@require_POST
def start(request):
    version_id = _uuid(request.POST.get("dataset_version_id"))
    if version_id is None:
        messages.error(request, _("Choose a dataset version."))
        return redirect("training:index")
    version = access_dataset_version(user=request.user, id=version_id, action=Action.TRAINING_RUN)
    base = None
    if _uuid(request.POST.get("base_model_id")):
        base = access_model_version(user=request.user, id=_uuid(request.POST["base_model_id"]))
    options = {k: request.POST.get(k) for k in services.OPTION_SPEC if request.POST.get(k, "").strip()}
    try:
        job = services.training_job_create(user=request.user, dataset_version=version, base_model=base,
                                           options=options, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("training:index")
    messages.success(request, _("Training queued."))
    return redirect("training:job-detail", training_job_id=job.pk)


@login_required
def job_detail(request, training_job_id):
    job = access_training_job(user=request.user, id=training_job_id)
    return render(request, "training/job_detail.html", {"job": job, "progress": services.training_progress(job)})


@login_required
@require_POST
def job_cancel(request, training_job_id):
    job = access_training_job(user=request.user, id=training_job_id, action=Action.TRAINING_RUN)
    try:
        services.training_job_cancel(job=job, user=request.user, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Cancellation requested."))
    return redirect("training:job-detail", training_job_id=job.pk)


def _charts(metrics: dict) -> dict:
    return {
        "pr": pr_curves_svg(metrics.get("pr_curves"), title=_("Precision–recall (IoU 0.5)"), x_label=_("recall"),
                            y_label=_("precision")),
        "reliability": reliability_svg(metrics.get("calibration"), title=_("Reliability diagram"),
                                       x_label=_("mean score"), y_label=_("fraction true positive")),
    }


def _class_rows(metrics: dict) -> list[dict]:
    per_class = (metrics.get("segm") or {}).get("per_class") or {}
    bbox = (metrics.get("bbox") or {}).get("per_class") or {}
    counts = metrics.get("counts") or {}
    return [{"name": name, "ap": row.get("AP"), "ap50": row.get("AP50"), "bbox_ap50": (bbox.get(name) or {}).get("AP50"),
             "gt": (counts.get(name) or {}).get("ground_truth"), "predicted": (counts.get(name) or {}).get("predicted")}
            for name, row in per_class.items()]


@login_required
def card(request, model_version_id):
    model_version = access_candidate(user=request.user, id=model_version_id)
    data = model_card(model_version, user=request.user)
    evaluations = [{**e, "charts": _charts(e["metrics"]), "classes": _class_rows(e["metrics"]),
                    "confusion": e["metrics"].get("confusion_matrix") or {},
                    "confusion_rows": list(zip((e["metrics"].get("confusion_matrix") or {}).get("labels", []),
                                               (e["metrics"].get("confusion_matrix") or {}).get("matrix", [])))}
                   for e in data["evaluations"]]
    summary = data["training_summary"] or {}
    counts = summary.get("counts") or {}
    sources = [(name, src.get("reviewed", 0), src.get("sorted-population", 0), src.get("stain-confirmed", 0))
               for name, src in sorted((counts.get("per_class_source") or {}).items())]
    job = TrainingJob.objects.filter(candidate=model_version).first()
    return render(request, "training/model_card.html", {
        "model_version": model_version, "card": data, "evaluations": evaluations, "summary": summary,
        "counts": counts, "sources": sources, "job": job,
    })


@login_required
def gate(request, model_version_id):
    """GET: the candidate and the center's active model side by side; POST: promote (e-signature)."""
    candidate = access_candidate(user=request.user, id=model_version_id)
    center_id = _uuid(request.POST.get("center_id") or request.GET.get("center")) or (
        str(candidate.center_id) if candidate.center_id else None)
    if center_id is None:
        raise NotFound(_("Not found."))
    center = access_center(user=request.user, id=center_id, action=Action.TRAINING_READ)
    if request.method == "POST":
        access_candidate(user=request.user, id=model_version_id, action=Action.MODELS_PROMOTE)
        access_center(user=request.user, id=center_id, action=Action.MODELS_PROMOTE)
        try:
            promotion.model_promote(user=request.user, candidate=candidate, center=center,
                                    password=request.POST.get("password", ""), request=request)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("The candidate is now the center's active model."))
            return redirect("training:index")
    try:
        result = promotion.promotion_gate(candidate=candidate, center=center)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("training:index")
    current_metrics = result.get("current_metrics") or {}
    candidate_metrics = result.get("candidate_metrics") or {}
    return render(request, "training/gate.html", {
        "candidate": candidate, "center": center, "gate": result,
        "current": model_active_for_center(center=center),
        "current_charts": _charts(current_metrics) if current_metrics else None,
        "candidate_charts": _charts(candidate_metrics),
        "may_promote": request.user.is_superuser or center.pk in center_ids_for(request.user, Action.MODELS_PROMOTE),
        "meaning": promotion.PROMOTE_MEANING,
    })


@login_required
@require_POST
def rollback(request, center_id):
    center = access_center(user=request.user, id=center_id, action=Action.MODELS_PROMOTE)
    try:
        promotion.model_rollback(user=request.user, center=center, password=request.POST.get("password", ""),
                                 request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The center is back on its previous model."))
    return redirect("training:index")


@login_required
@require_POST
def reanalyse(request):
    ids = [i for i in map(_uuid, request.POST.getlist("session_ids")) if i]
    try:
        sessions = [access_session(user=request.user, id=i, action=Action.TRAINING_RUN) for i in dict.fromkeys(ids)]
        jobs = promotion.sessions_reanalyse(user=request.user, sessions=sessions, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("%(n)d re-analysis job(s) queued.") % {"n": len(jobs)})
    return redirect("training:index")


@login_required
def compare(request, image_id):
    """Two complete model result sets of an image side by side (default: the newest two). Reached with
    ``review.view``, which already answers "not found" to a user blinded from the session."""
    image = access_image(user=request.user, id=image_id, action=Action.REVIEW_VIEW)
    if not user_sees_registry(request.user):  # model names and scores: never for a user blinded anywhere
        raise NotFound("Not found.")
    sets = list(ResultSet.objects.filter(image=image, status="complete", source="model")
                .select_related("model_version").order_by("-completed_at", "-created_at"))
    by_id = {str(rs.pk): rs for rs in sets}
    chosen = [by_id.get(_uuid(request.GET.get(k)) or "") for k in ("a", "b")]
    if chosen[0] is None and chosen[1] is None:
        chosen = [sets[1] if len(sets) > 1 else None, sets[0] if sets else None]
    if request.GET.get("a") and chosen[0] is None or request.GET.get("b") and chosen[1] is None:
        raise NotFound(_("Not found."))
    from portal.training.compare import result_set_panel

    panels = [result_set_panel(rs, image) if rs else None for rs in chosen]
    return render(request, "training/compare.html", {"image": image, "sets": sets, "panels": panels,
                                                     "chosen": chosen})
