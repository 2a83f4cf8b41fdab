"""HTML pages of validation studies. Blinded pages (score, missed, sign, stain) render no model data;
the scoring and picking pages load their data from the blinded API through static JS."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from portal.audit.services import audit_record, audit_record_read
from portal.centers.models import Center
from portal.centers.policy import Action
from portal.core.errors import DomainError, NotFound
from portal.core.media import media_file_response
from portal.validation import crops, pdf, report, selectors, services
from portal.validation.access import (
    access_cell,
    access_field,
    access_stain_field,
    access_stain_image,
    access_study,
    access_study_validator,
)
from portal.validation.models import (
    PROTEIN_PRM1_WARNING,
    SIGNATURE_MEANING,
    Design,
    GroundTruthRule,
    Prm1Method,
    StudyStatus,
)


def _png(data: bytes) -> HttpResponse:
    response = HttpResponse(bytes(data), content_type="image/png")
    response["Cache-Control"] = "private, no-store"
    return response


class StudyIndexView(LoginRequiredMixin, View):
    """Studies the user runs, validates, enters stains for or picks cells in."""

    def get(self, request):
        return render(request, "validation/index.html", selectors.study_index(request.user))


class StudyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    center = forms.ModelChoiceField(label=gettext_lazy("Center"), queryset=Center.objects.none(), help_text=gettext_lazy("The center running the study."))
    centers = forms.ModelMultipleChoiceField(label=gettext_lazy("Other centers"), queryset=Center.objects.none(), required=False,
                                             help_text=gettext_lazy("Other centers taking part."))
    sessions = forms.ModelMultipleChoiceField(label=gettext_lazy("Image sessions"), queryset=None)
    model_version = forms.ModelChoiceField(label=gettext_lazy("Model version"), queryset=None)
    design = forms.ChoiceField(label=gettext_lazy("Design"), choices=Design.choices)
    score_threshold = forms.FloatField(label=gettext_lazy("Score threshold"), min_value=0, max_value=1, initial=0.5)
    candidate_threshold = forms.FloatField(label=gettext_lazy("Candidate threshold"), min_value=0, max_value=1, initial=0.05,
                                           help_text=gettext_lazy("Whole field: candidates are detections of any class at or above this score."))
    ground_truth_rule = forms.ChoiceField(label=gettext_lazy("Ground truth"), choices=GroundTruthRule.choices, initial=GroundTruthRule.EITHER)
    prm1_method = forms.ChoiceField(label=gettext_lazy("PRM1 method"), choices=Prm1Method.choices, help_text=PROTEIN_PRM1_WARNING)
    subsample_size = forms.IntegerField(label=gettext_lazy("Subsample size"), min_value=1, required=False,
                                        help_text=gettext_lazy("Whole field: score a random subset of this many candidates (seed stored)."))
    validators_per_cell = forms.IntegerField(label=gettext_lazy("Validators per cell"), min_value=1, max_value=20, initial=2)
    crop_um = forms.FloatField(label=gettext_lazy("Crop width (µm)"), min_value=5, max_value=200, initial=24.0)
    bootstrap_draws = forms.IntegerField(label=gettext_lazy("Bootstrap draws"), min_value=100, max_value=20000, initial=2000)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        choices = selectors.study_form_choices(user)
        self.fields["center"].queryset = choices["centers"]
        self.fields["centers"].queryset = choices["centers"]
        self.fields["sessions"].queryset = choices["sessions"]
        self.fields["model_version"].queryset = choices["model_versions"]


class StudyCreateView(LoginRequiredMixin, View):
    def get(self, request):
        if not selectors.user_runs_studies(request.user):
            raise NotFound(_("Not found."))
        return render(request, "validation/study_form.html", {"form": StudyForm(user=request.user)})

    def post(self, request):
        if not selectors.user_runs_studies(request.user):
            raise NotFound(_("Not found."))
        form = StudyForm(request.POST, user=request.user)
        if form.is_valid():
            d = dict(form.cleaned_data)
            v = {**d, "center": d["center"].pk, "centers": [c.pk for c in d["centers"]],
                 "sessions": [s.pk for s in d["sessions"]], "model_version": d["model_version"].pk}
            if v.get("subsample_size") is None:
                v.pop("subsample_size")
            try:
                study = services.study_create(actor=request.user, request=request,
                                              **selectors.resolve_study_input(request.user, v))
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect("validation:study", study_id=study.pk)
        return render(request, "validation/study_form.html", {"form": form})


class StudyAdminView(LoginRequiredMixin, View):
    """The study administrator's page: design, validators, progress, signatures, transitions."""

    actions = {
        "open": services.study_open,
    }

    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_MANAGE)
        return render(request, "validation/study.html", {"study": study, **selectors.study_admin_page(study)})

    def post(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_MANAGE)
        action = request.POST.get("action", "")
        try:
            if action in self.actions:
                self.actions[action](actor=request.user, study=study, request=request)
                messages.success(request, _('Study %(action)s done.') % {"action": action})
            elif action == "add_validator":
                membership = services.study_validator_add_by_username(
                    actor=request.user, study=study, username=request.POST.get("username", ""), request=request)
                messages.success(request, _('%(get_username)s added.') % {"get_username": membership.user.get_username()})
            elif action == "remove_validator":
                services.study_validator_remove_by_username(
                    actor=request.user, study=study, username=request.POST.get("username", ""), request=request)
            else:
                raise DomainError(_("Unknown action."))
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect("validation:study", study_id=study.pk)


