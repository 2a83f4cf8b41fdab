"""Media files through Django's storage API only (local disk or an S3-compatible bucket), and the bounded
local cache that workers read them through.

Nothing here (nor anywhere else in the portal) opens a media file by a filesystem path: writes go through
``default_storage.save``, reads through ``default_storage.open`` or, for one sequential pass (a copy into
the cache, a hash, a file sent to a browser), through ``media_open_stream``, which reads an S3 object in
chunks as they arrive instead of downloading it whole first (django-storages' ``S3File`` does that, into
memory up to ``max_memory_size``). A worker that needs a file many times, or a real file on disk (a model
bundle for the engine), fetches it streamed into the cache under ``settings.MEDIA_CACHE_DIR``:

- files are kept under a name derived from the storage name and the content's sha256, so a changed file
  is a new cache entry and two storages never share one;
- a fetch is written to a temporary file and renamed into place, so concurrent workers on one host never
  see half a file (two workers fetching the same file both write it whole; the last rename wins);
- the sha256 is checked after the fetch, before the file is renamed into place;
- when the cache grows past ``settings.MEDIA_CACHE_MAX_BYTES`` the least recently used files are removed
  (under an exclusive ``flock`` so two workers do not evict at once). Readers get an open handle, so a
  file evicted while it is read stays readable until closed.
- model bundles live under ``bundles/<weights sha256>-<prefix hash>/``, filled once (under a per-bundle
  lock) and marked complete. A fill is staged in ``bundles/.staging-*`` (held by an ``flock`` while it
  runs): one left by a crashed fill is removed by the next fill once it is older than
  ``BUNDLE_STAGING_STALE_SECONDS``; beyond ``settings.MEDIA_CACHE_MAX_BUNDLES`` complete bundles, the least
  recently used ones are removed, only when unused for ``BUNDLE_IDLE_SECONDS`` (a worker that was just
  handed one has time to load it) and not being filled or handed out (their lock free).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import shutil
import tempfile
import time
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
    with media_open_stream(name, storage=storage) as handle:
        return stream_sha256(handle)


class _StreamedObject(io.RawIOBase):
    """An S3 object's body read as it arrives from the network (read-only, not seekable)."""

    def __init__(self, body, *, name: str, size: int | None):
        super().__init__()
        self._body = body
        self.name = name
        self.size = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._body.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


def media_open_stream(name: str, *, storage=None) -> BinaryIO:
    """Open the stored file ``name`` for one sequential read, streamed in chunks: bounded memory whatever
    the file's size. Raises ``FileNotFoundError`` when it is not stored.

    From an S3 bucket this is the object's body as it arrives (``storage.open`` would download the whole
    object into a spooled temporary file before the first byte); the handle has ``size`` (bytes) and is
    not seekable. Other storages open the file as usual."""
    storage = default_storage if storage is None else storage
    from storages.backends.s3 import S3Storage

    if not isinstance(storage, S3Storage):
        return storage.open(name, "rb")
    from botocore.exceptions import ClientError
    from storages.utils import clean_name

    key = storage._normalize_name(clean_name(name))
    try:
        answer = storage.bucket.Object(key).get()
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            raise FileNotFoundError(f"File does not exist: {name}") from exc
        raise
    return _StreamedObject(answer["Body"], name=name, size=answer.get("ContentLength"))


def media_open_local(name: str, *, storage=None) -> BinaryIO:
    """Open the stored file ``name`` for random access (an image decoder seeks): from an S3 bucket, a
    temporary file on local disk filled by a streamed fetch (removed when closed), so memory stays
    bounded; from local storage, the file itself. Raises ``FileNotFoundError``."""
    storage = default_storage if storage is None else storage
    from storages.backends.s3 import S3Storage

    if not isinstance(storage, S3Storage):
        return storage.open(name, "rb")
    local = tempfile.TemporaryFile(suffix=PurePosixPath(name).suffix[:10])
    try:
        with media_open_stream(name, storage=storage) as src:
            shutil.copyfileobj(src, local, CHUNK)
        local.seek(0)
    except BaseException:
        local.close()
        raise
    return local


SMALL_RESPONSE_BYTES = 256 * 1024  # with small_in_memory: answered in one piece (thumbnails)


def media_file_response(name: str, *, content_type: str, record, storage=None, small_in_memory: bool = False):
    """A ``FileResponse`` that sends the stored file ``name`` to the browser in chunks, straight from the
    storage (see ``media_open_stream``). The caller has checked access; ``record`` (no arguments) audits
    the read once the file is open, so a missing file raises ``FileNotFoundError`` with no read recorded,
    and a ``record`` that raises closes the stream before the error passes on. With ``small_in_memory`` a
    file of at most ``SMALL_RESPONSE_BYTES`` (a thumbnail) is answered as one ``HttpResponse`` instead:
    cheaper per request, memory still bounded."""
    from django.http import FileResponse, HttpResponse

    handle = media_open_stream(name, storage=storage)
    try:
        record()
    except BaseException:
        handle.close()  # no response owns the stream yet
        raise
    size = getattr(handle, "size", None)
    if small_in_memory and size is not None and size <= SMALL_RESPONSE_BYTES:  # one read beats streaming
        with handle:
            return HttpResponse(handle.read(), content_type=content_type)
    response = FileResponse(handle, content_type=content_type)
    if size is not None:
        response["Content-Length"] = str(size)
    return response


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
        handle = _stream_into(path, lambda: media_open_stream(name), sha256, reopen=True)
        cache_evict(keep=path)
    else:
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used (unless evicted meanwhile: the open handle still reads it)
    with handle:
        yield handle


