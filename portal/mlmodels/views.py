"""Registry page: models visible to the user, the active one per center, upload and activate (admins)."""
from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal.centers.models import Center, Role
from portal.centers.selectors import centers_for_user
from portal.core.api import DomainError
from portal.mlmodels import selectors, services


class UploadForm(forms.Form):
    file = forms.FileField(label="Bundle (.zip)")
    center = forms.ModelChoiceField(queryset=Center.objects.none(), required=False,
                                    empty_label="Site-wide (superuser)")
    activate = forms.BooleanField(required=False, initial=True, label="Make it the active model")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["center"].queryset = centers_for_user(user, [Role.CENTER_ADMIN])
        if not user.is_superuser:
            self.fields["center"].required = True
            self.fields["center"].empty_label = None


def _visible_or_404(user):
    if user.is_auditor and not user.is_superuser:
        raise Http404
    if not selectors.user_sees_registry(user):
        raise Http404


@login_required
def model_list(request):
    _visible_or_404(request.user)
    admin_centers = list(centers_for_user(request.user, [Role.CENTER_ADMIN]))
    can_upload = bool(admin_centers) or request.user.is_superuser
    form = UploadForm(user=request.user)
    if request.method == "POST":
        if not can_upload:
            raise Http404
        form = UploadForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            try:
                model_version = services.model_upload_bundle(
                    uploaded_file=form.cleaned_data["file"], center=form.cleaned_data["center"],
                    user=request.user, activate=form.cleaned_data["activate"],
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Registered {model_version}.")
                return redirect("mlmodels:list")
    active = selectors.active_models_by_center(user=request.user)
    rows = [
        {"model": mv, "used": mv.is_used,
         "active_for": [c for c in admin_centers if active.get(c.pk) == mv],
         "site_default": active.get(None) == mv,
         "activatable_for": [c for c in admin_centers if mv.center_id in (None, c.pk) and active.get(c.pk) != mv]}
        for mv in selectors.model_version_list(user=request.user)
    ]
    return render(request, "mlmodels/model_list.html", {
        "rows": rows, "form": form, "can_upload": can_upload, "admin_centers": admin_centers,
    })


@login_required
@require_POST
def model_activate(request, model_version_id):
    _visible_or_404(request.user)
    model_version = selectors.model_version_get(user=request.user, model_version_id=model_version_id)
    if model_version is None:
        raise Http404
    center_id = request.POST.get("center_id") or None
    center = None
    if center_id is None and not request.user.is_superuser:
        raise PermissionDenied
    if center_id is not None:
        try:
            uuid.UUID(center_id)
        except ValueError:
            raise Http404
        center = centers_for_user(request.user, [Role.CENTER_ADMIN]).filter(pk=center_id).first()
        if center is None:
            raise Http404
    try:
        services.model_activate(model_version=model_version, center=center, user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{model_version} is now active for {center or 'the whole site'}.")
    return redirect("mlmodels:list")
