"""Media in a real S3 server (SeaweedFS, private bucket): upload, inference job, COCO export and validation
crops all go through the storage API; nothing is written to or read from MEDIA_ROOT (the ``s3_storage``
fixture fails a test that leaves anything there)."""
from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image as PILImage

from portal.audit.models import AuditEvent
from portal.imaging.models import Image
from portal.testing.jobs import png_bytes, synth_rgb

pytestmark = [pytest.mark.slow]


def _keys(s3_server, prefix: str) -> dict[str, bytes]:
    client = s3_server.client()
    listing = client.list_objects_v2(Bucket="portal-media", Prefix=prefix)
    return {o["Key"]: client.get_object(Bucket="portal-media", Key=o["Key"])["Body"].read()
            for o in listing.get("Contents", [])}


def _location(settings) -> str:
    return settings.STORAGES["default"]["OPTIONS"]["location"]


def _upload(client, session, files: dict[str, bytes]):
    url = reverse("api-session-image-upload", kwargs={"pk": session.pk})
    return client.post(url, {"files": [SimpleUploadedFile(name, data) for name, data in files.items()]})


def test_an_upload_lands_in_the_bucket_and_is_served_only_through_the_audited_view(
        cast, s3_storage, settings, client):
    from portal.testing.jobs import make_session

    session = make_session(cast.a)
    client.force_login(cast.a.uploader)
    response = _upload(client, session, {"a.png": png_bytes(synth_rgb(3)[0])})
    assert response.status_code == 201, response.content
    image = Image.objects.get(session=session)
    stored = _keys(s3_storage, _location(settings) + "/")
    for field in (image.file, image.display_file, image.thumbnail_file):
        assert f"{_location(settings)}/{field.name}" in stored
    assert hashlib.sha256(stored[f"{_location(settings)}/{image.file.name}"]).hexdigest() == image.stored_sha256

    served = client.get(reverse("api-image-file", kwargs={"pk": image.pk}))
    assert served.status_code == 200
    assert hashlib.sha256(b"".join(served.streaming_content)).hexdigest() == image.stored_sha256
    assert AuditEvent.objects.filter(action="image.read.file", object_id=str(image.pk)).count() == 1
    client.force_login(cast.b.uploader)
    assert client.get(reverse("api-image-file", kwargs={"pk": image.pk})).status_code == 404

    # the bucket is private: the object's own URL, without a signature, is refused
    url = f"{s3_storage.endpoint_url}/portal-media/{_location(settings)}/{image.file.name}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 403


def test_a_missing_object_is_a_clear_404(cast, s3_storage, settings, client):
    from django.core.files.storage import default_storage

    from portal.testing.jobs import make_session

    session = make_session(cast.a)
    client.force_login(cast.a.uploader)
    assert _upload(client, session, {"a.png": png_bytes(synth_rgb(4)[0])}).status_code == 201
    image = Image.objects.get(session=session)
    default_storage.delete(image.thumbnail_file.name)
    response = client.get(reverse("api-image-thumbnail", kwargs={"pk": image.pk}))
    assert response.status_code == 404 and "missing" in response.json()["message"]


def test_a_job_reads_the_model_and_the_images_from_the_bucket(cast, s3_storage, settings, tiny_bundle_dir):
    from inference.bundle import load_bundle
    from portal.jobs import services
    from portal.jobs.inference import predictor_cache_clear
    from portal.jobs.models import JobStatus
    from portal.mlmodels.services import model_register_bundle
    from portal.results.models import ResultSet, ResultSetStatus
    from portal.testing.jobs import make_image, make_session

    predictor_cache_clear()
    model = model_register_bundle(path=tiny_bundle_dir, user=None, activate=True)
    assert model.bundle_path.startswith("models/")
    bundle_keys = _keys(s3_storage, f"{_location(settings)}/{model.bundle_path}/")
    assert any(k.endswith(".safetensors") for k in bundle_keys)

    session = make_session(cast.a)
    images = [make_image(session, seed=seed) for seed in (1, 2)]
    job = services.job_create(session=session, user=cast.a.uploader)
    assert services.job_run(job_id=job.pk, worker_id="s3:1") == "succeeded"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.images_done == 2

    (cached_bundle,) = (settings.MEDIA_CACHE_DIR / "bundles").glob(f"{model.weights_sha256}-*/")
    assert (cached_bundle / ".complete").is_file()
    predictor = load_bundle(cached_bundle).predictor(device="cpu")
    for seed, image in zip((1, 2), images):
        result_set = ResultSet.objects.get(job=job, image=image)
        assert result_set.status == ResultSetStatus.COMPLETE
        assert result_set.detections.count() == len(predictor.predict(synth_rgb(seed)[0], um_per_px=0.25))
    cached_images = list((settings.MEDIA_CACHE_DIR / "files").glob("*/*"))
    assert sorted(p.name.split("-", 1)[1] for p in cached_images) == sorted(
        f"{i.stored_sha256}.png" for i in images)
    predictor_cache_clear()


def test_the_coco_zip_holds_the_images_from_the_bucket(cast, s3_storage, settings):
    from portal.results.models import Detection
    from portal.review.tests.conftest import client_for
    from portal.testing.review import make_reviewable_image

    image = make_reviewable_image(cast.a, n=6)
    reviewer = client_for(cast.a.reviewer)
    for detection in Detection.objects.filter(result_set__image=image).order_by("index")[:3]:
        decided = reviewer.put(reverse("api-review-decision", kwargs={"detection_id": detection.pk}),
                               {"verdict": "accept", "class_name": ""}, format="json")
        assert decided.status_code == 200, decided.content
    response = client_for(cast.a.reviewer).get(reverse("review:coco-zip"), {"session": str(image.session_id)})
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    with image.display_file.open("rb") as handle:
        assert archive.read(f"images/{image.pk}.png") == handle.read()


def test_validation_crops_are_cut_from_the_display_image_in_the_bucket(cast, s3_storage, settings):
    from portal.testing import validation as vt
    from portal.validation.crops import CROP_PX

    study = vt.make_open_study(cast, cast.a)
    image = study.sessions.first().images.first()
    assert f"{_location(settings)}/{image.display_file.name}" in _keys(s3_storage, _location(settings) + "/")
    crops = [PILImage.open(io.BytesIO(bytes(cell.crop_png))) for cell in study.cells.all()]
    assert len(crops) == 14 and {c.size for c in crops} == {(CROP_PX, CROP_PX)}
    assert len({bytes(c.tobytes()) for c in crops}) > 1  # real pixels, not one padding colour