class _SignedTransitionView(LoginRequiredMixin, View):
    """Confirmation page of a study transition that the administrator signs by re-entering their password."""

    service = None
    meaning = ""
    title = ""
    status_needed = ""
    consequence = ""

    def _context(self, study) -> dict:
        return {"study": study, "meaning": self.meaning, "title": self.title, "consequence": self.consequence,
                "ready": study.status == self.status_needed}

    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_MANAGE)
        return render(request, "validation/confirm_transition.html", self._context(study))

    def post(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_MANAGE)
        try:
            type(self).service(actor=request.user, study=study, password=request.POST.get("password", ""),
                               request=request)
        except DomainError as exc:
            messages.error(request, exc.message)
            return render(request, "validation/confirm_transition.html", self._context(study),
                          status=exc.status_code)
        messages.success(request, _('%(title)s: done and signed.') % {"title": self.title})
        return redirect("validation:study", study_id=study.pk)


class StudyLockView(_SignedTransitionView):
    service = staticmethod(services.study_lock_sign)
    meaning = services.LOCK_MEANING
    title = "Lock the study"
    status_needed = StudyStatus.OPEN
    consequence = ("Every validator has signed. After locking, no score or stain result can change; a hash of "
                   "all scores is stored.")


class StudyUnblindView(_SignedTransitionView):
    service = staticmethod(services.study_unblind_sign)
    meaning = services.UNBLIND_MEANING
    title = "Unblind the study"
    status_needed = StudyStatus.LOCKED
    consequence = ("The model's answers are compared with the validators' scores and the statistics are computed; "
                   "this cannot be undone.")


class PickView(LoginRequiredMixin, View):
    """Picked-cells design: the embryologist picks cells on the images, shown without any overlay."""

    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_PICK)
        services.study_fields_ensure(study=study)
        fields = selectors.pick_fields(request.user, study)
        config = {
            "fields": [{"field": f.public_id, "width": f.image.width, "height": f.image.height,
                        "image_url": reverse("validation:field-image", args=[study.pk, f.public_id])} for f in fields],
            "list_url": reverse("api-validation-study-picks", args=[study.pk]),
            "mode": "pick",
        }
        return render(request, "validation/pick.html", {"study": study, "config": config})


class ScoreView(LoginRequiredMixin, View):
    """Keyboard-driven scoring of the validator's own shuffled list (data from the blinded API)."""

    def get(self, request, study_id):
        membership = access_study_validator(user=request.user, id=study_id)
        study = membership.study
        config = {
            "cells_url": reverse("api-validation-my-cells", args=[study.pk]),
            "sign_url": reverse("validation:sign", args=[study.pk]),
            "writable": study.status == StudyStatus.OPEN,
        }
        return render(request, "validation/score.html", {"study": study, "config": config})


class MissedView(LoginRequiredMixin, View):
    """Whole field: the plain images, where a validator clicks cells the list missed."""

    def get(self, request, study_id):
        membership = access_study_validator(user=request.user, id=study_id)
        study = membership.study
        if study.design != Design.WHOLE_FIELD:
            raise NotFound(_("Not found."))
        config = {
            "fields": [{"field": f.public_id, "width": f.image.width, "height": f.image.height,
                        "image_url": reverse("validation:field-image", args=[study.pk, f.public_id]),
                        "post_url": reverse("api-validation-my-missed", args=[study.pk, f.public_id])}
                       for f in selectors.study_fields(study)],
            "mode": "missed",
        }
        return render(request, "validation/pick.html", {"study": study, "config": config, "missed": True})


class SignView(LoginRequiredMixin, View):
    """Sign the completed list: re-enter the password."""

    def _context(self, study, membership, request):
        return {"study": study, "meaning": SIGNATURE_MEANING, **selectors.sign_progress(request.user, membership)}

    def get(self, request, study_id):
        membership = access_study_validator(user=request.user, id=study_id)
        study = membership.study
        return render(request, "validation/sign.html", self._context(study, membership, request))

    def post(self, request, study_id):
        membership = access_study_validator(user=request.user, id=study_id)
        study = membership.study
        try:
            services.study_sign(actor=request.user, study=study, membership=membership,
                                password=request.POST.get("password", ""), request=request)
        except DomainError as exc:
            messages.error(request, exc.message)
            return render(request, "validation/sign.html", self._context(study, membership, request), status=exc.status_code)
        messages.success(request, _("Your scores are signed."))
        return redirect("validation:sign", study_id=study.pk)


