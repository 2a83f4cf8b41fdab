"""The dataset export zip is written chunk by chunk to a temporary file and streamed: memory stays far below
the size of the zip, and an altered image still refuses the export."""
from __future__ import annotations

import hashlib
import json
import os
import tracemalloc
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from portal.core.errors import Conflict
from portal.datasets.models import DatasetVersion
from portal.datasets.services import dataset_version_create, dataset_version_export_zip, training_use_set
from portal.testing.training import make_session_for, make_synthetic_image, review_image

pytestmark = pytest.mark.django_db
IMAGE_BYTES = 8 << 20  # three images of 8 MiB each (incompressible): a 24 MiB zip


def _version_with_large_images(cast) -> DatasetVersion:
    """A version of center A whose three stored images are replaced by 8 MiB of random bytes each (the
    manifest updated to match), standing for large microscope images."""
    session = make_session_for(cast.a)
    for seed in (1, 2, 3):
        image, dets, fp = make_synthetic_image(session, seed=seed)
        review_image(cast.a, image, dets, fp)
    training_use_set(user=cast.a.admin, session=session, consent=True)
    version = dataset_version_create(user=cast.a.admin, center=cast.a.center, name="big", sessions=[session])
    for entry in version.manifest["files"][:-1]:
        data = os.urandom(IMAGE_BYTES)
        name = f"{version.storage_prefix}/{entry['name']}"
        default_storage.delete(name)
        default_storage.save(name, ContentFile(data))
        entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    DatasetVersion.objects.filter(pk=version.pk).update(manifest=version.manifest)
    return version


def test_the_export_memory_peak_stays_far_below_the_zip_size(cast, storage):
    version = _version_with_large_images(cast)
    tracemalloc.start()
    try:
        handle = dataset_version_export_zip(user=cast.a.admin, version=version)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(0)
        with zipfile.ZipFile(handle) as archive:
            names = archive.namelist()
            assert archive.testzip() is None
            manifest = json.loads(archive.read("manifest.json"))
    assert size > 3 * IMAGE_BYTES
    assert len([n for n in names if n.startswith("images/")]) == 3
    assert {f["bytes"] for f in manifest["files"][:-1]} == {IMAGE_BYTES}
    assert peak < size / 8, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.1f} MiB zip"


def test_the_export_is_streamed_to_the_browser(cast, storage):
    version = _version_with_large_images(cast)
    client = Client()
    client.force_login(cast.a.admin)
    response = client.get(reverse("datasets:export", kwargs={"dataset_version_id": version.pk}))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert f"dataset-{version.line.pk}-v1.zip" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(body) > 3 * IMAGE_BYTES
    response.close()


def test_an_altered_large_image_refuses_the_export(cast, storage):
    version = _version_with_large_images(cast)
    name = f"{version.storage_prefix}/{version.manifest['files'][0]['name']}"
    default_storage.delete(name)
    default_storage.save(name, ContentFile(os.urandom(IMAGE_BYTES)))
    with pytest.raises(Conflict):
        dataset_version_export_zip(user=cast.a.admin, version=version)
