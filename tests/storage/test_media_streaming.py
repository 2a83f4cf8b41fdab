"""Reads from the S3 bucket (SeaweedFS) are streamed in chunks, never held whole in memory: a fetch into
the workers' cache and a file sent to a browser both stay far below the object's size (tracemalloc peak),
the file view still checks access and records the read."""
from __future__ import annotations

import hashlib
import os
import tracemalloc

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.core.media import (
    cache_entry_path,
    media_cached_open,
    media_open_local,
    media_open_stream,
    stream_sha256,
)

pytestmark = [pytest.mark.slow]

SIZE = 24 * 1024 * 1024  # larger than the S3 storage's in-memory spool (max_memory_size, 16 MiB)
BOUND = SIZE // 4


def _big_object(name: str) -> str:
    data = os.urandom(SIZE)
    assert default_storage.save(name, ContentFile(data)) == name
    return hashlib.sha256(data).hexdigest()


def _peak(action) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_fetch_into_the_cache_streams_the_object(s3_storage, settings):
    sha = _big_object("big/scan.tif")

    def fetch() -> str:
        with media_cached_open(name="big/scan.tif", sha256=sha) as handle:
            return hashlib.sha256(handle.read(1)).hexdigest()

    _, peak = _peak(fetch)
    assert peak < BOUND, f"peak {peak / 2**20:.1f} MiB while fetching a {SIZE / 2**20:.0f} MiB object"
    entry = cache_entry_path(name="big/scan.tif", sha256=sha)
    assert entry.stat().st_size == SIZE
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".fetch-")]  # renamed into place


def test_a_local_copy_for_random_access_is_fetched_streamed(s3_storage):
    sha = _big_object("big/display.png")

    def fetch_and_seek() -> tuple[str, bytes]:
        with media_open_local("big/display.png") as handle:
            handle.seek(SIZE - 4)
            tail = handle.read()
            handle.seek(0)
            return stream_sha256(handle), tail

    (local_sha, tail), peak = _peak(fetch_and_seek)
    assert local_sha == sha and len(tail) == 4
    assert peak < BOUND, f"peak {peak / 2**20:.1f} MiB while fetching a {SIZE / 2**20:.0f} MiB object"


def test_a_stream_of_a_missing_object_is_file_not_found(s3_storage):
    with pytest.raises(FileNotFoundError):
        media_open_stream("nowhere/none.png")
    with pytest.raises(FileNotFoundError):
        media_open_local("nowhere/none.png")


def test_the_file_view_streams_the_object_and_records_the_read(cast, s3_storage, settings, client):
    from portal.testing.jobs import make_image, make_session

    session = make_session(cast.a)
    image, small = make_image(session, seed=1), make_image(session, seed=2)
    default_storage.delete(image.file.name)
    sha = _big_object(image.file.name)
    client.force_login(cast.a.uploader)

    def serve(target=image) -> tuple[int, str, str]:
        response = client.get(reverse("api-image-file", kwargs={"pk": target.pk}))
        digest = hashlib.sha256()
        for chunk in response.streaming_content:
            digest.update(chunk)
        return response.status_code, response["Content-Length"], digest.hexdigest()

    assert serve(small)[0] == 200  # modules the first request imports are not the file's memory
    (status, length, served_sha), peak = _peak(serve)
    assert status == 200 and length == str(SIZE) and served_sha == sha
    assert peak < BOUND, f"peak {peak / 2**20:.1f} MiB while serving a {SIZE / 2**20:.0f} MiB object"
    assert AuditEvent.objects.filter(action="image.read.file", object_id=str(image.pk)).count() == 1
    client.force_login(cast.b.uploader)
    assert client.get(reverse("api-image-file", kwargs={"pk": image.pk})).status_code == 404
