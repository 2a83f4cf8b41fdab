"""Dataset writes: a session's training use and sorted population, and immutable dataset versions.

A version is built from the final calls of the review app (``portal.review.selectors.calls_for_result_sets``,
rule ``portal.review.lib.finalcall``) and written to storage through ``default_storage`` only: one 8-bit
PNG per image (the model view of ``inference.pixels``), ``annotations.json`` (COCO, one ``split`` and
``center`` per image, one ``label_source`` per instance) and ``manifest.json`` (sha256 of every file).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from collections import Counter, defaultdict
from pathlib import Path
from typing import BinaryIO

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from portal.audit.services import audit_record
from portal.centers.access import user_may
from portal.centers.models import Center
from portal.centers.policy import Action
from portal.core.errors import Conflict, DomainError
from portal.core.media import CHUNK, media_open_stream
from portal.datasets.lib.splits import patient_splits, split_counts
from portal.datasets.models import DatasetLine, DatasetVersion, LabelSource, SessionTrainingUse
from portal.imaging.models import Image, ImageSession
from portal.lib.zipstream import zip_copy, zip_spool
from portal.results.models import Detection
from portal.review.classes import CLASS_NAMES, coco_categories
from portal.review.exports import detection_geometry
from portal.review.lib.finalcall import FINAL_CALL_RULE, FINAL_CALL_RULE_ID, FINAL_MASK_RULE
from portal.review.selectors import (
    REVIEW_THRESHOLD_DEFAULT,
    calls_for_result_sets,
    current_result_set_ids,
    final_masks_for,
    reviewed_image_ids,
)

log = logging.getLogger(__name__)

SPLIT_SEED = 17
LABEL_RULE = (
    "final call per portal.review (adjudication, else the reviewers' unanimous decision): accepted and drawn "
    "instances with their final class; rejected ones are absent (negatives); uncertain and disputed ones are "
    "left out and counted. In a sorted-population session, instances nobody decided take the population's "
    "class. A cell that a validation study's stain (PRM1 or PNA) confirmed is a round spermatid unless a "
    "reviewer rejected it."
)


# --- training use and sorted populations ------------------------------------------------------------------
def _require(user, center_id, action: Action, message: str) -> None:
    if user is None or getattr(user, "is_superuser", False):
        return
    if not user_may(user, center_id, action):
        raise DomainError(message, status_code=403)


def _use_snapshot(use: SessionTrainingUse | None) -> dict | None:
    if use is None:
        return None
    return {"consent": use.consent, "sorted_population": use.sorted_population, "sorted_class": use.sorted_class,
            "purity_percent": use.purity_percent}


@transaction.atomic
def training_use_set(*, user, session: ImageSession, consent: bool, sorted_population: str = "",
                     sorted_class: str = "", purity_percent: float | None = None,
                     request=None) -> SessionTrainingUse:
    """Set whether ``session`` may train models and what sorted population it holds (audited).

    Only an administrator of the session's center decides. ``sorted_class`` empty: not a sorted
    population (then the gate name and purity must be empty too).
    """
    _require(user, session.center_id, Action.DATASETS_MANAGE,
             _("Only an administrator of the session's center decides on its training use."))
    sorted_population = (sorted_population or "").strip()
    if sorted_class and sorted_class not in CLASS_NAMES:
        raise DomainError(_("Unknown class."), extra={"field": "sorted_class", "allowed": list(CLASS_NAMES)})
    if not sorted_class and (sorted_population or purity_percent is not None):
        raise DomainError(_("A sorted population needs its class."), extra={"field": "sorted_class"})
    if sorted_class and not sorted_population:
        raise DomainError(_("Name the sorted population (its gate)."), extra={"field": "sorted_population"})
    use = SessionTrainingUse.objects.select_for_update().filter(session=session).first()
    before = _use_snapshot(use)
    if use is None:
        use = SessionTrainingUse(session=session, center_id=session.center_id)
    use.consent = bool(consent)
    use.sorted_population = sorted_population
    use.sorted_class = sorted_class or ""
    use.purity_percent = purity_percent if sorted_class else None
    use.updated_by = user
    use.full_clean()
    use.save()
    after = _use_snapshot(use)
    if before != after:
        audit_record(actor=user, action="datasets.training_use.update", center=session.center_id, obj=session,
                     before=before, after=after, request=request)
    return use


# --- building a version -----------------------------------------------------------------------------------
def _stain_confirmed_detection_ids(detection_ids) -> set:
    """Detections that a validation study's stain results confirmed (PRM1 or PNA positive)."""
    from portal.validation.models import Cell, Stain

    rows = Cell.objects.filter(detection_id__in=detection_ids, stain_result__isnull=False).values_list(
        "detection_id", "stain_result__prm1", "stain_result__pna")
    return {det for det, prm1, pna in rows if Stain.POSITIVE in (prm1, pna)}


