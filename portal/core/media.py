"""Media files through Django's storage API only (local disk or an S3-compatible bucket), and the bounded
local cache that workers read them through.

Nothing here (nor anywhere else in the portal) opens a media file by a filesystem path: writes go through
``default_storage.save``, reads through ``default_storage.open``. A worker that needs a file many times,
or a real file on disk (a model bundle for the engine), fetches it streamed into the cache under
``settings.MEDIA_CACHE_DIR``:

- files are kept under a name derived from the storage name and the content's sha256, so a changed file
  is a new cache entry and two storages never share one;
- a fetch is written to a temporary file and renamed into place, so concurrent workers on one host never
  see half a file (two workers fetching the same file both write it whole; the last rename wins);
- the sha256 is checked after the fetch, before the file is renamed into place;
- when the cache grows past ``settings.MEDIA_CACHE_MAX_BYTES`` the least recently used files are removed
  (under an exclusive ``flock`` so two workers do not evict at once). Readers get an open handle, so a
  file evicted while it is read stays readable until closed.
- model bundles live under ``bundles/<weights sha256>/``, filled once (under a per-bundle lock) and
  marked complete; they are not evicted by size (a host keeps few models).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

CHUNK = 1 << 20


class MediaIntegrityError(Exception):
    """A file fetched from storage does not have the sha256 it was stored with."""


# --- writes and reads through the storage API -------------------------------------------------------

def media_save(*, name: str, data: bytes) -> str:
    """Store ``data`` under ``name`` and return the name it got (the storage may alter a taken name)."""
    return default_storage.save(name, ContentFile(data))


def media_delete(*, names) -> None:
    """Remove stored files; a file that is already gone is not an error."""
    for name in names:
        with contextlib.suppress(FileNotFoundError, OSError):
            default_storage.delete(name)


def media_walk(prefix: str = "", *, storage=None) -> Iterator[str]:
    """Every stored file name under ``prefix`` (a folder name, no trailing slash), recursively, in
    ``storage`` (the default storage unless given)."""
    storage = default_storage if storage is None else storage
    try:
        dirs, files = storage.listdir(prefix)
    except FileNotFoundError:
        return
    for file_name in files:
        yield f"{prefix}/{file_name}" if prefix else file_name
    for dir_name in dirs:
        yield from media_walk(f"{prefix}/{dir_name}" if prefix else dir_name, storage=storage)


def stream_sha256(handle: BinaryIO) -> str:
    """Hex sha256 of an open binary file, read in chunks."""
    digest = hashlib.sha256()
    while block := handle.read(CHUNK):
        digest.update(block)
    return digest.hexdigest()


def storage_sha256(storage, name: str) -> str:
    """Hex sha256 of a stored file, streamed from ``storage``."""
    with storage.open(name, "rb") as handle:
        return stream_sha256(handle)


# --- the bounded local cache ------------------------------------------------------------------------

def _cache_root() -> Path:
    root = Path(settings.MEDIA_CACHE_DIR)
    (root / "files").mkdir(parents=True, exist_ok=True)
    return root


def _storage_key() -> str:
    """What tells storages apart in cache keys: the backend and where it points."""
    from django.core.files.storage import storages

    storage = storages["default"]  # the instance behind default_storage (that one is a lazy wrapper)
    place = getattr(storage, "bucket_name", None) or str(getattr(storage, "location", ""))
    endpoint = getattr(storage, "endpoint_url", "") or ""
    return f"{type(storage).__module__}.{type(storage).__name__}|{endpoint}|{place}"


def cache_entry_path(*, name: str, sha256: str) -> Path:
    """Where the cache keeps the stored file ``name`` whose content has ``sha256``."""
    key = hashlib.sha256(f"{_storage_key()}|{name}".encode()).hexdigest()
    suffix = PurePosixPath(name).suffix.lower()[:10]
    return _cache_root() / "files" / sha256[:2] / f"{key[:32]}-{sha256}{suffix}"


def _stream_into(target: Path, opener: Callable[[], BinaryIO], expected_sha256: str | None,
                 *, reopen: bool = False) -> BinaryIO | None:
    """Copy what ``opener()`` yields into ``target`` via a temporary file beside it; checks the sha256.

    With ``reopen``, returns the new file opened for reading, opened before it is renamed into place (so
    a concurrent eviction cannot take it away between the rename and the open)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".fetch-", suffix=".tmp")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, opener() as src:
            while block := src.read(CHUNK):
                digest.update(block)
                out.write(block)
        if expected_sha256 and digest.hexdigest() != expected_sha256:
            raise MediaIntegrityError(
                f"{target.name}: sha256 {digest.hexdigest()[:16]}… does not match the stored {expected_sha256[:16]}…")
        handle = open(tmp, "rb") if reopen else None
        os.replace(tmp, target)
        return handle
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def media_cached_open(*, name: str, sha256: str) -> Iterator[BinaryIO]:
    """Open the stored file ``name`` (content ``sha256``) from the local cache, fetching it on a miss.

    The handle stays valid even if another worker evicts the entry meanwhile."""
    path = cache_entry_path(name=name, sha256=sha256)
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        handle = _stream_into(path, lambda: default_storage.open(name, "rb"), sha256, reopen=True)
        cache_evict(keep=path)
    else:
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used (unless evicted meanwhile: the open handle still reads it)
    with handle:
        yield handle


