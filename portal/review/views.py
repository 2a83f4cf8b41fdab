"""Review pages: session list, session page, image viewer, pick lists, and the authenticated image, thumbnail
and crop files they show. Every read of image data, crops, detections and exports is audited."""
from __future__ import annotations

import io
import json
import zipfile
from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST
from PIL import Image as PILImage

from portal.audit.services import audit_record, audit_record_read
from portal.centers.access import access_centers, user_may
from portal.centers.policy import Action
from portal.centers.selectors import centers_for_user
from portal.core.errors import DomainError
from portal.core.media import media_file_response, media_open_local, media_open_stream
from portal.imaging.selectors import display_name_for, display_names_for, user_is_blinded
from portal.lib.zipstream import zip_copy, zip_spool
from portal.review import exports, selectors, services
from portal.review.access import access_detection, access_image, access_pick_list, access_session
from portal.review.classes import CLASS_COLORS, CLASS_LABELS, CLASS_NAMES, TARGET_CLASS
from portal.review.lib.geometry import TYPICAL_HRS_DIAMETER_UM
from portal.review.lib.stage import STAGE_CONVENTION

ZERO_ID = "00000000-0000-0000-0000-000000000000"  # the viewer puts a detection id in its place
# portal.review.lib.finalcall.FINAL_CALL_RULE (English, as the exports state it) for people, translated;
# the same words
# (portal/review/tests/test_final_call_text.py keeps them equal).
FINAL_CALL_RULE_TEXT = gettext_lazy(
    "Final call = the center admin's adjudication where given, otherwise the unanimous decision of all "
    "reviewers who decided (same verdict and class, at least one reviewer); uncertain or disputed "
    "instances are left out."
)

THUMB_PX = 240
CROP_PX = 96
CROP_CONTEXT = 0.6  # margin around the box, as a fraction of its size


def _parse_date(raw: str):
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@login_required
@require_GET
def session_list(request):
    g = request.GET
    # validators, stain technicians and auditors do not use the review pages (403)
    centers = list(centers_for_user(request.user).filter(
        id__in=access_centers(user=request.user, action=Action.REVIEW_VIEW)))
    center_id = g.get("center", "")
    if center_id and center_id not in {str(c.pk) for c in centers}:
        center_id = ""
    filters = {
        "center": center_id, "patient": g.get("patient", "")[:32], "status": g.get("status", ""),
        "date_from": g.get("date_from", ""), "date_to": g.get("date_to", ""),
    }
    if filters["status"] not in selectors.SESSION_STATUS_FILTERS:
        filters["status"] = ""
    sessions = selectors.session_list(
        user=request.user, center_id=center_id or None, patient_code=filters["patient"], status=filters["status"],
        date_from=_parse_date(filters["date_from"]), date_to=_parse_date(filters["date_to"]),
    )[:500]
    return render(request, "review/session_list.html", {
        "sessions": sessions, "centers": centers, "filters": filters,
        "statuses": selectors.SESSION_STATUS_FILTERS.items(),
    })


@login_required
@require_GET
def session_detail(request, pk):
    session = access_session(user=request.user, id=pk)
    threshold = selectors.review_threshold_get(request.session)
    summaries = selectors.session_image_summaries(session, threshold=threshold, user=request.user)
    names = display_names_for(request.user, [s["image"] for s in summaries])
    for s in summaries:
        s["display_name"] = names[s["image"].pk]
        s["class_rows"] = [{"name": n, "label": CLASS_LABELS[n], "color": CLASS_COLORS[n],
                            "count": s["counts"].get(n, 0), "accepted": s["accepted"].get(n, 0)}
                           for n in CLASS_NAMES]
    audit_record(actor=request.user, action="review.session.read", center=session.center_id, obj=session,
                 request=request)
    can_export = user_may(request.user, session.center_id, Action.REVIEW_EXPORT)
    return render(request, "review/session_detail.html", {
        "session": session, "summaries": summaries, "job": selectors.session_latest_job(session),
        "show_model": not user_is_blinded(request.user),  # a validator who also reviews learns no model name
        "analysis": selectors.session_analysis_counts(session), "threshold": threshold,
        "reviewed_images": sum(1 for s in summaries if s["reviewed"]),
        "images_over_8_bit": sum(1 for s in summaries if s["image"].bit_depth > exports.EXPORTED_BIT_DEPTH),
        "can_export": can_export, "rule": FINAL_CALL_RULE_TEXT,
        "pick_lists": selectors.pick_lists_of(session) if can_export else [],
        "classes": [{"name": n, "label": CLASS_LABELS[n], "color": CLASS_COLORS[n]} for n in CLASS_NAMES],
    })


