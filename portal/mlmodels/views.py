"""Registry page: models visible to the user, the active one per center, upload and activate (admins)."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from portal.centers.models import Center
from portal.core.errors import DomainError, NotFound
from portal.mlmodels import selectors, services
from portal.mlmodels.access import access_model_center, access_model_version


class UploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Bundle (.zip)"))
    center = forms.ModelChoiceField(label=gettext_lazy("Center"), queryset=Center.objects.none(), required=False,
                                    empty_label=gettext_lazy("Site-wide (superuser)"))
    activate = forms.BooleanField(required=False, initial=True, label=gettext_lazy("Make it the active model"))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["center"].queryset = selectors.centers_managed(user)
        if not user.is_superuser:
            self.fields["center"].required = True
            self.fields["center"].empty_label = None


def _visible_or_404(user):
    if user.is_auditor and not user.is_superuser:
        raise NotFound(_("Not found."))
    if not selectors.user_sees_registry(user):
        raise NotFound(_("Not found."))


@login_required
def model_list(request):
    _visible_or_404(request.user)
    admin_centers = list(selectors.centers_managed(request.user))
    can_upload = bool(admin_centers) or request.user.is_superuser
    form = UploadForm(user=request.user)
    if request.method == "POST":
        if not can_upload:
            raise NotFound(_("Not found."))
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
                messages.success(request, _('Registered %(model_version)s.') % {"model_version": model_version})
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
    model_version = access_model_version(user=request.user, id=model_version_id)
    center_id = request.POST.get("center_id") or None
    if center_id is None and not request.user.is_superuser:
        raise PermissionDenied
    try:
        center = access_model_center(user=request.user, id=center_id)
    except ValidationError:  # not a UUID
        raise NotFound(_("No such center."))
    try:
        services.model_activate(model_version=model_version, center=center, user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _('%(model_version)s is now active for %(center_or_the_whole_site)s.') % {"model_version": model_version, "center_or_the_whole_site": center or 'the whole site'})
    return redirect("mlmodels:list")
