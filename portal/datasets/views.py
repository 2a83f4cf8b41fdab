"""HTML: training use of sessions, dataset versions (make, look at, export)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.centers.access import access_center, access_centers
from portal.centers.models import Center
from portal.centers.policy import Action
from portal.core.errors import DomainError
from portal.datasets import selectors, services
from portal.datasets.access import access_dataset_version
from portal.datasets.api import dataset_zip_response
from portal.imaging.access import access_session
from portal.review.classes import CLASS_NAMES


@login_required
def index(request):
    """Dataset versions of the user's centers; for administrators, their sessions' training use."""
    access_centers(user=request.user, action=Action.DATASETS_READ)
    managed = Center.objects.filter(pk__in=selectors.center_ids_managed(request.user)).order_by("code")
    return render(request, "datasets/index.html", {
        "versions": selectors.dataset_version_list(user=request.user)[:100],
        "sessions": selectors.training_sessions(user=request.user)[:200], "managed_centers": managed,
        "class_names": CLASS_NAMES,
    })


def _float_or_none(raw: str) -> float | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise DomainError(_("Purity must be a number between 0 and 100."))


@login_required
@require_POST
def session_use(request, session_id):
    session = access_session(user=request.user, id=session_id, action=Action.DATASETS_MANAGE)
    try:
        services.training_use_set(
            user=request.user, session=session, consent=request.POST.get("consent") == "on",
            sorted_population=request.POST.get("sorted_population", ""),
            sorted_class=request.POST.get("sorted_class", ""),
            purity_percent=_float_or_none(request.POST.get("purity_percent", "")), request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Training use saved."))
    return redirect("datasets:index")


@login_required
@require_POST
def create(request):
    if not _is_uuid(request.POST.get("center_id")):
        messages.error(request, _("Choose a center."))
        return redirect("datasets:index")
    center = access_center(user=request.user, id=request.POST["center_id"], action=Action.DATASETS_MANAGE)
    ids = [i for i in request.POST.getlist("session_ids") if _is_uuid(i)]
    try:
        sessions = [access_session(user=request.user, id=i, action=Action.DATASETS_MANAGE) for i in dict.fromkeys(ids)]
        version = services.dataset_version_create(user=request.user, center=center, name=request.POST.get("name", ""),
                                                  sessions=sessions, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("datasets:index")
    messages.success(request, _("Dataset version created."))
    return redirect("datasets:detail", dataset_version_id=version.pk)


def _is_uuid(raw) -> bool:
    import uuid

    try:
        uuid.UUID(str(raw))
    except (TypeError, ValueError):
        return False
    return True


@login_required
def detail(request, dataset_version_id):
    version = access_dataset_version(user=request.user, id=dataset_version_id)
    counts = version.counts
    return render(request, "datasets/detail.html", {
        "version": version, "counts": counts,
        "manifest": services.manifest_visible(user=request.user, version=version),
        "per_class_source": [(name, src.get("reviewed", 0), src.get("sorted-population", 0),
                              src.get("stain-confirmed", 0))
                             for name, src in sorted(counts.get("per_class_source", {}).items())],
    })


@login_required
def export(request, dataset_version_id):
    version = access_dataset_version(user=request.user, id=dataset_version_id)
    return dataset_zip_response(services.dataset_version_export_zip(user=request.user, version=version,
                                                                    request=request), version)
