"""Zip archives built without holding their members in memory (no Django import).

A member is copied from an open binary file chunk by chunk, and the archive itself is written to a
spooled temporary file (in memory only while small), which a response then streams.
"""
from __future__ import annotations

import hashlib
import tempfile
import time
import zipfile
from typing import BinaryIO

SPOOL_BYTES = 1 << 20  # an archive stays in memory up to this size, then goes to a temporary file
CHUNK_BYTES = 1 << 20
ZIP64_FROM = 1 << 31


def zip_spool() -> BinaryIO:
    """An empty temporary file for an archive (closed by whoever streams it)."""
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, prefix="zip-")


def zip_copy(archive: zipfile.ZipFile, name: str, source: BinaryIO, *, size: int | None = None) -> str:
    """Copy ``source`` into ``archive`` as ``name`` (stored: images are compressed already), chunk by
    chunk; returns the sha256 (hex) of what was copied. ``size`` in bytes, when known, allows members of
    2 GiB and more."""
    digest = hashlib.sha256()
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_STORED
    with archive.open(info, "w", force_zip64=size is not None and size >= ZIP64_FROM) as target:
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
            target.write(chunk)
    return digest.hexdigest()
