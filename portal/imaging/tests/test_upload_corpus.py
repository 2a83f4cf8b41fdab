"""The upload corpus: valid files accepted with the right metadata; bad files refused by name and reason."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image as PILImage

from portal.imaging.models import Image
from portal.imaging.tests import corpus
from portal.testing.imaging import make_session

VALID = {
    "field.png": (corpus.png_bytes, 1),
    "field.jpg": (corpus.jpeg_bytes, 1),
    "field.bmp": (corpus.bmp_bytes, 1),
    "field8.tif": (corpus.tiff_bytes, 1),
    "field16.tiff": (corpus.tiff16_bytes, 1),
    "stack.tif": (corpus.multipage_tiff_bytes, 3),
    "scan.ome.tif": (corpus.ome_tiff_bytes, 2),
    "imagej.tif": (corpus.imagej_tiff_bytes, 1),
    "cm.tif": (corpus.tiff_cm_resolution_bytes, 1),
    "phys.png": (corpus.png_phys_bytes, 1),
    "density.jpg": (corpus.jpeg_density_bytes, 1),
}

INVALID = {
    "polyglot-zip.png": (corpus.polyglot_png_zip_bytes, "polyglot"),
    "polyglot-html.jpg": (corpus.polyglot_jpeg_html_bytes, "polyglot"),
    "renamed.png": (corpus.jpeg_bytes, "content is JPEG but the name ends in '.png'"),
    "truncated.jpg": (corpus.truncated_jpeg_bytes, "truncated"),
    "one-byte.png": (lambda: b"\x89", "not an image"),
    "bomb.png": (corpus.bomb_png_bytes, "900,000,000 pixels exceeds the limit"),
    "report.tif": (corpus.non_image_bytes, "not a PNG, JPEG, TIFF or BMP"),
    "empty.png": (lambda: b"", "empty"),
}


def upload(client, session, files: dict[str, bytes]):
    url = reverse("api-session-image-upload", kwargs={"pk": session.pk})
    payload = {"files": [SimpleUploadedFile(name, data) for name, data in files.items()]}
    return client.post(url, payload)


def media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture
def session(cast):
    return make_session(cast.a)


@pytest.fixture
def uploader_client(client, cast):
    client.force_login(cast.a.uploader)
    return client


def test_it_accepts_every_valid_file_of_the_corpus_in_one_upload(uploader_client, session, settings):
    files = {name: make() for name, (make, _) in VALID.items()}
    response = upload(uploader_client, session, files)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["errors"] == []
    assert len(body["created"]) == sum(pages for _, pages in VALID.values()) == 14
    assert Image.objects.filter(session=session).count() == 14
    for image in Image.objects.filter(session=session):
        for field in (image.file, image.display_file, image.thumbnail_file):
            path = Path(settings.MEDIA_ROOT) / field.name
            assert path.is_file() and path.stat().st_size > 0
        assert hashlib.sha256((Path(settings.MEDIA_ROOT) / image.file.name).read_bytes()).hexdigest() == image.stored_sha256
    # no temporary files are left behind
    assert not [p for p in media_files(settings) if p.name.startswith(".upload-")]


def test_it_turns_each_page_of_a_multipage_tiff_into_an_image(uploader_client, session):
    data = corpus.multipage_tiff_bytes(3)
    body = upload(uploader_client, session, {"stack.tif": data}).json()
    assert sorted(i["page_index"] for i in body["created"]) == [0, 1, 2]
    assert {i["original_sha256"] for i in body["created"]} == {hashlib.sha256(data).hexdigest()}


def test_it_keeps_16_bit_pixels_and_stores_the_display_window(uploader_client, session, settings):
    data = corpus.tiff16_bytes()
    original = tifffile.imread(io.BytesIO(data))
    body = upload(uploader_client, session, {"deep.tif": data}).json()
    image = Image.objects.get(pk=body["created"][0]["id"])
    assert image.bit_depth == 16 and image.stored_format == "tiff"
    stored = tifffile.imread(Path(settings.MEDIA_ROOT) / image.file.name)
    assert stored.dtype == np.uint16 and np.array_equal(stored, original)  # lossless, still 16-bit
    # 12-bit samples (0..4000) in a 16-bit container: the window is the 12-bit range, and the single
    # 65535 outlier does not set it (it clips)
    assert (image.display_window_low, image.display_window_high) == (0.0, 4095.0)
    display = PILImage.open(Path(settings.MEDIA_ROOT) / image.display_file.name)
    assert display.mode == "L"
    expected = np.clip(np.rint(original.astype(np.float64) * (255.0 / 4095.0)), 0, 255)
    assert np.array_equal(np.array(display), expected.astype(np.uint8))


def test_it_uses_8_bit_pixels_unchanged_for_display(uploader_client, session, settings):
    body = upload(uploader_client, session, {"a.png": corpus.png_bytes()}).json()
    image = Image.objects.get(pk=body["created"][0]["id"])
    assert (image.display_window_low, image.display_window_high) == (0.0, 255.0)
    stored = np.array(PILImage.open(Path(settings.MEDIA_ROOT) / image.file.name))
    display = np.array(PILImage.open(Path(settings.MEDIA_ROOT) / image.display_file.name))
    assert np.array_equal(stored, corpus.gradient()) and np.array_equal(display, stored)


@pytest.mark.parametrize(
    ("name", "um", "source"),
    [
        ("scan.ome.tif", 0.1625, "ome_tiff"),
        ("imagej.tif", 0.25, "imagej_tiff"),
        ("cm.tif", 0.5, "tiff_resolution"),
        ("phys.png", 0.4, "png_phys"),
        ("density.jpg", 0.5, "jpeg_density"),
    ],
)
def test_it_reads_the_pixel_size_the_file_states(uploader_client, session, name, um, source):
    data = VALID[name][0]()
    body = upload(uploader_client, session, {name: data}).json()
    for image in body["created"]:
        assert image["um_per_px"] == pytest.approx(um, rel=1e-3)
        assert image["um_per_px_source"] == source
        assert image["needs_um_per_px"] is False


def test_it_keeps_the_ome_stage_position_per_page(uploader_client, session):
    body = upload(uploader_client, session, {"scan.ome.tif": corpus.ome_tiff_bytes()}).json()
    positions = sorted((i["page_index"], i["stage_x_um"], i["stage_y_um"]) for i in body["created"])
    assert positions == [(0, 1500.5, -220.25), (1, 1600.0, -200.0)]


def test_a_72_dpi_default_counts_as_absent_and_the_session_value_is_used(cast, uploader_client):
    session = make_session(cast.a, um_per_px=0.33)
    body = upload(uploader_client, session, {"dpi.jpg": corpus.jpeg_72dpi_bytes()}).json()
    assert body["created"][0]["um_per_px"] == pytest.approx(0.33)
    assert body["created"][0]["um_per_px_source"] == "session"


def test_an_image_without_any_pixel_size_is_flagged_and_can_be_set_by_hand(uploader_client, session, cast):
    body = upload(uploader_client, session, {"dpi.jpg": corpus.jpeg_72dpi_bytes()}).json()
    image = body["created"][0]
    assert image["um_per_px"] is None and image["needs_um_per_px"] is True and image["um_per_px_source"] == "none"
    url = reverse("api-image-detail", kwargs={"pk": image["id"]})
    assert uploader_client.patch(url, {"um_per_px": 9}, content_type="application/json").status_code == 400
    response = uploader_client.patch(url, {"um_per_px": 0.21}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["um_per_px"] == 0.21 and response.json()["um_per_px_source"] == "manual"


@pytest.mark.parametrize("name", list(INVALID))
def test_it_refuses_a_bad_file_naming_the_file_and_the_reason(uploader_client, session, settings, name):
    make, reason = INVALID[name]
    response = upload(uploader_client, session, {name: make()})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["created"] == []
    [error] = body["errors"]
    assert error["file"] == name
    assert name in error["message"] and reason in error["message"]
    assert name in body["message"]
    assert Image.objects.count() == 0
    assert media_files(settings) == []


def test_it_refuses_a_file_over_the_size_limit(uploader_client, session, settings):
    settings.UPLOAD_MAX_FILE_BYTES = 1000
    data = corpus.jpeg_bytes()
    assert len(data) > 1000
    response = upload(uploader_client, session, {"big.jpg": data})
    assert response.status_code == 400
    assert "big.jpg" in response.json()["message"] and "exceed the limit of 1,000 bytes" in response.json()["message"]
    assert Image.objects.count() == 0


def test_it_refuses_too_many_pages_from_the_header(uploader_client, session, settings):
    settings.UPLOAD_MAX_PAGES = 2
    response = upload(uploader_client, session, {"stack.tif": corpus.multipage_tiff_bytes(3)})
    assert response.status_code == 400 and "3 pages exceed the limit of 2" in response.json()["message"]


def test_a_bomb_is_refused_without_decoding_it(uploader_client, session, monkeypatch):
    from portal.imaging.lib import imagefile

    def boom(*args, **kwargs):
        raise AssertionError("decoded a bomb")

    monkeypatch.setattr(imagefile, "_inspect_pillow", boom)
    response = upload(uploader_client, session, {"bomb.png": corpus.bomb_png_bytes()})
    assert response.status_code == 400 and "decompression bomb" in response.json()["message"]


def test_uploads_are_per_file_good_files_are_kept_when_others_are_refused(uploader_client, session, settings):
    response = upload(uploader_client, session, {
        "good.png": corpus.png_bytes(), "truncated.jpg": corpus.truncated_jpeg_bytes(),
        "good.tif": corpus.tiff16_bytes(),
    })
    assert response.status_code == 207
    body = response.json()
    assert len(body["created"]) == 2
    assert [e["file"] for e in body["errors"]] == ["truncated.jpg"]
    assert Image.objects.filter(session=session).count() == 2
    assert len(media_files(settings)) == 6  # stored + display + thumbnail per image, nothing else


def test_a_refused_upload_leaves_what_is_stored_untouched(uploader_client, session, settings):
    upload(uploader_client, session, {"good.png": corpus.png_bytes()})
    before = {p: p.read_bytes() for p in media_files(settings)}
    rows = list(Image.objects.values_list("id", "stored_sha256"))
    upload(uploader_client, session, {"good.png": corpus.polyglot_png_zip_bytes(),
                                      "also.jpg": corpus.truncated_jpeg_bytes()})
    assert {p: p.read_bytes() for p in media_files(settings)} == before
    assert list(Image.objects.values_list("id", "stored_sha256")) == rows


def test_a_failure_while_saving_rows_removes_the_files_already_written(uploader_client, session, settings, monkeypatch):
    from portal.imaging import services

    def fail(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "audit_record", fail)
    with pytest.raises(RuntimeError):
        services.images_upload(session=session, user=session.created_by,
                               files=[SimpleUploadedFile("a.png", corpus.png_bytes())])
    assert Image.objects.count() == 0
    assert media_files(settings) == []


def test_duplicates_are_detected_within_the_center_only(client, cast, settings):
    data = corpus.png_bytes()
    session_a, session_a2, session_b = make_session(cast.a), make_session(cast.a), make_session(cast.b)
    client.force_login(cast.a.uploader)
    assert upload(client, session_a, {"x.png": data}).status_code == 201
    response = upload(client, session_a2, {"x.png": data})
    assert response.status_code == 409
    assert "already uploaded in this center" in response.json()["message"]
    client.force_login(cast.b.uploader)
    response = upload(client, session_b, {"x.png": data})
    assert response.status_code == 201  # center B is never told that center A holds the same file
    assert "already" not in response.content.decode()


def test_images_stored_is_sent_after_commit_with_the_new_images(cast, session, django_capture_on_commit_callbacks):
    from portal.imaging import services
    from portal.imaging.signals import images_stored

    calls = []

    def receiver(**kw):
        calls.append(kw)

    images_stored.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            result = services.images_upload(session=session, user=cast.a.uploader,
                                            files=[SimpleUploadedFile("m.tif", corpus.multipage_tiff_bytes(2))])
        assert calls == []  # nothing is announced before the commit
        for callback in callbacks:
            callback()
    finally:
        images_stored.disconnect(receiver)
    assert len(calls) == 1
    assert calls[0]["session"] == session and calls[0]["user"] == cast.a.uploader
    assert [i.pk for i in calls[0]["images"]] == [i.pk for i in result.created]


def test_an_uploader_cannot_upload_into_another_centers_session(client, cast):
    session_b = make_session(cast.b)
    client.force_login(cast.a.uploader)
    assert upload(client, session_b, {"x.png": corpus.png_bytes()}).status_code == 404
    assert Image.objects.count() == 0