@login_required
@require_GET
@ensure_csrf_cookie
def viewer(request, image_id):
    image = access_image(user=request.user, id=image_id)
    config = {
        "imageId": str(image.pk),
        "apiImage": reverse("api-review-image", kwargs={"image_id": image.pk}),
        "apiDecision": reverse("api-review-decision", kwargs={"detection_id": "00000000-0000-0000-0000-000000000000"}),
        "apiAdjudication": reverse("api-review-adjudication",
                                   kwargs={"detection_id": "00000000-0000-0000-0000-000000000000"}),
        "apiInstanceCreate": reverse("api-review-instance-create", kwargs={"image_id": image.pk}),
        "apiInstance": reverse("api-review-instance", kwargs={"detection_id": "00000000-0000-0000-0000-000000000000"}),
        "apiThreshold": reverse("api-review-threshold"),
        "apiCorrection": reverse("api-review-correction", kwargs={"detection_id": ZERO_ID}),
        "apiSplit": reverse("api-review-split", kwargs={"detection_id": ZERO_ID}),
        "apiMerge": reverse("api-review-merge", kwargs={"detection_id": ZERO_ID}),
        "apiImageDone": reverse("api-review-image-done", kwargs={"image_id": image.pk}),
        "displayUrl": reverse("review:image-display", kwargs={"image_id": image.pk}),
        "previewUrl": (reverse("review:image-preview", kwargs={"image_id": image.pk})
                       if max(image.width, image.height) > services.PREVIEW_PX else None),
        "viewerUrl": reverse("review:viewer", kwargs={"image_id": "00000000-0000-0000-0000-000000000000"}),
        "typicalDiameterUm": TYPICAL_HRS_DIAMETER_UM,
        "targetClass": TARGET_CLASS,
        "classLabels": {name: str(CLASS_LABELS[name]) for name in CLASS_NAMES},  # in the request's language
    }
    return render(request, "review/viewer.html", {
        "image": image, "session": image.session, "config": config,
        "image_display_name": display_name_for(request.user, image),
        "classes": [{"id": k + 1, "name": n, "label": CLASS_LABELS[n], "color": CLASS_COLORS[n]}
                    for k, n in enumerate(CLASS_NAMES)],
        "rule": FINAL_CALL_RULE_TEXT,
        "can_decide": user_may(request.user, image.center_id, Action.REVIEW_DECIDE),
        "can_adjudicate": user_may(request.user, image.center_id, Action.REVIEW_ADJUDICATE),
    })


# --- image files (authenticated, audited) ------------------------------------------------------------
IMAGE_CACHE_CONTROL = "private, max-age=3600"  # this browser's cache only, for an hour


def _display_file_name(image) -> str:
    if not image.display_file:
        raise Http404("This image has no display version yet.")
    return image.display_file.name


def _display_file(image):
    """The display PNG opened for decoding (random access)."""
    try:
        return media_open_local(_display_file_name(image))
    except FileNotFoundError:
        raise Http404("The display file is missing.")


@login_required
@require_GET
def image_display(request, image_id):
    """The 8-bit display PNG of an image, streamed from the storage; the read is recorded once the file is
    open (a missing file is a 404 and no read)."""
    image = access_image(user=request.user, id=image_id)

    def record() -> None:
        audit_record_read(actor=request.user, action="image.read", center=image.center_id, obj=image,
                          after={"variant": "display"}, request=request)

    try:
        response = media_file_response(_display_file_name(image), content_type="image/png", record=record)
    except FileNotFoundError:
        raise Http404("The display file is missing.")
    response["Cache-Control"] = IMAGE_CACHE_CONTROL
    return response