def cache_evict(*, keep: Path | None = None, max_bytes: int | None = None) -> int:
    """Remove the least recently used cached files until the cache is within ``max_bytes``
    (``settings.MEDIA_CACHE_MAX_BYTES``); returns how many files were removed. ``keep`` is never removed."""
    limit = settings.MEDIA_CACHE_MAX_BYTES if max_bytes is None else max_bytes
    root = _cache_root()
    with open(root / ".evict.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = []
        for path in (root / "files").glob("*/*"):
            if path.name.startswith(".fetch-"):
                continue
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                entries.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= limit:
                break
            if keep is not None and path == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
            total -= size
        return removed


def bundle_cached_dir(*, prefix: str, weights_sha256: str, verify: Callable[[Path], None]) -> Path:
    """A local copy of the model bundle stored under ``prefix``, kept in ``bundles/<weights sha256>-<prefix
    hash>/`` (two bundles with the same weights but another config or class list never share a copy).

    Filled once per host under an exclusive lock (other workers wait, then use it); ``verify(dir)`` runs
    on the fetched copy before it is marked complete, so a corrupt bundle is never kept."""
    root = _cache_root() / "bundles"
    root.mkdir(parents=True, exist_ok=True)
    key = f"{weights_sha256}-{hashlib.sha256(prefix.encode()).hexdigest()[:16]}"
    target = root / key
    if (target / ".complete").is_file():
        return target
    with open(root / f"{key}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").is_file():
            return target
        names = list(media_walk(prefix))
        if not names:
            raise FileNotFoundError(f"no stored files under {prefix!r}")
        staging = root / f".staging-{uuid.uuid4().hex}"
        try:
            for name in names:
                relative = PurePosixPath(name).relative_to(prefix)
                _stream_into(staging / relative, lambda n=name: default_storage.open(n, "rb"), None)
            verify(staging)
            (staging / ".complete").touch()
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


# --- moving media between storages -----------------------------------------------------------------

@dataclass
class MediaCopyReport:
    copied: int = 0
    skipped: int = 0  # already in the target with the same sha256
    failed: list[str] = field(default_factory=list)  # names whose copy did not verify


def local_media_storage():
    """The local-disk media storage (``MEDIA_ROOT``), whatever the default storage is."""
    from django.core.files.storage import FileSystemStorage

    return FileSystemStorage(location=settings.MEDIA_ROOT)


def s3_media_storage():
    """The S3 media storage configured by the ``AWS_*`` settings, whatever the default storage is."""
    from django.core.exceptions import ImproperlyConfigured
    from storages.backends.s3 import S3Storage

    options = dict(settings.MEDIA_STORAGE_S3)
    if not options.get("bucket_name"):
        raise ImproperlyConfigured("No S3 bucket is configured: set AWS_STORAGE_BUCKET_NAME (and AWS_S3_*).")
    return S3Storage(**options)


def media_copy_all(*, source, target, on_file: Callable[[str, str], None] | None = None) -> MediaCopyReport:
    """Copy every file of ``source`` into ``target`` under the same name, streamed; idempotent.

    A file already in ``target`` with the same sha256 is skipped; one that differs is replaced. Each copy
    is read back from ``target`` and its sha256 compared with the source's; a mismatch is reported (and
    the bad copy removed), never hidden. ``on_file(name, outcome)`` is told each outcome
    (``copied``, ``skipped``, ``failed``). The source is left as it is."""
    from django.core.files import File

    report = MediaCopyReport()
    for name in media_walk(storage=source):
        if any(part.startswith(".") for part in name.split("/")):
            continue  # temporary files of an interrupted write
        source_sha = storage_sha256(source, name)
        if target.exists(name):
            if storage_sha256(target, name) == source_sha:
                report.skipped += 1
                if on_file:
                    on_file(name, "skipped")
                continue
            target.delete(name)
        with source.open(name, "rb") as handle:
            stored = target.save(name, File(handle, name=name))
        if stored != name or storage_sha256(target, stored) != source_sha:
            with contextlib.suppress(Exception):
                target.delete(stored)
            report.failed.append(name)
            outcome = "failed"
        else:
            report.copied += 1
            outcome = "copied"
        if on_file:
            on_file(name, outcome)
    return report
