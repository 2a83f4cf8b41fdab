"""Writes for patients, sessions and images (uploads), each audited.

Uploads are **per file**: every file of a request is validated, stored and committed on its own (a
multi-page TIFF is one unit: all its pages or none). A refused file does not affect the others; the
caller gets the created images and one error per refused file, naming the file and the reason.
For each file, all its stored files (original, display, thumbnail) are written completely first, through
the storage API (local disk or S3); only then are the rows inserted, in one transaction; if that fails the
files are removed again. No row ever points at a half-written file.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import secrets
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from portal.audit.services import audit_record, audit_record_read
from portal.centers.access import user_may
from portal.centers.models import Center
from portal.centers.policy import Action
from portal.core.errors import Conflict, DomainError
from portal.core.media import media_delete, media_save
from portal.imaging.lib.imagefile import (
    UploadRefused,
    encode_page,
    inspect_upload,
    original_file_name,
    safe_display_name,
)
from portal.imaging.lib.stagecsv import MAX_ABS_UM as STAGE_MAX_ABS_UM
from portal.imaging.models import (
    ORIGINAL_NAME_MAX_LENGTH,
    BirthYearBucket,
    Image,
    ImageSession,
    ImageStatus,
    Patient,
    UmPerPxSource,
    display_upload_path,
    image_upload_path,
    thumbnail_upload_path,
)
from portal.imaging.signals import images_stored

logger = logging.getLogger(__name__)

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L, U: read aloud and typed safely
CODE_LENGTH = 5


def _require_writer(user, center_id) -> None:
    if not user_may(user, center_id, Action.IMAGING_WRITE):
        raise PermissionDenied(_("Only uploaders and center administrators may do this."))


# --- patients -------------------------------------------------------------------------------------

def patient_code_generate(*, center: Center) -> str:
    """A random pseudonym such as ``C03-P-7K2QX`` (not derived from anything about the person)."""
    return f"{center.code}-P-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _patient_summary(patient: Patient) -> dict:
    return {"code": patient.code, "birth_year_bucket": patient.birth_year_bucket}


def patient_create(*, center: Center, user, birth_year_bucket: str = "", request=None) -> Patient:
    """Create a pseudonymized patient with a fresh random code (retried on the rare collision)."""
    _require_writer(user, center.pk)
    if birth_year_bucket not in BirthYearBucket.values:
        raise DomainError(_("Unknown birth year bucket."), extra={"allowed": BirthYearBucket.values})
    for _attempt in range(20):
        patient = Patient(center=center, code=patient_code_generate(center=center),
                          birth_year_bucket=birth_year_bucket, created_by=user)
        patient.full_clean(exclude=["code"])
        try:
            with transaction.atomic():
                patient.save()
                audit_record(actor=user, action="patient.create", center=center, obj=patient,
                             after=_patient_summary(patient), request=request)
            return patient
        except IntegrityError:
            continue
    raise DomainError(_("Could not generate a unique patient code; try again."), status_code=409)


# --- sessions -------------------------------------------------------------------------------------

SESSION_FIELDS = ("acquisition_date", "microscope", "objective", "modality", "um_per_px", "stage_flip_x",
                  "stage_flip_y", "stage_rotation", "notes")


def _session_summary(session: ImageSession) -> dict:
    data = {name: getattr(session, name) for name in SESSION_FIELDS if name != "notes"}
    data["patient"] = session.patient.code
    data["notes_length"] = len(session.notes or "")  # the text itself is not copied into the trail
    return data


def session_create(*, patient: Patient, user, request=None, **fields) -> ImageSession:
    """Create an image session of ``patient`` (its center's)."""
    _require_writer(user, patient.center_id)
    unknown = set(fields) - set(SESSION_FIELDS)
    if unknown:
        raise DomainError(_('Unknown session field(s): %(join)s.') % {"join": ', '.join(sorted(unknown))})
    session = ImageSession(center_id=patient.center_id, patient=patient, created_by=user, **fields)
    session.full_clean()
    with transaction.atomic():
        session.save()
        audit_record(actor=user, action="session.create", center=patient.center_id, obj=session,
                     after=_session_summary(session), request=request)
    return session


# What a frozen session keeps: everything but the technical notes.
FROZEN_SESSION_FIELDS = tuple(name for name in SESSION_FIELDS if name != "notes")


def _frozen_message(session: ImageSession, what: str) -> str:
    return (f"{what} can no longer change: the session was frozen on {session.frozen_at:%Y-%m-%d %H:%M} UTC "
            f"({session.frozen_reason}).")


def session_freeze(*, session_ids, reason: str, actor=None, request=None) -> int:
    """Freeze sessions that something now depends on (e.g. an opened validation study): their fields
    (``FROZEN_SESSION_FIELDS``) and their images' pixel sizes are refused changes with a 409 from then
    on. A session frozen before keeps its first date and reason. Returns how many were newly frozen."""
    reason = reason[:200]
    with transaction.atomic():
        sessions = list(ImageSession.objects.select_for_update().filter(pk__in=list(session_ids),
                                                                         frozen_at__isnull=True))
        now = timezone.now()
        for session in sessions:
            session.frozen_at, session.frozen_reason = now, reason
            session.save(update_fields=["frozen_at", "frozen_reason"])
            audit_record(actor=actor, action="session.freeze", center=session.center_id, obj=session,
                         after={"reason": reason}, request=request)
    return len(sessions)


def session_update(*, session: ImageSession, user, request=None, **fields) -> ImageSession:
    """Change a session; a new ``um_per_px`` also applies to its images that had none or the session's.

    A frozen session (``session_freeze``) refuses changes of ``FROZEN_SESSION_FIELDS`` with a 409."""
    _require_writer(user, session.center_id)
    unknown = set(fields) - set(SESSION_FIELDS) - {"acquisition_date"}
    if unknown:
        raise DomainError(_('Unknown session field(s): %(join)s.') % {"join": ', '.join(sorted(unknown))})
    if session.frozen_at is not None:
        changed = sorted(n for n, v in fields.items() if n in FROZEN_SESSION_FIELDS and getattr(session, n) != v)
        if changed:
            raise Conflict(_frozen_message(session, "The session's " + ", ".join(changed)),
                           extra={"fields": changed, "frozen_reason": session.frozen_reason})
    before = _session_summary(session)
    for name, value in fields.items():
        setattr(session, name, value)
    session.full_clean()
    with transaction.atomic():
        session.save()
        if "um_per_px" in fields:
            images = Image.objects.filter(
                session=session, um_per_px_source__in=[UmPerPxSource.SESSION, UmPerPxSource.NONE]
            )
            for image in images:  # each change audited (few images per session)
                old = image.um_per_px
                image.um_per_px = session.um_per_px
                image.um_per_px_source = UmPerPxSource.SESSION if session.um_per_px else UmPerPxSource.NONE
                image.save(update_fields=["um_per_px", "um_per_px_source"])
                audit_record(actor=user, action="image.update", center=session.center_id, obj=image,
                             before={"um_per_px": old}, after={"um_per_px": image.um_per_px,
                                                                "source": image.um_per_px_source},
                             request=request)
        audit_record(actor=user, action="session.update", center=session.center_id, obj=session,
                     before=before, after=_session_summary(session), request=request)
    return session


# --- images ---------------------------------------------------------------------------------------

def image_um_per_px_set(*, image: Image, user, um_per_px: float, request=None) -> Image:
    """Set an image's pixel size by hand (source ``manual``); refused (409) once its session is frozen."""
    _require_writer(user, image.center_id)
    if image.session.frozen_at is not None:
        raise Conflict(_frozen_message(image.session, "The image's pixel size"),
                       extra={"frozen_reason": image.session.frozen_reason})
    try:
        value = float(um_per_px)
    except (TypeError, ValueError):
        raise DomainError(_("um_per_px must be a number.")) from None
    if not (settings.UM_PER_PX_MIN <= value <= settings.UM_PER_PX_MAX):
        raise DomainError(
            _('um_per_px must be between %(UM_PER_PX_MIN)s and %(UM_PER_PX_MAX)s µm/px.') % {"UM_PER_PX_MIN": settings.UM_PER_PX_MIN, "UM_PER_PX_MAX": settings.UM_PER_PX_MAX},
            extra={"um_per_px": value},
        )
    before = {"um_per_px": image.um_per_px, "source": image.um_per_px_source}
    with transaction.atomic():
        image.um_per_px = value
        image.um_per_px_source = UmPerPxSource.MANUAL
        image.save(update_fields=["um_per_px", "um_per_px_source"])
        audit_record(actor=user, action="image.update", center=image.center_id, obj=image, before=before,
                     after={"um_per_px": value, "source": UmPerPxSource.MANUAL}, request=request)
    return image


def image_stage_positions_set(
    *, session: ImageSession, user, positions: dict, request=None,
) -> list[Image]:
    """Set the stage X/Y (µm, image centre) of images of ``session``: all of them or none.

    ``positions`` maps image ids to ``(x_um, y_um)`` or to None (clear the position). Every id must be
    an image of the session and every value a finite number within ±``stagecsv.MAX_ABS_UM``; otherwise a
    DomainError names the bad entries and nothing is saved. Each change is audited.
    """
    _require_writer(user, session.center_id)
    images = {str(i.pk): i for i in Image.objects.filter(session=session)}
    bad = sorted(str(k) for k in positions if str(k) not in images)
    if bad:
        raise DomainError(gettext("Some images are not part of this session."), extra={"images": bad},
                          status_code=404)
    cleaned: dict[str, tuple[float, float] | None] = {}
    for key, value in positions.items():
        if value is None:
            cleaned[str(key)] = None
            continue
        try:
            x, y = float(value[0]), float(value[1])
        except (TypeError, ValueError, IndexError):
            raise DomainError(gettext("Stage X and Y must be numbers (µm)."), extra={"image": str(key)}) from None
        if not (math.isfinite(x) and math.isfinite(y)) or max(abs(x), abs(y)) > STAGE_MAX_ABS_UM:
            raise DomainError(gettext("Stage X and Y must be numbers within ±%(max)s µm.")
                              % {"max": f"{STAGE_MAX_ABS_UM:.0f}"}, extra={"image": str(key)})
        cleaned[str(key)] = (x, y)
    changed: list[Image] = []
    with transaction.atomic():
        for key, value in cleaned.items():
            image = images[key]
            before = {"stage_x_um": image.stage_x_um, "stage_y_um": image.stage_y_um}
            image.stage_x_um, image.stage_y_um = value if value is not None else (None, None)
            after = {"stage_x_um": image.stage_x_um, "stage_y_um": image.stage_y_um}
            if before == after:
                continue
            image.save(update_fields=["stage_x_um", "stage_y_um"])
            audit_record(actor=user, action="image.update", center=session.center_id, obj=image, before=before,
                         after=after, request=request)
            changed.append(image)
    return changed


@dataclass
class UploadResult:
    created: list[Image] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {"file": name, "message": reason, "code": ...}

    @property
    def files_accepted(self) -> int:
        return len({i.original_sha256 for i in self.created})


def _read_upload(upload) -> bytes:
    if hasattr(upload, "chunks"):
        with contextlib.suppress(Exception):
            upload.seek(0)
        return b"".join(upload.chunks())
    return upload.read()


def _image_summary(image: Image) -> dict:
    return {
        "session": str(image.session_id), "page_index": image.page_index, "width": image.width,
        "height": image.height, "bit_depth": image.bit_depth, "original_format": image.original_format,
        "original_sha256": image.original_sha256, "stored_sha256": image.stored_sha256,
        "um_per_px": image.um_per_px, "um_per_px_source": image.um_per_px_source,
        "display_window": [image.display_window_low, image.display_window_high],
    }


def _store_one_file(*, session: ImageSession, user, data: bytes, name: str, request,
                    original_name: str = "") -> list[Image]:
    """Validate, store and commit one uploaded file; raise UploadRefused or DomainError to refuse it.

    The content is checked first, so a file that is refused for what it is never gets "already uploaded".
    """
    inspected = inspect_upload(
        data, name, max_file_bytes=settings.UPLOAD_MAX_FILE_BYTES, max_pixels=settings.UPLOAD_MAX_PIXELS,
        max_pages=settings.UPLOAD_MAX_PAGES, um_min=settings.UM_PER_PX_MIN, um_max=settings.UM_PER_PX_MAX,
        min_side=settings.UPLOAD_MIN_SIDE_PX,
    )
    sha = hashlib.sha256(data).hexdigest()
    existing = Image.objects.filter(center_id=session.center_id, original_sha256=sha).first()
    if existing is not None:  # only ever looked up within the session's own center
        raise DomainError(
            _("already uploaded in this center"), extra={"image": str(existing.pk), "session": str(existing.session_id)},
            status_code=409,
        )
    images: list[Image] = []
    written: list[str] = []
    try:
        for page in inspected.pages:
            encoded = encode_page(page)
            if page.um_per_px is not None:
                um, source = page.um_per_px, page.um_per_px_source
            elif session.um_per_px:
                um, source = session.um_per_px, UmPerPxSource.SESSION
            else:
                um, source = None, UmPerPxSource.NONE
            image = Image(
                id=uuid.uuid4(), center_id=session.center_id, session=session, created_by=user,
                original_sha256=sha, stored_sha256=hashlib.sha256(encoded.stored_bytes).hexdigest(),
                original_name=original_name, original_format=inspected.format, stored_format=encoded.stored_ext.lstrip("."),
                page_index=page.index, height=int(page.pixels.shape[0]), width=int(page.pixels.shape[1]),
                bit_depth=page.bit_depth, channels=page.channels,
                display_window_low=encoded.window_low, display_window_high=encoded.window_high,
                um_per_px=um, um_per_px_source=source, stage_x_um=page.stage_x_um, stage_y_um=page.stage_y_um,
            )
            names = (
                (image_upload_path(image, "x" + encoded.stored_ext), encoded.stored_bytes),
                (display_upload_path(image, "x.png"), encoded.display_bytes),
                (thumbnail_upload_path(image, "x.png"), encoded.thumbnail_bytes),
            )
            stored_names = []
            for rel, payload in names:
                stored_names.append(media_save(name=rel, data=payload))
                written.append(stored_names[-1])
            image.file.name, image.display_file.name, image.thumbnail_file.name = stored_names
            images.append(image)
        with transaction.atomic():
            for image in images:
                image.full_clean(exclude=["file", "display_file", "thumbnail_file"], validate_constraints=False)
                image.save(force_insert=True)
                audit_record(actor=user, action="image.create", center=session.center_id, obj=image,
                             after=_image_summary(image), request=request)
    except IntegrityError:
        _remove(written)
        raise DomainError(_("already uploaded in this center"), status_code=409) from None
    except BaseException:
        _remove(written)
        raise
    return images


def _remove(names: list[str]) -> None:
    media_delete(names=names)


def images_upload(*, session: ImageSession, files, user, request=None) -> UploadResult:
    """Store every acceptable file of an upload as images of ``session`` (per file; see module doc).

    After the transaction commits, ``portal.imaging.signals.images_stored`` is sent with the new images.
    """
    _require_writer(user, session.center_id)
    files = list(files)
    if not files:
        raise DomainError(_("No files were sent (use the multipart field 'files')."))
    if len(files) > settings.UPLOAD_MAX_FILES:
        raise DomainError(_('At most %(UPLOAD_MAX_FILES)s files per upload.') % {"UPLOAD_MAX_FILES": settings.UPLOAD_MAX_FILES}, extra={"files": len(files)})
    result = UploadResult()
    for upload in files:
        name = safe_display_name(getattr(upload, "name", ""))
        original_name = original_file_name(getattr(upload, "name", ""), max_length=ORIGINAL_NAME_MAX_LENGTH)
        size = getattr(upload, "size", None)
        try:
            if size is not None and size > settings.UPLOAD_MAX_FILE_BYTES:
                raise UploadRefused(
                    f"{size:,} bytes exceed the limit of {settings.UPLOAD_MAX_FILE_BYTES:,} bytes per file"
                )
            data = _read_upload(upload)
            result.created.extend(_store_one_file(session=session, user=user, data=data, name=name,
                                                  request=request, original_name=original_name))
        except UploadRefused as exc:
            result.errors.append({"file": name, "message": f"{name}: {exc.reason}", "code": "invalid"})
        except DomainError as exc:
            result.errors.append({"file": name, "message": f"{name}: {exc.message}",
                                  "code": "duplicate" if exc.status_code == 409 else "invalid", **exc.extra})
    if result.errors:
        logger.info("upload to session %s: %d image(s) created, %d file(s) refused",
                    session.pk, len(result.created), len(result.errors))
    if result.created:
        created = list(result.created)
        transaction.on_commit(lambda: _announce_stored(session=session, images=created, user=user))
    return result


def _announce_stored(*, session: ImageSession, images: list[Image], user) -> None:
    """Send ``images_stored`` (after commit); a receiver's error is logged, never raised into the upload."""
    for receiver, result in images_stored.send_robust(sender=Image, session=session, images=images, user=user):
        if isinstance(result, Exception):
            logger.error("images_stored receiver %r failed for session %s", receiver, session.pk,
                         exc_info=(type(result), result, result.__traceback__))


def image_status_set(*, image_ids, status: str) -> int:
    """Set the analysis status of images (the jobs app reports progress through this); returns the count."""
    if status not in ImageStatus.values:
        raise DomainError(_('Unknown image status %(status)s.') % {"status": repr(status)}, extra={"allowed": ImageStatus.values})
    return Image.objects.filter(pk__in=list(image_ids)).update(status=status)


# --- reads of image data (audited) ----------------------------------------------------------------

IMAGE_READ_KINDS = ("file", "display", "thumbnail")


def image_data_read_record(*, user, image: Image, kind: str, request=None) -> None:
    """Audit one read of an image's pixels (``kind``: file, display, thumbnail, crop, export, ...)."""
    audit_record_read(actor=user, action=f"image.read.{kind}", center=image.center_id, obj=image, request=request)


def image_thumbnails_shown_record(*, user, images, request=None, context: str = "") -> None:
    """Audit one page of thumbnails as a single event listing the image ids shown."""
    images = list(images)
    if not images:
        return
    by_center: dict = {}
    for image in images:
        by_center.setdefault(image.center_id, []).append(str(image.pk))
    for center_id, ids in by_center.items():
        audit_record_read(actor=user, action="image.read.thumbnails", center=center_id, object_type="imaging.image",
                     object_id="", after={"images": ids, "context": context[:100]}, request=request)


def image_file_name(image: Image, kind: str) -> str:
    """Storage name of an image's stored file, display PNG or thumbnail ("" when it has none)."""
    field_file = {"file": image.file, "display": image.display_file, "thumbnail": image.thumbnail_file}[kind]
    return field_file.name or ""
