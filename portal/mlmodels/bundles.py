"""Reading, unpacking and verifying model bundles (the ``inference.bundle`` format), for the registry.

The engine's own loader (``inference.bundle.load_bundle``) decides what a bundle is; this module adds what
the portal needs around it: safe unpacking of uploaded zips, sha256 of the weights file, a check that
the weights are data the engine can read without running anything (``inference.checkpoint``), and
errors as ``DomainError`` with a clear message.
"""
from __future__ import annotations

import hashlib
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from portal.core.errors import DomainError

MAX_ZIP_MEMBERS = 200


class BundleInvalid(DomainError):
    """The bundle cannot be read, or its weights do not match their declared sha256."""


@dataclass(frozen=True)
class BundleInfo:
    name: str
    version: str
    class_names: list[str]
    weights_sha256: str
    weights_path: Path
    config_path: Path
    root: Path
    metrics: dict = field(default_factory=dict)
    training_summary: dict = field(default_factory=dict)


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _load_bundle(path: Path):
    from inference.bundle import BundleError, load_bundle  # the engine is part of this repository

    try:
        return load_bundle(path)
    except BundleError as exc:
        raise BundleInvalid(f"Not a valid model bundle: {exc}", extra={"path": path.name})
    except (OSError, ValueError, KeyError) as exc:
        raise BundleInvalid(f"Not a valid model bundle: {exc}", extra={"path": path.name})


def bundle_read(path: Path | str) -> BundleInfo:
    """Read a bundle directory and verify that its weights file has the sha256 the bundle declares."""
    root = Path(path)
    if not root.is_dir():
        raise BundleInvalid("A model bundle must be a directory (or a zip of one).", extra={"path": str(root.name)})
    bundle = _load_bundle(root)
    weights_path = Path(bundle.weights_path)
    if not weights_path.is_file():
        raise BundleInvalid("The bundle's weights file is missing.", extra={"weights": weights_path.name})
    actual = file_sha256(weights_path)
    declared = (getattr(bundle, "weights_sha256", "") or "").lower()
    if declared and declared != actual:
        raise BundleInvalid(
            "The weights file does not match the sha256 declared by the bundle (corrupt or altered file).",
            extra={"declared_sha256": declared, "actual_sha256": actual},
        )
    _weights_check(weights_path)
    metrics = getattr(bundle, "metrics", None) or {}
    summary = getattr(bundle, "training_data", None) or getattr(bundle, "training_summary", None) or {}
    return BundleInfo(
        name=str(bundle.name), version=str(bundle.version), class_names=[str(c) for c in bundle.class_names],
        weights_sha256=actual, weights_path=weights_path, config_path=Path(bundle.config_path), root=root,
        metrics=dict(metrics) if isinstance(metrics, dict) else {},
        training_summary=dict(summary) if isinstance(summary, dict) else {},
    )


def _weights_check(weights_path: Path) -> None:
    """Read the weights as the engine will (safetensors, weights-only torch, numpy-only pickle): a file
    holding anything but tensors is refused here, at upload, before anything in it can run."""
    from inference.checkpoint import CheckpointError, UnsafeCheckpointError, read_state_dict

    try:
        read_state_dict(weights_path)
    except UnsafeCheckpointError as exc:
        raise BundleInvalid(
            f"The weights file {weights_path.name} is refused: it holds objects other than tensors, which could "
            "run code when loaded. Export the bundle with `python -m inference export` (safetensors weights).",
            extra={"weights": weights_path.name, "refused": exc.reason})
    except CheckpointError as exc:
        raise BundleInvalid(f"The weights file {weights_path.name} cannot be read as model weights.",
                            extra={"weights": weights_path.name, "error": str(exc).replace(str(weights_path),
                                                                                           weights_path.name)})


def bundle_unpack_zip(zip_path: Path, dest: Path, *, max_bytes: int) -> Path:
    """Unpack a zipped bundle into ``dest`` safely and return the bundle's root directory.

    Refuses absolute paths, ``..``, links, too many members and more than ``max_bytes`` uncompressed.
    A zip holding one top-level folder has that folder as its root.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleInvalid(f"The upload is not a zip file: {exc}")
    with archive:
        members = archive.infolist()
        if not members or len(members) > MAX_ZIP_MEMBERS:
            raise BundleInvalid(f"A bundle zip must hold 1 to {MAX_ZIP_MEMBERS} files.", extra={"files": len(members)})
        total = 0
        for info in members:
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or "\\" in info.filename:
                raise BundleInvalid("The zip holds an unsafe path.", extra={"member": info.filename})
            if stat.S_ISLNK(info.external_attr >> 16):
                raise BundleInvalid("The zip holds a link.", extra={"member": info.filename})
            total += info.file_size
        if total > max_bytes:
            raise BundleInvalid("The bundle is too large.", extra={"bytes": total, "max_bytes": max_bytes})
        dest.mkdir(parents=True, exist_ok=True)
        for info in members:
            target = dest / PurePosixPath(info.filename)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    entries = [p for p in dest.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


def bundle_store_name(info: BundleInfo, prefix: str) -> str:
    """The storage folder of a bundle: ``<prefix>/<name>-<version>-<first 16 of the weights sha256>``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{info.name}-{info.version}")[:80]
    return f"{prefix}/{safe}-{info.weights_sha256[:16]}"


def bundle_copy_into_store(info: BundleInfo, prefix: str) -> str:
    """Copy a bundle directory into media storage (local disk or S3) under ``bundle_store_name``; idempotent.

    Returns the storage folder. Each file goes through the storage API (streamed); a file that is already
    stored with the same sha256 is kept. The weights file is written last, so a reader that finds the
    weights finds the whole bundle (and a worker checks their sha256 before it keeps a copy)."""
    from django.core.files import File
    from django.core.files.storage import default_storage

    from portal.core.media import storage_sha256

    folder = bundle_store_name(info, prefix)
    files = sorted((p for p in info.root.rglob("*") if p.is_file() and not p.name.startswith(".")),
                   key=lambda p: p.resolve() == info.weights_path.resolve())
    for path in files:
        name = f"{folder}/{path.relative_to(info.root).as_posix()}"
        if default_storage.exists(name):
            if storage_sha256(default_storage, name) == file_sha256(path):
                continue
            default_storage.delete(name)
        with open(path, "rb") as handle:  # the bundle being registered, not a media file
            stored = default_storage.save(name, File(handle))
        if stored != name:
            raise BundleInvalid("The bundle could not be stored under its own name.", extra={"file": path.name})
    return folder
