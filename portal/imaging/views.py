"""HTML pages: patients, sessions, the upload page (drag and drop, uses the API) and pixel size fixes."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from portal.centers.access import access_centers, user_may
from portal.centers.policy import Action
from portal.core.errors import DomainError
from portal.imaging import selectors, services
from portal.imaging.access import access_image, access_patient, access_session
from portal.imaging.forms import NOTES_WARNING, PatientForm, SessionForm, UmPerPxForm
from portal.imaging.lib.stagecsv import MAX_ABS_UM as STAGE_MAX_ABS_UM
from portal.imaging.lib.stagecsv import parse_stage_csv
from portal.imaging.models import ImageStatus

STAGE_CSV_MAX_BYTES = 1024 * 1024
# What the stage CSV reader's error codes say (``imaging.lib.stagecsv.STAGE_CSV_ERRORS``), translated.
STAGE_CSV_MESSAGES = {
    "header": gettext_lazy("The first row must name the columns: file_name or image_id, stage_x_um, stage_y_um "
                           "(and optionally units)."),
    "too_many_rows": gettext_lazy("At most %(max_rows)d rows per file."),
    "units": gettext_lazy("Units must be µm, not “%(units)s”."),
    "not_numbers": gettext_lazy("Stage X and stage Y must both be numbers (µm)."),
    "too_far": gettext_lazy("Stage X/Y beyond ±%(max_abs_um).0f µm: are these micrometres?"),
    "duplicate": gettext_lazy("This image already has a position on row %(first_row)d."),
    "empty": gettext_lazy("The file has no rows of positions."),
    "unknown_id": gettext_lazy("No image of this session has the id “%(image_id)s”."),
    "shared_name": gettext_lazy("%(count)d images share the file name “%(name)s” (pages of one file): use image_id."),
    "unknown_name": gettext_lazy("No image of this session has the file name “%(name)s”."),
    "no_image": gettext_lazy("Name the image: a file name or an image id."),
}
STAGE_CSV_EXAMPLE = "file_name,stage_x_um,stage_y_um,units\nfield-01.tif,10250.5,-3120,µm\nfield-02.tif,10480,-3120,µm"


def _page(request, queryset, per_page=50):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


@login_required
def patient_list(request):
    access_centers(user=request.user, action=Action.IMAGING_READ)
    code = request.GET.get("code", "")[:32]
    patients = selectors.patient_list(user=request.user, code=code)
    return render(request, "imaging/patient_list.html", {
        "page": _page(request, patients), "code": code,
        "can_write": bool(selectors.writable_center_ids(request.user)),
    })


@login_required
@require_http_methods(["GET", "POST"])
def patient_create(request):
    access_centers(user=request.user, action=Action.IMAGING_WRITE)
    form = PatientForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        patient = services.patient_create(center=form.cleaned_data["center"], user=request.user,
                                          birth_year_bucket=form.cleaned_data["birth_year_bucket"], request=request)
        messages.success(request, _('Patient %(code)s created. Note this code in your own records.') % {"code": patient.code})
        return redirect(f"{reverse('imaging:session-create')}?patient={patient.pk}")
    return render(request, "imaging/patient_form.html", {"form": form})


def _date(value):
    from django.utils.dateparse import parse_date

    try:
        return parse_date(value or "")
    except ValueError:
        return None


@login_required
def session_list(request):
    access_centers(user=request.user, action=Action.IMAGING_READ)
    filters = {
        "patient_code": request.GET.get("patient_code", "")[:32],
        "date_from": _date(request.GET.get("date_from")),
        "date_to": _date(request.GET.get("date_to")),
    }
    sessions = selectors.session_list(user=request.user, **filters)
    return render(request, "imaging/session_list.html", {
        "page": _page(request, sessions), "filters": filters,
        "can_write": bool(selectors.writable_center_ids(request.user)),
    })


@login_required
@require_http_methods(["GET", "POST"])
def session_create(request):
    access_centers(user=request.user, action=Action.IMAGING_WRITE)
    initial = {}
    if request.GET.get("patient"):
        try:
            initial["patient"] = access_patient(user=request.user, id=request.GET["patient"], action=Action.IMAGING_WRITE)
        except Exception:  # noqa: BLE001 - a bad or foreign id just leaves the choice empty
            initial = {}
    form = SessionForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        patient = data.pop("patient")
        session = services.session_create(patient=patient, user=request.user, request=request, **data)
        messages.success(request, _("Session created. Upload its images below."))
        return redirect("imaging:session-upload", pk=session.pk)
    return render(request, "imaging/session_form.html", {"form": form, "notes_warning": NOTES_WARNING})


def _review_url(session) -> str | None:
    """Link to the review app's page for this session when that app provides one."""
    for name in ("review:session-detail", "review:session"):
        try:
            return reverse(name, kwargs={"pk": session.pk})
        except NoReverseMatch:
            continue
    return None