FETCH_STALE_SECONDS = 15 * 60  # a .fetch-* temporary file not written to for this long was left by a crash


def cache_evict(*, keep: Path | None = None, max_bytes: int | None = None) -> int:
    """Remove the least recently used cached files until the cache is within ``max_bytes``
    (``settings.MEDIA_CACHE_MAX_BYTES``); returns how many files were removed. ``keep`` is never removed.
    Temporary files of fetches that a crash cut short go once ``FETCH_STALE_SECONDS`` old."""
    limit = settings.MEDIA_CACHE_MAX_BYTES if max_bytes is None else max_bytes
    root = _cache_root()
    with open(root / ".evict.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entries = []
        now = time.time()
        for path in (root / "files").glob("*/*"):
            if path.name.startswith(".fetch-"):  # a fetch in progress, or one a crash cut short
                with contextlib.suppress(FileNotFoundError):
                    if now - path.stat().st_mtime > FETCH_STALE_SECONDS:
                        path.unlink()
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


BUNDLE_STAGING_STALE_SECONDS = 15 * 60  # a staging folder this old, its fill not running, was left by a crash
BUNDLE_IDLE_SECONDS = 10 * 60  # a complete bundle is evicted only when unused this long


def _bundle_lock(root: Path, key: str):
    return open(root / f"{key}.lock", "a+")


def _try_lock(handle, mode: int) -> bool:
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _bundles_clean(root: Path, *, keep: str, now: float | None = None) -> dict[str, int]:
    """Remove staging folders left by crashed fills and, beyond ``settings.MEDIA_CACHE_MAX_BUNDLES``,
    the least recently used complete bundles; returns how many of each went.

    A staging folder ``.staging-<key>-<hex>`` goes when it is older than ``BUNDLE_STAGING_STALE_SECONDS``
    and no process holds its bundle's lock (a fill in progress does). A complete bundle goes only when
    unused for ``BUNDLE_IDLE_SECONDS`` and its lock is free; it is renamed away first, so nobody ever sees
    a half-removed bundle. ``keep`` (the bundle being used now) is never removed."""
    now = time.time() if now is None else now
    removed = {"staging": 0, "bundles": 0}
    complete: list[tuple[float, str]] = []
    for entry in root.iterdir():
        if not entry.is_dir():
            continue
        if entry.name.startswith(".staging-"):
            with contextlib.suppress(FileNotFoundError):
                if now - entry.stat().st_mtime < BUNDLE_STAGING_STALE_SECONDS:
                    continue
            key = entry.name[len(".staging-"):].rpartition("-")[0]
            with contextlib.ExitStack() as stack:
                if key:  # a fill of that bundle may still be running: only with its lock free
                    lock = stack.enter_context(_bundle_lock(root, key))
                    if not _try_lock(lock, fcntl.LOCK_EX):
                        continue
                shutil.rmtree(entry, ignore_errors=True)
                removed["staging"] += 1
        elif entry.name != keep:
            with contextlib.suppress(FileNotFoundError):
                complete.append(((entry / ".complete").stat().st_mtime, entry.name))
    for used_at, key in sorted(complete)[:max(0, len(complete) + 1 - settings.MEDIA_CACHE_MAX_BUNDLES)]:
        if now - used_at < BUNDLE_IDLE_SECONDS:
            continue
        with _bundle_lock(root, key) as lock:
            if not _try_lock(lock, fcntl.LOCK_EX):
                continue
            with contextlib.suppress(FileNotFoundError):
                if now - (root / key / ".complete").stat().st_mtime < BUNDLE_IDLE_SECONDS:
                    continue  # used meanwhile
            doomed = root / f".staging-{key}-{uuid.uuid4().hex}"
            with contextlib.suppress(FileNotFoundError):
                (root / key).rename(doomed)
                shutil.rmtree(doomed, ignore_errors=True)
                removed["bundles"] += 1
    return removed


def bundle_cached_dir(*, prefix: str, weights_sha256: str, verify: Callable[[Path], None]) -> Path:
    """A local copy of the model bundle stored under ``prefix``, kept in ``bundles/<weights sha256>-<prefix
    hash>/`` (two bundles with the same weights but another config or class list never share a copy).

    Filled once per host under an exclusive lock (other workers wait, then use it); ``verify(dir)`` runs
    on the fetched copy before it is marked complete, so a corrupt bundle is never kept. Each use marks
    the bundle recently used (under a shared lock, so it is not evicted meanwhile) and cleans the cache:
    see ``_bundles_clean``."""
    root = _cache_root() / "bundles"
    root.mkdir(parents=True, exist_ok=True)
    key = f"{weights_sha256}-{hashlib.sha256(prefix.encode()).hexdigest()[:16]}"
    target = root / key
    _bundles_clean(root, keep=key)
    with _bundle_lock(root, key) as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        with contextlib.suppress(FileNotFoundError):
            os.utime(target / ".complete")  # recently used
            return target
        fcntl.flock(lock, fcntl.LOCK_EX)  # (a conversion, not atomic: check again below)
        with contextlib.suppress(FileNotFoundError):
            os.utime(target / ".complete")
            return target
        names = list(media_walk(prefix))
        if not names:
            raise FileNotFoundError(f"no stored files under {prefix!r}")
        staging = root / f".staging-{key}-{uuid.uuid4().hex}"
        try:
            for name in names:
                relative = PurePosixPath(name).relative_to(prefix)
                _stream_into(staging / relative, lambda n=name: media_open_stream(n), None)
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
        with media_open_stream(name, storage=source) as handle:
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