def _audited_image(request, data: bytes, *, content_type: str, obj, center_id=None, action: str = "image.read",
                   after: dict | None = None) -> HttpResponse:
    """Record the read in the audit chain, then answer ``data`` (a rendered preview, thumbnail or crop)."""
    center_id = center_id if center_id is not None else obj.center_id
    audit_record_read(actor=request.user, action=action, center=center_id, obj=obj, after=after, request=request)
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = IMAGE_CACHE_CONTROL
    return response


def _png_bytes(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@login_required
@require_GET
def image_preview(request, image_id):
    """A reduced version of the display image that the viewer paints first while the full PNG loads."""
    image = access_image(user=request.user, id=image_id)
    try:
        data = services.image_preview_ensure(image=image)
    except DomainError as exc:
        raise Http404(exc.message)
    return _audited_image(request, data, content_type="image/jpeg", obj=image, after={"variant": "preview"})


@login_required
@require_GET
def image_thumb(request, image_id):
    image = access_image(user=request.user, id=image_id)
    key = f"review-thumb:{image.pk}"
    data = cache.get(key)
    if data is None:
        with _display_file(image) as handle, PILImage.open(handle) as im:
            im.draft("RGB", (THUMB_PX, THUMB_PX))
            im = im.convert("RGB")
            im.thumbnail((THUMB_PX, THUMB_PX))
            data = _png_bytes(im)
        cache.set(key, data, 3600)
    return _audited_image(request, data, content_type="image/png", obj=image, after={"variant": "thumbnail"})


@login_required
@require_GET
def detection_crop(request, detection_id):
    """A small crop of the display image around one detection (for pick lists)."""
    det = access_detection(user=request.user, id=detection_id)
    image = det.result_set.image
    key = f"review-crop:{det.pk}:{det.x1}:{det.y1}:{det.x2}:{det.y2}"
    data = cache.get(key)
    if data is None:
        w, h = det.x2 - det.x1, det.y2 - det.y1
        side = max(w, h) * (1 + 2 * CROP_CONTEXT)
        cx, cy = (det.x1 + det.x2) / 2, (det.y1 + det.y2) / 2
        box = (int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0)),
               int(min(cx + side / 2, image.width)), int(min(cy + side / 2, image.height)))
        with _display_file(image) as handle, PILImage.open(handle) as im:
            crop = im.convert("RGB").crop(box)
            crop = crop.resize((CROP_PX, max(1, round(CROP_PX * crop.height / max(crop.width, 1)))))
            data = _png_bytes(crop)
        cache.set(key, data, 3600)
    return _audited_image(request, data, content_type="image/png", obj=det, center_id=image.center_id,
                          action="review.crop.read")


# --- exports ---------------------------------------------------------------------------------------------
@login_required
@require_GET
def coco_zip(request):
    """The COCO export plus its display images: ``annotations.json`` and ``images/<uuid>.png``."""
    try:
        sessions = selectors.sessions_from_query(user=request.user, raw_ids=request.GET.getlist("session"))
        options = selectors.coco_options_from_query(images=request.GET.get("images", "reviewed"),
                                                    login_session=request.session)
    except DomainError as exc:
        return HttpResponseBadRequest(exc.message)
    data = exports.coco_export(sessions=sessions, **options)
    images = {str(i.pk): i for s in sessions for i in s.images.all()}
    spool = zip_spool()  # streamed and closed by the response; images copied in chunks, never whole in memory
    try:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("annotations.json", json.dumps(data))
            for entry in data["images"]:
                image = images[entry["portal_image_id"]]
                if image.display_file:
                    with media_open_stream(image.display_file.name) as handle:
                        zip_copy(zf, f"images/{entry['file_name']}", handle, size=getattr(handle, "size", None))
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    for s in sessions:
        audit_record(actor=request.user, action="review.export.coco", center=s.center_id, obj=s,
                     after={"annotations": len(data["annotations"]), "with_images": True}, request=request)
    response = FileResponse(spool, content_type="application/zip", as_attachment=True, filename="reviewed-coco.zip")
    response["X-Selection-Rule"] = "adjudication-else-unanimous"
    return response


@login_required
@require_POST
def pick_list_create(request, session_id):
    session = access_session(user=request.user, id=session_id, action=Action.REVIEW_EXPORT)
    try:
        pick_list = services.pick_list_create(user=request.user, session=session, request=request)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("review:session-detail", pk=session.pk)
    return redirect("review:picklist", pick_list_id=pick_list.pk)