class StainView(LoginRequiredMixin, View):
    """Stain entry at the bench (blinded): fluorescence images over the brightfield field, registration,
    keyboard calls per cell and CSV import; data from the blinded stain API through static JS."""

    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_STAIN)
        config = {"cells_url": reverse("api-validation-stain-cells", args=[study.pk]),
                  "fields_url": reverse("api-validation-stain-fields", args=[study.pk]),
                  "import_url": reverse("api-validation-stain-import", args=[study.pk]),
                  "writable": study.status == StudyStatus.OPEN}
        return render(request, "validation/stain.html", {"study": study, "config": config})


class StainFieldImageView(LoginRequiredMixin, View):
    """The plain brightfield of a field, for the stain technicians of its center (no overlay)."""

    def get(self, request, study_id, field_id):
        field = access_stain_field(user=request.user, study_id=study_id, public_id=field_id)
        audit_record_read(actor=request.user, action="validation.field_image.read", center=field.image.center_id,
                     object_type="validation.field", object_id=field.public_id, request=request)
        return _png(crops.plain_png(crops.load_display(field.image)))


class StainImageView(LoginRequiredMixin, View):
    """A fluorescence image as uploaded for a field (8-bit greyscale PNG, metadata stripped)."""

    def get(self, request, study_id, stain_image_id):
        stain_image = access_stain_image(user=request.user, study_id=study_id, id=stain_image_id)
        def record() -> None:
            audit_record_read(actor=request.user, action="validation.stain_image.read",
                              center=stain_image.field.image.center_id, object_type="validation.stainimage",
                              object_id=str(stain_image.pk), request=request)

        try:  # streamed in chunks from the storage; the read recorded once the file is open
            response = media_file_response(stain_image.file.name, content_type="image/png", record=record)
        except FileNotFoundError:
            raise Http404("The stain image file is missing.")
        response["Cache-Control"] = "private, no-store"
        return response


def _report_context(study) -> dict:
    """What report.html renders, for the HTML page and the PDF alike."""
    results = study.results or {}
    return {
        "study": study, "results": results, "metric_rows": report.all_metric_rows(results),
        "confusion": report.confusion_tables(results), "agreement": results.get("agreement", {}),
        "diff": results.get("ppv_difference"), **selectors.report_context(study),
        **report.report_sections(study, results, services.study_cell_rows),
    }


class ReportView(LoginRequiredMixin, View):
    """Print-ready report of an unblinded study (times in the study center's zone, named)."""

    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_REPORT)
        audit_record(actor=request.user, action="validation.report.read", center=study.center, obj=study, request=request)
        return render(request, "validation/report.html", _report_context(study))


class ReportPdfView(LoginRequiredMixin, View):
    """The same report as a PDF file (WeasyPrint; CJK fonts), in the request's language; audited."""

    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_REPORT)
        audit_record(actor=request.user, action="validation.report.pdf", center=study.center, obj=study,
                     request=request)
        html = render_to_string("validation/report.html", _report_context(study), request=request)
        footer = _("Blinded validation report: %(name)s") % {"name": study.name}
        response = HttpResponse(pdf.report_pdf(html=html, footer=footer), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="validation-{study.pk}.pdf"'
        return response


class ReportCsvView(LoginRequiredMixin, View):
    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_REPORT)
        audit_record(actor=request.user, action="validation.report.export", center=study.center, obj=study,
                     request=request)
        body = report.results_csv(study, study.results or {}, services.study_cell_rows(study))
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="validation-{study.pk}.csv"'
        return response


class ReportZipView(LoginRequiredMixin, View):
    """The report's tidy CSVs (one table per file) in a zip; audited like every export."""

    def get(self, request, study_id):
        study = access_study(user=request.user, id=study_id, action=Action.VALIDATION_REPORT)
        results = study.results or {}
        cell_rows = services.study_cell_rows(study)
        sections = report.report_sections(study, results, lambda _study: cell_rows)
        files = report.tidy_csv_files(study, results, cell_rows, selectors.report_score_rows(study), sections)
        audit_record(actor=request.user, action="validation.report.export", center=study.center, obj=study,
                     after={"format": "zip", "files": sorted(files)}, request=request)
        response = HttpResponse(report.tidy_csv_zip(files, study=study), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="validation-{study.pk}-tables.zip"'
        return response


class CellCropView(LoginRequiredMixin, View):
    """A cell's crop, by its opaque id only; the same size and format for every cell."""

    def get(self, request, study_id, cell_id):
        cell = access_cell(user=request.user, study_id=study_id, public_id=cell_id)
        audit_record_read(actor=request.user, action="validation.crop.read", center=cell.center_id,
                     object_type="validation.cell", object_id=cell.public_id, request=request)
        return _png(cell.crop_png)


class FieldImageView(LoginRequiredMixin, View):
    """A study image without any overlay, by its opaque field id (pickers and whole-field validators)."""

    def get(self, request, study_id, field_id):
        field = access_field(user=request.user, study_id=study_id, public_id=field_id)
        audit_record_read(actor=request.user, action="validation.field_image.read", center=field.image.center_id,
                     object_type="validation.field", object_id=field.public_id, request=request)
        return _png(crops.plain_png(crops.load_display(field.image)))
