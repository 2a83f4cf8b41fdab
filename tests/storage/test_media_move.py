"""``manage.py media_move``: every media file copied between local disk and S3, idempotent, verified."""
from __future__ import annotations

import io
import os
import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.management import CommandError, call_command

pytestmark = [pytest.mark.slow]

FILES = {"images/c1/s1/a.png": os.urandom(3000), "display/c1/s1/a.png": os.urandom(2000),
         "models/tiny-1-abc/model_final.safetensors": os.urandom(5000)}


def _run(to: str) -> str:
    out = io.StringIO()
    call_command("media_move", "--to", to, stdout=out)
    return out.getvalue()


@pytest.fixture
def bucket(settings, s3_server):
    location = f"move-{uuid.uuid4().hex[:10]}"
    settings.MEDIA_STORAGE_S3 = s3_server.storages(location=location)["default"]["OPTIONS"]
    return location


def _bucket_files(s3_server, location: str) -> dict[str, bytes]:
    client = s3_server.client()
    listing = client.list_objects_v2(Bucket="portal-media", Prefix=location + "/").get("Contents", [])
    return {o["Key"][len(location) + 1:]: client.get_object(Bucket="portal-media", Key=o["Key"])["Body"].read()
            for o in listing}


def test_it_copies_local_media_to_s3_once_and_back_to_an_empty_disk(settings, tmp_path, s3_server, bucket):
    settings.MEDIA_ROOT = tmp_path / "old-host"
    local = FileSystemStorage(location=settings.MEDIA_ROOT)
    for name, data in FILES.items():
        local.save(name, ContentFile(data))

    assert "3 copied, 0 already there (same sha256), 0 failed" in _run("s3")
    assert _bucket_files(s3_server, bucket) == FILES
    assert "0 copied, 3 already there (same sha256), 0 failed" in _run("s3")  # idempotent

    settings.MEDIA_ROOT = tmp_path / "new-host"
    changed = FileSystemStorage(location=settings.MEDIA_ROOT)
    changed.save("images/c1/s1/a.png", ContentFile(b"a different file under the same name"))
    assert "3 copied, 0 already there (same sha256), 0 failed" in _run("local")
    for name, data in FILES.items():  # the differing local file was replaced by the bucket's
        assert (settings.MEDIA_ROOT / name).read_bytes() == data
    assert "0 copied, 3 already there" in _run("local")


def test_it_refuses_without_a_configured_bucket(settings):
    settings.MEDIA_STORAGE_S3 = {**settings.MEDIA_STORAGE_S3, "bucket_name": ""}
    with pytest.raises(CommandError, match="AWS_STORAGE_BUCKET_NAME"):
        _run("s3")