def dataset_instances(*, sessions: list[ImageSession], threshold: float = REVIEW_THRESHOLD_DEFAULT) -> dict:
    """The images and instances a version takes from ``sessions``: {"images": [(image, [annotation])],
    "left_out": Counter, "images_left_out": int}.

    Each annotation is ``{"detection", "class_name", "label_source"}``. Images of a sorted-population
    session are all taken; other images only when every cell to review has a decision.
    """
    uses = {u.session_id: u for u in SessionTrainingUse.objects.filter(session__in=sessions)}
    images = list(Image.objects.filter(session__in=sessions).select_related("session__patient")
                  .order_by("session__acquisition_date", "session_id", "created_at", "page_index"))
    calls = calls_for_result_sets(current_result_set_ids(images))
    reviewed = reviewed_image_ids(calls, threshold)
    stained = _stain_confirmed_detection_ids(list(calls))
    dets = defaultdict(list)
    for det in Detection.objects.filter(pk__in=list(calls)).select_related("result_set").order_by(
            "result_set__source", "index"):
        dets[det.result_set.image_id].append(det)
    left_out: Counter = Counter()
    taken, images_left_out = [], 0
    for image in images:
        use = uses.get(image.session_id)
        sorted_class = use.sorted_class if use is not None else ""
        if not sorted_class and image.pk not in reviewed:
            images_left_out += 1
            continue
        annotations = []
        for det in dets.get(image.pk, []):
            row = calls[det.pk]
            call = row.call
            if call is not None and call.verdict == "reject":
                left_out["rejected"] += 1
                continue
            if det.pk in stained:
                annotations.append({"detection": det, "class_name": "round_spermatid",
                                    "label_source": LabelSource.STAIN_CONFIRMED})
            elif call is not None:
                annotations.append({"detection": det, "class_name": call.class_name,
                                    "label_source": LabelSource.REVIEWED})
            elif row.decided:
                left_out["uncertain_or_disputed"] += 1
            elif sorted_class and row.to_review(threshold):
                annotations.append({"detection": det, "class_name": sorted_class,
                                    "label_source": LabelSource.SORTED_POPULATION})
            else:
                left_out["below_threshold_undecided"] += 1
        taken.append((image, annotations))
    return {"images": taken, "left_out": left_out, "images_left_out": images_left_out}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_view_png(image: Image) -> bytes:
    """The 8-bit RGB the model sees (``inference.pixels``, via the jobs' reader) as PNG bytes."""
    from PIL import Image as PILImage

    from portal.jobs.inference import image_rgb_uint8

    buffer = io.BytesIO()
    PILImage.fromarray(image_rgb_uint8(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write(name: str, data: bytes, written: list[str]) -> None:
    stored = default_storage.save(name, ContentFile(data))
    written.append(stored)
    if stored != name:
        raise DomainError("Storage renamed a dataset file; the version prefix is not fresh.",
                          extra={"name": name, "stored": stored})


def _check_sessions(*, user, sessions: list[ImageSession]) -> None:
    if not sessions:
        raise DomainError(_("Choose at least one session."), extra={"field": "session_ids"})
    uses = {u.session_id: u for u in SessionTrainingUse.objects.filter(session__in=sessions)}
    refused = [str(s.pk) for s in sessions if not (uses.get(s.pk) and uses[s.pk].consent)]
    if refused:
        raise DomainError(_("Some sessions are not released for training by their center."),
                          extra={"sessions_without_consent": refused})
    for center_id in {s.center_id for s in sessions}:
        _require(user, center_id, Action.DATASETS_MANAGE,
                 _("You may only pool sessions of centers whose datasets you manage."))


def _line_state(line: DatasetLine | None) -> tuple:
    """What a version's files depend on in its line: the line, the next number and the frozen test patients."""
    if line is None or line._state.adding:
        return (None, 1, None)
    number = (line.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    return (line.pk, number, None if number == 1 else list(line.test_patient_codes))


def dataset_version_create(*, user, center: Center, name: str, sessions: list[ImageSession],
                           threshold: float = REVIEW_THRESHOLD_DEFAULT, request=None) -> DatasetVersion:
    """Snapshot ``sessions`` as the next version of the line ``name`` of ``center`` (created on first use).

    Every session must be released for training by its center (``SessionTrainingUse.consent``) and the
    user must manage datasets in each of their centers. The images and masks are rendered and written
    under a fresh prefix outside any database transaction (it would otherwise stay open, and the line
    locked, for the whole rendering); a short transaction then saves the row, provided the line is still
    as the files assumed (no other version was made meanwhile, else ``Conflict``). The files are removed
    again when anything fails.
    """
    _require(user, center.pk, Action.DATASETS_MANAGE, _("Only an administrator of the center makes datasets."))
    name = (name or "").strip()
    if not name:
        raise DomainError(_("Name the dataset."), extra={"field": "name"})
    _check_sessions(user=user, sessions=sessions)
    built = dataset_instances(sessions=sessions, threshold=threshold)
    if not built["images"]:
        raise DomainError(_("No reviewed image in these sessions yet."),
                          extra={"images_left_out": built["images_left_out"]})
    line = DatasetLine.objects.filter(center=center, name=name).first() or DatasetLine(
        center=center, name=name, created_by=user)
    assumed = _line_state(line)
    number, frozen = assumed[1], assumed[2]
    version = DatasetVersion(line=line, center=center, number=number, created_by=user)
    version.storage_prefix = f"datasets/{version.pk}"
    written: list[str] = []
    try:
        _build_files(version=version, line=line, frozen=frozen, built=built, sessions=sessions,
                     threshold=threshold, written=written)
        with transaction.atomic():
            locked = DatasetLine.objects.select_for_update().filter(center=center, name=name).first()
            if _line_state(locked) != assumed:
                raise Conflict(_("Another version of this dataset was made meanwhile; try again."),
                               extra={"line": name})
            if locked is None:
                try:
                    with transaction.atomic():
                        line.save(force_insert=True)
                except IntegrityError:  # another request made the line meanwhile
                    raise Conflict(_("Another version of this dataset was made meanwhile; try again."),
                                   extra={"line": name})
            version.line = line = locked or line
            version.full_clean()
            version.save()
            version.sessions.set(sessions)
            if number == 1:
                line.test_patient_codes = version.manifest["test_patients"]
                line.save(update_fields=["test_patient_codes"])
            audit_record(actor=user, action="datasets.version.create", center=center, obj=version, after={
                "line": line.name, "number": number, "manifest_sha256": version.manifest_sha256,
                "sessions": [str(s.pk) for s in sessions], "counts": version.counts}, request=request)
    except Exception:
        for stored in written:
            default_storage.delete(stored)
        raise
    return version


def _build_files(*, version: DatasetVersion, line: DatasetLine, frozen: list[str] | None, built: dict, sessions,
                 threshold: float, written: list[str]) -> None:
    """Render the version's images, COCO file and manifest into storage (``written`` lists what was stored);
    ``frozen``: the test patients of the line's first version (None for a first version)."""
    images = built["images"]
    patient_images = Counter(image.session.patient.code for image, _ in images)
    centers = {image.session.patient.code: str(image.center_id) for image, _ in images}
    splits = patient_splits(patient_images=dict(patient_images), frozen_test=frozen, seed=SPLIT_SEED,
                            patient_groups=centers)
    category_id = {n: k + 1 for k, n in enumerate(CLASS_NAMES)}
    files, coco_images, annotations = [], [], []
    per_class_source: dict = defaultdict(Counter)
    split_images = []
    finals = final_masks_for(ann["detection"].pk for _, anns in images for ann in anns)
    for k, (image, anns) in enumerate(images, start=1):
        png = model_view_png(image)
        file_name = f"images/{image.pk}.png"
        _write(f"{version.storage_prefix}/{file_name}", png, written)
        files.append({"name": file_name, "sha256": _sha256(png), "bytes": len(png),
                      "center": str(image.center_id)})
        split = splits[image.session.patient.code]
        split_images.append(split)
        coco_images.append({
            "id": k, "file_name": file_name, "width": image.width, "height": image.height,
            "um_per_px": image.um_per_px or image.session.um_per_px, "patient_id": image.session.patient.code,
            "center": str(image.center_id), "split": split, "portal_image_id": str(image.pk),
            "portal_session_id": str(image.session_id), "sha256": files[-1]["sha256"],
        })
        for ann in anns:
            det = ann["detection"]
            segmentation, area, bbox = detection_geometry(det, finals.get(det.pk))
            annotations.append({
                "id": len(annotations) + 1, "image_id": k, "category_id": category_id[ann["class_name"]],
                "segmentation": segmentation, "area": area, "bbox": bbox, "iscrowd": 0,
                "mask_corrected": det.pk in finals,
                "label_source": str(ann["label_source"]), "model_class": det.class_name,
                "portal_detection_id": str(det.pk),
            })
            per_class_source[ann["class_name"]][str(ann["label_source"])] += 1
    coco = {
        "info": {"description": f"spermatid-portal dataset {line.name} v{version.number}",
                 "label_rule": LABEL_RULE, "selection_rule_id": FINAL_CALL_RULE_ID,
                 "final_call_rule": FINAL_CALL_RULE, "mask_rule": FINAL_MASK_RULE, "review_threshold": threshold},
        "licenses": [], "images": coco_images, "annotations": annotations, "categories": coco_categories(),
    }
    coco_bytes = json.dumps(coco, sort_keys=True).encode()
    _write(version.annotations_name, coco_bytes, written)
    counts = {
        "images": len(coco_images), "instances": len(annotations),
        "images_per_split": split_counts(split_images),
        "patients_per_split": split_counts(splits.values()),
        "per_class_source": {c: dict(v) for c, v in sorted(per_class_source.items())},
        "left_out": dict(built["left_out"]), "images_left_out": built["images_left_out"],
        "centers": sorted({str(s.center_id) for s in sessions}),
    }
    manifest = {
        "dataset": line.name, "version": version.number, "line": str(line.pk),
        "files": [*files, {"name": "annotations.json", "sha256": _sha256(coco_bytes), "bytes": len(coco_bytes)}],
        "annotations_sha256": _sha256(coco_bytes),
        "test_patients": sorted(c for c, s in splits.items() if s == "test"),
        "split_rule": ("by patient, test patients chosen per center; the test patients of version 1 stay in test "
                   "for the whole line"),
        "label_rule": LABEL_RULE, "counts": counts,
        "sessions_by_center": {c: sorted(str(s.pk) for s in sessions if str(s.center_id) == c)
                               for c in counts["centers"]},
        "patients": {code: {"center": centers[code], "split": splits[code]} for code in sorted(splits)},
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    _write(f"{version.storage_prefix}/manifest.json", manifest_bytes, written)
    version.manifest = manifest
    version.manifest_sha256 = _sha256(manifest_bytes)
    version.counts = counts
    version.center_ids = counts["centers"]


def dataset_version_coco(version: DatasetVersion) -> dict:
    """The version's stored COCO dict, checked against the sha256 its manifest names."""
    with default_storage.open(version.annotations_name, "rb") as handle:
        data = handle.read()
    if _sha256(data) != version.manifest["annotations_sha256"]:
        raise Conflict(_("The dataset's annotation file does not match its manifest (altered)."),
                       extra={"dataset_version": str(version.pk)})
    return json.loads(data)


def visible_center_ids(user) -> set[str] | None:
    """Centers whose images and patients ``user`` may see in a dataset (None: all, for superusers)."""
    from portal.centers.access import center_ids_for

    if getattr(user, "is_superuser", False):
        return None
    return {str(c) for c in center_ids_for(user, Action.DATASETS_READ)}


def manifest_visible(*, user, version: DatasetVersion) -> dict:
    """The manifest without the file list, cut to what ``user`` may see: the test patients, patients and
    sessions of other pooled centers are left out (their counts stay)."""
    allowed = visible_center_ids(user)
    manifest = {k: v for k, v in version.manifest.items() if k != "files"}
    if allowed is None:
        return manifest
    patients = {c: p for c, p in manifest.get("patients", {}).items() if p["center"] in allowed}
    return {**manifest, "patients": patients,
            "test_patients": [c for c in manifest.get("test_patients", []) if c in patients],
            "sessions_by_center": {c: ids for c, ids in manifest.get("sessions_by_center", {}).items()
                                   if c in allowed}}


def _zip_copy_checked(*, archive, source: str, name: str, expected_sha256: str, size: int) -> None:
    """Copy the stored file ``source`` into ``archive`` as ``name``, chunk by chunk, checking its sha256."""
    with media_open_stream(source) as handle:  # streamed from S3, not downloaded whole first
        digest = zip_copy(archive, name, handle, size=size)
    if digest != expected_sha256:
        raise Conflict(_("A dataset image does not match its manifest (altered)."), extra={"file": name})


def dataset_version_export_zip(*, user, version: DatasetVersion, request=None) -> BinaryIO:
    """A zip of the version for ``user``: ``images/``, ``annotations.json`` and ``manifest.json``
    (audited), as an open temporary file positioned at its start (the caller closes it; a response
    streams it).

    The images are copied in chunks, so memory stays small whatever the dataset's size. Only the images
    of centers where the user may read datasets go in (a pooled version never shows one center's images
    to another); the manifest then lists just those files, says how many were left out, and keeps the
    sha256 of the full stored manifest it was cut from.
    """
    import zipfile

    allowed = visible_center_ids(user)
    coco = dataset_version_coco(version)
    keep = [img for img in coco["images"] if allowed is None or img["center"] in allowed]
    kept_ids = {img["id"] for img in keep}
    coco = {**coco, "images": keep, "annotations": [a for a in coco["annotations"] if a["image_id"] in kept_ids]}
    coco_bytes = json.dumps(coco, sort_keys=True).encode()
    names = {img["file_name"] for img in keep}
    manifest = {**manifest_visible(user=user, version=version),
                "files": [f for f in version.manifest["files"] if f["name"] in names],
                "stored_manifest_sha256": version.manifest_sha256,
                "images_of_other_centers_left_out": len(version.manifest["files"]) - 1 - len(names)}
    manifest["files"].append({"name": "annotations.json", "sha256": _sha256(coco_bytes), "bytes": len(coco_bytes)})
    spool = zip_spool()
    try:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for entry in manifest["files"][:-1]:
                _zip_copy_checked(archive=archive, source=f"{version.storage_prefix}/{entry['name']}",
                                  name=entry["name"], expected_sha256=entry["sha256"], size=entry["bytes"])
            archive.writestr("annotations.json", coco_bytes)
            archive.writestr("manifest.json", json.dumps(manifest, sort_keys=True, indent=1))
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    audit_record(actor=user, action="datasets.version.export", center=version.center_id, obj=version,
                 after={"images": len(keep), "manifest_sha256": version.manifest_sha256}, request=request)
    return spool


def dataset_version_materialise(*, version: DatasetVersion, coco: dict, root) -> Path:
    """Copy the images of ``coco`` (a part of the version's COCO dict) from storage into the local
    folder ``root`` (sha256-checked against the manifest) and write ``root/train.json``; for the engine,
    which reads files. Returns the COCO file's path."""
    import os

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for image in coco["images"]:
        target = root / image["file_name"]
        if target.is_file():
            continue
        part = target.with_suffix(".part")
        digest = hashlib.sha256()
        with media_open_stream(f"{version.storage_prefix}/{image['file_name']}") as src, open(part, "wb") as out:
            while block := src.read(CHUNK):  # streamed: bounded memory whatever the image's size
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != image["sha256"]:
            part.unlink()
            raise Conflict(_("A dataset image does not match its manifest (altered)."),
                           extra={"file": image["file_name"]})
        os.replace(part, target)
    path = root / "train.json"
    path.write_text(json.dumps(coco))
    return path