@login_required
@require_GET
def pick_list_page(request, pick_list_id):
    pick_list = access_pick_list(user=request.user, id=pick_list_id)
    rows = exports.pick_list_rows(pick_list)
    audit_record(actor=request.user, action="review.picklist.read", center=pick_list.center_id, obj=pick_list,
                 after={"items": len(rows)}, request=request)
    image_ids = []
    for r in rows:
        if r["image"].pk not in image_ids:
            image_ids.append(r["image"].pk)
    names = display_names_for(request.user, [r["image"] for r in rows])
    for r in rows:
        r["display_name"] = names[r["image"].pk]
    ordered, plan = exports.travel_ordered(rows)
    return render(request, "review/picklist.html", {
        "pick_list": pick_list, "rows": ordered, "plan": plan,
        "travel_mm": f"{plan.length_um / 1000:.2f}" if plan else "",
        "score_order_mm": f"{plan.given_order_length_um / 1000:.2f}" if plan else "",
        "class_label": CLASS_LABELS.get(pick_list.class_name, pick_list.class_name), "session": pick_list.session,
        "image_ids": image_ids,
        "missing_stage": sorted({r["image_position"] for r in rows if r["stage"] is None}),
        "stage_convention": STAGE_CONVENTION,
        "can_set_stage": user_may(request.user, pick_list.center_id, Action.IMAGING_WRITE),
    })


def _download(content, *, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Selection-Rule"] = "adjudication-else-unanimous"
    return response


@login_required
@require_GET
def pick_list_csv(request, pick_list_id):
    pick_list = access_pick_list(user=request.user, id=pick_list_id)
    rows = exports.pick_list_rows(pick_list)
    # the clinic's file names only when asked for (?file_names=1), and the audit trail says so
    with_names = request.GET.get("file_names") == "1"
    names = display_names_for(request.user, [r["image"] for r in rows]) if with_names else None
    audit_record(actor=request.user, action="review.picklist.export", center=pick_list.center_id, obj=pick_list,
                 after={"format": "csv", "items": len(rows), "file_names": with_names}, request=request)
    return _download(exports.pick_list_csv(pick_list, rows, file_names=names), content_type="text/csv; charset=utf-8",
                     filename=f"picklist-{pick_list.pk}.csv")


@login_required
@require_GET
def pick_list_geojson(request, pick_list_id):
    pick_list = access_pick_list(user=request.user, id=pick_list_id)
    rows = exports.pick_list_rows(pick_list)
    image_ids = {str(r["image"].pk): r["image"] for r in rows}
    wanted = request.GET.get("image") or (next(iter(image_ids)) if len(image_ids) == 1 else "")
    if wanted not in image_ids:
        return HttpResponseBadRequest(_("Name one image of this pick list: ?image=<id> (QuPath reads one image per "
                                      "file)."))
    image = image_ids[wanted]
    audit_record(actor=request.user, action="review.picklist.export", center=pick_list.center_id, obj=pick_list,
                 after={"format": "geojson", "image": wanted}, request=request)
    return _download(json.dumps(exports.pick_list_geojson(pick_list, rows, image)),
                     content_type="application/geo+json", filename=f"picklist-{pick_list.pk}-{image.pk}.geojson")


@login_required
@require_GET
def pick_list_pos(request, pick_list_id):
    pick_list = access_pick_list(user=request.user, id=pick_list_id)
    rows = exports.pick_list_rows(pick_list)
    missing = sorted({str(r["image"].pk) for r in rows if r["stage"] is None})
    if missing:
        return JsonResponse({"message": "Some images have no stage position or pixel size; a position list "
                                        "would be wrong. Set them on the images first.",
                             "extra": {"images": missing}}, status=400)
    xy_stage = (request.GET.get("xy_stage") or "XYStage")[:64]
    audit_record(actor=request.user, action="review.picklist.export", center=pick_list.center_id, obj=pick_list,
                 after={"format": "micromanager-pos", "items": len(rows)}, request=request)
    ordered, _plan = exports.travel_ordered(rows)
    return _download(json.dumps(exports.pick_list_positions(pick_list, ordered, xy_stage=xy_stage), indent=2),
                     content_type="application/json", filename=f"picklist-{pick_list.pk}.pos")
