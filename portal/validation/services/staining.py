"""Stain entry at the bench: fluorescence images of study fields, their registration over the
brightfield, and stain results imported from CSV. Every write is audited; results themselves are saved
only through ``scoring.stain_enter`` (the one place a stain result changes).

Uploads go through the imaging pipeline's checks (``portal.imaging.lib.imagefile.inspect_upload``:
type and extension, size, decompression bombs, structure, truncated data) and its encoder; the stored
PNG is written through the storage API only.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import math
import uuid
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image as PILImage

from portal.audit.services import audit_record
from portal.centers.access import center_ids_for, user_may
from portal.centers.policy import Action
from portal.core.errors import Conflict, DomainError
from portal.core.media import media_open_local
from portal.imaging.lib.imagefile import UploadRefused, encode_page, inspect_upload, safe_display_name
from portal.validation import crops
from portal.validation.lib import registration
from portal.validation.lib.stain_csv import parse_stain_csv
from portal.validation.models import (
    Cell,
    RegistrationMethod,
    StainChannel,
    StainImage,
    StainResult,
    Study,
    StudyField,
)
from portal.validation.services._common import _writable_for_scores
from portal.validation.services.scoring import stain_enter

log = logging.getLogger(__name__)

CSV_MAX_BYTES = 1024 * 1024


def _require_stain_field(actor, field: StudyField) -> None:
    if not user_may(actor, field.image.center_id, Action.VALIDATION_STAIN):
        raise DomainError(_("No such field."), status_code=404)


def _stain_image_summary(stain_image: StainImage) -> dict:
    return {"field": stain_image.field.public_id, "channel": stain_image.channel, "width": stain_image.width,
            "height": stain_image.height, "um_per_px": stain_image.um_per_px,
            "original_sha256": stain_image.original_sha256}


def _registration_summary(stain_image: StainImage) -> dict:
    return {"method": stain_image.registration_method, "scale": stain_image.scale,
            "rotation_rad": stain_image.rotation_rad, "offset_x_px": stain_image.offset_x_px,
            "offset_y_px": stain_image.offset_y_px}


MERGED = "merged"  # a two-channel RGB file: PRM1 in green, PNA in red (the usual merge colours)
MERGED_COLOUR_INDEX = {StainChannel.PRM1: 1, StainChannel.PNA: 0}


def _fluorescence_png(display_png: bytes, colour_index: int | None = None) -> bytes:
    """The 8-bit greyscale PNG shown as a channel overlay: one colour channel of the display rendering
    (``colour_index``; by default the brightest), stretched to its 0.5th-99.9th percentiles (dim
    fluorescence becomes visible)."""
    with PILImage.open(io.BytesIO(display_png)) as pil:
        pixels = np.asarray(pil.convert("RGB") if pil.mode not in ("L", "RGB") else pil)
    if colour_index is not None:
        pixels = pixels[:, :, colour_index]
    grey = registration.stain_display(pixels)
    out = io.BytesIO()
    PILImage.fromarray(grey, mode="L").save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


def _read(upload) -> bytes:
    if hasattr(upload, "chunks"):
        with contextlib.suppress(Exception):
            upload.seek(0)
        return b"".join(upload.chunks())
    return upload.read()


def _already(channel: str) -> Conflict:
    return Conflict(_("This field already has a %(channel)s image; remove it first.") % {"channel": channel.upper()},
                    extra={"channel": channel})


def stain_image_upload(*, actor, study: Study, field: StudyField, channel: str, upload,
                       um_per_px: float | None = None, request=None) -> list[StainImage]:
    """Store the fluorescence image of one channel (``prm1``, ``pna``) of a field of an open study, or
    both channels of a two-channel RGB file (``merged``: PRM1 green, PNA red). Returns the images made.

    Refused with a 400 naming the file and the reason when the imaging checks refuse it, it has more
    than one page, or a merged file is not RGB; 409 when the field already has an image of a channel it
    would make (remove that first). Nothing is kept of a refused upload.
    """
    name = safe_display_name(getattr(upload, "name", ""))
    detail = {"field": field.public_id, "channel": channel, "file": name}
    _writable_for_scores(actor=actor, study=study, action="validation.stain_image", detail=detail, request=request)
    _require_stain_field(actor, field)
    if channel not in [*StainChannel.values, MERGED]:
        raise DomainError(_("channel must be one of %(allowed)s.")
                          % {"allowed": ", ".join([*StainChannel.values, MERGED])}, extra={"field": "channel"})
    if um_per_px is not None and not (settings.UM_PER_PX_MIN <= um_per_px <= settings.UM_PER_PX_MAX):
        raise DomainError(_("um_per_px must be between %(low)s and %(high)s µm/px.")
                          % {"low": settings.UM_PER_PX_MIN, "high": settings.UM_PER_PX_MAX},
                          extra={"field": "um_per_px"})
    channels = list(StainChannel.values) if channel == MERGED else [channel]
    for existing in StainImage.objects.filter(field=field, channel__in=channels).values_list("channel", flat=True):
        raise _already(existing)
    size = getattr(upload, "size", None)
    try:
        if size is not None and size > settings.UPLOAD_MAX_FILE_BYTES:
            raise UploadRefused(f"{size:,} bytes exceed the limit of {settings.UPLOAD_MAX_FILE_BYTES:,} bytes per file")
        data = _read(upload)
        inspected = inspect_upload(
            data, name, max_file_bytes=settings.UPLOAD_MAX_FILE_BYTES, max_pixels=settings.UPLOAD_MAX_PIXELS,
            max_pages=settings.UPLOAD_MAX_PAGES, um_min=settings.UM_PER_PX_MIN, um_max=settings.UM_PER_PX_MAX,
            min_side=settings.UPLOAD_MIN_SIDE_PX,
        )
    except UploadRefused as exc:
        raise DomainError(f"{name}: {exc.reason}", extra={"file": name, "code": "invalid"}) from None
    if len(inspected.pages) != 1:
        raise DomainError(_("%(file)s: %(pages)s pages; upload one channel per file (one page).")
                          % {"file": name, "pages": len(inspected.pages)},
                          extra={"file": name, "code": "invalid"})
    page = inspected.pages[0]
    if channel == MERGED and page.channels != 3:
        raise DomainError(_("%(file)s: a two-channel file must be an RGB image (PRM1 green, PNA red).")
                          % {"file": name}, extra={"file": name, "code": "invalid"})
    display = encode_page(page).display_bytes
    sha = hashlib.sha256(data).hexdigest()
    stain_images = []
    try:
        for each in channels:
            stain_image = StainImage(
                id=uuid.uuid4(), study=study, field=field, channel=each, width=int(page.pixels.shape[1]),
                height=int(page.pixels.shape[0]), bit_depth=page.bit_depth,
                um_per_px=um_per_px if um_per_px is not None else page.um_per_px, original_sha256=sha,
                uploaded_by=actor,
            )
            png = _fluorescence_png(display, MERGED_COLOUR_INDEX[each] if channel == MERGED else None)
            stain_image.file.save("stain.png", ContentFile(png), save=False)
            stain_images.append(stain_image)
        with transaction.atomic():
            for stain_image in stain_images:
                stain_image.full_clean(exclude=["file"], validate_constraints=False)
                stain_image.save(force_insert=True)
                audit_record(actor=actor, action="validation.stain_image.create", center=field.image.center_id,
                             obj=study, after={**_stain_image_summary(stain_image), "from": channel},
                             request=request)
    except IntegrityError:
        _remove_files(stain_images)
        raise _already(channels[0]) from None
    except BaseException:
        _remove_files(stain_images)
        raise
    return stain_images


def _remove_files(stain_images: list[StainImage]) -> None:
    for stain_image in stain_images:
        with contextlib.suppress(Exception):
            stain_image.file.delete(save=False)


def stain_image_delete(*, actor, stain_image: StainImage, request=None) -> None:
    """Remove a stain image of an open study (its file once the removal is committed)."""
    study = stain_image.study
    _writable_for_scores(actor=actor, study=study, action="validation.stain_image",
                         detail={"stain_image": str(stain_image.pk)}, request=request)
    _require_stain_field(actor, stain_image.field)
    with transaction.atomic():
        audit_record(actor=actor, action="validation.stain_image.delete", center=stain_image.field.image.center_id,
                     obj=study, before=_stain_image_summary(stain_image), request=request)
        stain_image.delete()  # the file goes once committed (stain_image_file_on_delete)


def stain_image_file_on_delete(sender, instance: StainImage, **kwargs) -> None:
    """``post_delete`` receiver: a deleted stain image row (removed by ``stain_image_delete`` or by the
    cascade of its study or field) loses its file through the storage API once the deletion is committed;
    a rolled-back deletion keeps it."""
    name = instance.file.name
    if not name:
        return
    storage = instance.file.storage

    def remove() -> None:
        try:
            storage.delete(name)
        except Exception:  # storage briefly unavailable: an orphan file is logged, the deletion stands
            log.warning("could not delete the stain image file %s", name, exc_info=True)

    transaction.on_commit(remove)


def _save_registration(*, actor, stain_image: StainImage, similarity: registration.Similarity, method: str,
                       points: dict, quality: float | None, extra: dict, request) -> StainImage:
    before = _registration_summary(stain_image)
    with transaction.atomic():
        locked = StainImage.objects.select_for_update().get(pk=stain_image.pk)
        locked.registration_method = method
        locked.scale, locked.rotation_rad = similarity.scale, similarity.rotation_rad
        locked.offset_x_px, locked.offset_y_px = similarity.offset_x_px, similarity.offset_y_px
        locked.registration_points = points
        locked.registration_quality = quality
        locked.registered_by, locked.registered_at = actor, timezone.now()
        locked.full_clean(exclude=["file"])
        locked.save()
        audit_record(actor=actor, action="validation.stain_image.register", center=locked.field.image.center_id,
                     obj=locked.study, before={"stain_image": str(locked.pk), **before},
                     after={"stain_image": str(locked.pk), **_registration_summary(locked), **extra},
                     request=request)
    return locked


def _points(raw, *, width: int, height: int, what: str) -> list[tuple[float, float]]:
    try:
        points = [(float(x), float(y)) for x, y in raw]
    except (TypeError, ValueError):
        raise DomainError(_("Give two (x, y) points on the %(what)s.") % {"what": what}, extra={"field": what}) from None
    if len(points) != 2:
        raise DomainError(_("Give two (x, y) points on the %(what)s.") % {"what": what}, extra={"field": what})
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= width and 0 <= y <= height):
            raise DomainError(_("A point lies outside the %(what)s (%(width)s x %(height)s px).")
                              % {"what": what, "width": width, "height": height}, extra={"field": what})
    return points


def stain_image_register_manual(*, actor, stain_image: StainImage, stain_points, field_points,
                                request=None) -> StainImage:
    """Register by two point pairs clicked on the stain image and on the field (see
    ``registration.similarity_from_two_points``)."""
    study = stain_image.study
    _writable_for_scores(actor=actor, study=study, action="validation.stain_image",
                         detail={"stain_image": str(stain_image.pk)}, request=request)
    _require_stain_field(actor, stain_image.field)
    image = stain_image.field.image
    stain = _points(stain_points, width=stain_image.width, height=stain_image.height, what=_("stain image"))
    field = _points(field_points, width=image.width, height=image.height, what=_("field"))
    try:
        similarity = registration.similarity_from_two_points(stain, field)
    except registration.RegistrationError as exc:
        raise DomainError(str(exc)) from None
    return _save_registration(actor=actor, stain_image=stain_image, similarity=similarity,
                              method=RegistrationMethod.MANUAL,
                              points={"stain": [list(p) for p in stain], "field": [list(p) for p in field]},
                              quality=None, extra={}, request=request)


def _stain_pixels(stain_image: StainImage) -> np.ndarray:
    with media_open_local(stain_image.file.name) as handle, PILImage.open(handle) as pil:
        return np.asarray(pil.convert("L"))


def stain_image_register_auto(*, actor, stain_image: StainImage, request=None) -> StainImage:
    """Register by phase correlation (translation), the scale from both pixel sizes (or the widths)."""
    study = stain_image.study
    _writable_for_scores(actor=actor, study=study, action="validation.stain_image",
                         detail={"stain_image": str(stain_image.pk)}, request=request)
    _require_stain_field(actor, stain_image.field)
    image = stain_image.field.image
    scale, scale_from = registration.scale_from_pixel_sizes(
        stain_um_per_px=stain_image.um_per_px, field_um_per_px=image.um_per_px,
        stain_width=stain_image.width, field_width=image.width)
    field_pixels = np.asarray(crops.load_display(image).convert("L"))
    try:
        similarity, quality = registration.align_by_phase_correlation(field_pixels, _stain_pixels(stain_image),
                                                                      scale=scale)
    except registration.RegistrationError as exc:
        raise DomainError(str(exc)) from None
    return _save_registration(actor=actor, stain_image=stain_image, similarity=similarity,
                              method=RegistrationMethod.AUTO, points={}, quality=quality,
                              extra={"scale_from": scale_from, "quality": round(quality, 2)}, request=request)


# --- CSV import ---------------------------------------------------------------------------------------

@dataclass
class StainImportPreview:
    """What an import would change (``rows``) or did change (``saved``)."""

    rows: list[dict]
    saved: bool


def _csv_text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    if len(data) > CSV_MAX_BYTES:
        raise DomainError(_("The CSV file is larger than %(kib)s KiB.") % {"kib": CSV_MAX_BYTES // 1024},
                          extra={"code": "too_large"})
    for encoding in ("utf-8-sig", "cp1252"):
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode(encoding)
    raise DomainError(_("The CSV file is not UTF-8 text."), extra={"code": "encoding"})


def stain_results_import(*, actor, study: Study, data: bytes | str, confirm: bool,
                         request=None) -> StainImportPreview:
    """Check a CSV of stain results (cell, prm1, pna) against the study; save them all only when
    ``confirm`` and no row has an error.

    Any error (unknown cell id, bad value, duplicate, a cell of another study, no header) refuses the whole
    file with a 400 whose ``extra.errors`` lists each row's problem; nothing is saved. A confirmed import
    saves every row through ``stain_enter`` in one transaction and is audited as one import event too.
    """
    text = _csv_text(data)
    if len(text.encode("utf-8")) > CSV_MAX_BYTES:
        raise DomainError(_("The CSV file is larger than %(kib)s KiB.") % {"kib": CSV_MAX_BYTES // 1024},
                          extra={"code": "too_large"})
    _writable_for_scores(actor=actor, study=study, action="validation.stain_import",
                         detail={"lines": text.count("\n")}, request=request)
    parsed = parse_stain_csv(text)
    errors = list(parsed.errors)
    own_centers = set(center_ids_for(actor, Action.VALIDATION_STAIN))
    ids = [row.cell for row in parsed.rows]
    cells = {c.public_id: c for c in Cell.objects.filter(study=study, public_id__in=ids, center_id__in=own_centers)
             .select_related("stain_result")}
    elsewhere = set(Cell.objects.filter(public_id__in=ids, center_id__in=own_centers)
                    .exclude(study=study).values_list("public_id", flat=True))
    rows = []
    for row in parsed.rows:
        cell = cells.get(row.cell)
        if cell is None:
            if row.cell in elsewhere:
                errors.append({"line": row.line, "cell": row.cell, "code": "other_study",
                               "message": _("Cell %(cell)s belongs to another study.") % {"cell": row.cell}})
            else:
                errors.append({"line": row.line, "cell": row.cell, "code": "unknown_cell",
                               "message": _("No cell %(cell)s of your center in this study.") % {"cell": row.cell}})
            continue
        result: StainResult | None = getattr(cell, "stain_result", None)
        rows.append({"line": row.line, "cell": row.cell, "prm1": row.prm1, "pna": row.pna,
                     "prm1_before": result.prm1 if result else "", "pna_before": result.pna if result else ""})
    if not rows and not errors:
        errors.append({"line": 1, "cell": "", "code": "empty", "message": _("The file has no rows.")})
    if errors:
        errors.sort(key=lambda e: e["line"])
        raise DomainError(_("%(n)s row(s) have errors; nothing was saved.") % {"n": len(errors)},
                          extra={"errors": errors, "rows": len(rows) + len(errors)})
    if not confirm:
        return StainImportPreview(rows=rows, saved=False)
    with transaction.atomic():
        for row in rows:
            stain_enter(actor=actor, study=study, public_id=row["cell"], prm1=row["prm1"], pna=row["pna"],
                        request=request)
        audit_record(actor=actor, action="validation.stain.import", center=study.center, obj=study,
                     after={"rows": len(rows), "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()},
                     request=request)
    return StainImportPreview(rows=rows, saved=True)