@login_required
def session_detail(request, pk):
    session = access_session(user=request.user, id=pk)
    images = selectors.image_list(user=request.user, session_id=session.pk)
    page = _page(request, images, per_page=60)
    page.object_list = list(page.object_list)
    names = selectors.display_names_for(request.user, page.object_list)
    for image in page.object_list:
        image.display_name = names[image.pk]
    services.image_thumbnails_shown_record(user=request.user, images=page.object_list, request=request,
                                           context=f"session {session.pk}")
    return render(request, "imaging/session_detail.html", {
        "session": session, "page": page, "review_url": _review_url(session),
        "can_write": user_may(request.user, session.center_id, Action.IMAGING_WRITE),
        "statuses": ImageStatus,
        # the analysis panel lists jobs and models: not for a user blinded from this session
        "show_analysis": not selectors.session_is_blinded(user=request.user, session_id=session.pk),
    })


@login_required
def session_upload(request, pk):
    session = access_session(user=request.user, id=pk, action=Action.IMAGING_WRITE)
    from django.conf import settings

    config = {
        "uploadUrl": reverse("api-session-image-upload", kwargs={"pk": session.pk}),
        "sessionUrl": reverse("imaging:session-detail", kwargs={"pk": session.pk}),
        "maxFiles": settings.UPLOAD_MAX_FILES, "maxFileBytes": settings.UPLOAD_MAX_FILE_BYTES,
    }
    return render(request, "imaging/upload.html", {"session": session, "config": config})


@login_required
@require_POST
def image_um_per_px(request, pk):
    image = access_image(user=request.user, id=pk, action=Action.IMAGING_WRITE)
    form = UmPerPxForm(request.POST)
    if form.is_valid():
        try:
            services.image_um_per_px_set(image=image, user=request.user, request=request,
                                         um_per_px=form.cleaned_data["um_per_px"])
            messages.success(request, _("Pixel size set."))
        except DomainError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, _("Pixel size must be a number between 0.02 and 5 µm/px."))
    return redirect("imaging:session-detail", pk=image.session_id)


@login_required
@require_http_methods(["GET", "POST"])
def session_stage(request, pk):
    """Enter (one form) or import (CSV) the stage X/Y of each image of a session; all rows or none."""
    session = access_session(user=request.user, id=pk, action=Action.IMAGING_WRITE)
    images = list(selectors.image_list(user=request.user, session_id=session.pk).order_by("created_at", "page_index", "id"))
    names = selectors.display_names_for(request.user, images)
    rows = [{"image": image, "position": k + 1, "name": names[image.pk],
             "x": image.stage_x_um, "y": image.stage_y_um} for k, image in enumerate(images)]
    errors: list[dict] = []
    if request.method == "POST":
        if request.POST.get("mode") == "csv":
            positions, errors = _stage_positions_from_csv(request, images)
        else:
            positions, errors = _stage_positions_from_form(request, rows)
        if not errors:
            try:
                changed = services.image_stage_positions_set(session=session, user=request.user,
                                                             positions=positions, request=request)
            except DomainError as exc:
                errors = [{"row": "", "message": exc.message}]
            else:
                messages.success(request, _("Stage positions saved (%(n)d images changed).") % {"n": len(changed)})
                return redirect("imaging:session-stage", pk=session.pk)
    return render(request, "imaging/session_stage.html", {
        "session": session, "rows": rows, "errors": errors, "max_abs_um": STAGE_MAX_ABS_UM,
        "csv_example": STAGE_CSV_EXAMPLE,
    }, status=400 if errors else 200)


def _stage_positions_from_csv(request, images) -> tuple[dict, list[dict]]:
    upload = request.FILES.get("csv")
    if upload is None:
        return {}, [{"row": "", "message": _("Choose a CSV file to import.")}]
    if upload.size > STAGE_CSV_MAX_BYTES:
        return {}, [{"row": "", "message": _("The CSV file is larger than 1 MB.")}]
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return {}, [{"row": "", "message": _("The CSV file must be UTF-8 text.")}]
    names = selectors.display_names_for(request.user, images)  # match by a file name only where the user may see it
    parsed = parse_stage_csv(text, images=[(str(i.pk), names.get(i.pk, "")) for i in images])
    return parsed.positions, [{"row": e["row"], "message": str(STAGE_CSV_MESSAGES[e["code"]]) % e["params"]}
                              for e in parsed.errors]


def _stage_positions_from_form(request, rows) -> tuple[dict, list[dict]]:
    positions: dict = {}
    errors: list[dict] = []
    for row in rows:
        key = str(row["image"].pk)
        raw_x = request.POST.get(f"x-{key}", "").strip()
        raw_y = request.POST.get(f"y-{key}", "").strip()
        row["x"], row["y"] = raw_x, raw_y
        if not raw_x and not raw_y:
            positions[key] = None
            continue
        try:
            positions[key] = (float(raw_x), float(raw_y))
        except ValueError:
            errors.append({"row": row["position"],
                           "message": _("Image %(n)d: stage X and stage Y must both be numbers (µm).")
                           % {"n": row["position"]}})
    return positions, errors
