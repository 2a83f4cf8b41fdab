"""Stain entry at the bench through the API: fluorescence uploads (refusals through the imaging checks),
registration, the cells' positions and CSV import (preview, per-row errors, confirm)."""
from __future__ import annotations

import math

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from rest_framework.test import APIClient

from portal.audit.models import AuditEvent
from portal.imaging.tests import corpus
from portal.testing import staining
from portal.testing import validation as vt
from portal.validation import services
from portal.validation.models import RegistrationMethod, StainImage, StainResult

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    client.force_login(user)  # the PNG views are HTML views (session login)
    return client


@pytest.fixture
def study(cast):
    return vt.make_open_study(cast, cast.a)


def _upload(client, study, data: bytes, *, name: str = "prm1.png", channel: str = "prm1", **extra):
    field = study.fields.first()
    return client.post(f"/api/v1/validation/stain/studies/{study.pk}/fields/{field.public_id}/images/",
                       {"channel": channel, "file": ContentFile(data, name=name), **extra}, format="multipart")


def _stored_stain_files(study) -> list[str]:
    try:
        return default_storage.listdir(f"stain/{study.pk}")[1]
    except FileNotFoundError:
        return []


def test_it_stores_a_fluorescence_image_through_the_storage_api_and_audits_it(cast, study):
    client = _client(cast.a.stain)
    response = _upload(client, study, staining.fluorescence_tiff16(), name="field1-prm1.tif")
    assert response.status_code == 201, response.content
    [body] = response.json()
    assert (body["channel"], body["width"], body["height"]) == ("prm1", 400, 300)
    assert body["registration"]["method"] == "none"
    stain_image = StainImage.objects.get(pk=body["id"])
    assert stain_image.bit_depth == 16 and default_storage.exists(stain_image.file.name)
    png = client.get(body["image_url"])
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert AuditEvent.objects.filter(action="validation.stain_image.create").count() == 1
    assert AuditEvent.objects.filter(action="validation.stain_image.read").count() == 1
    fields = client.get(f"/api/v1/validation/stain/studies/{study.pk}/fields/").json()
    assert [s["id"] for s in fields[0]["stain_images"]] == [body["id"]]
    assert client.get(fields[0]["image_url"]).status_code == 200


@pytest.mark.parametrize(("name", "data", "message"), [
    ("notes.png", corpus.non_image_bytes(), "not a PNG, JPEG, TIFF or BMP"),
    ("truncated.jpg", corpus.truncated_jpeg_bytes(), "truncated.jpg:"),
    ("bomb.png", corpus.bomb_png_bytes(), "decompression bomb"),
    ("photo.png", corpus.jpeg_bytes(), "the content is JPEG"),
    ("stack.tif", corpus.multipage_tiff_bytes(2), "one channel per file"),
])
def test_it_refuses_what_the_imaging_checks_refuse_and_stores_nothing(cast, study, name, data, message):
    response = _upload(_client(cast.a.stain), study, data, name=name)
    assert response.status_code == 400, response.content
    assert message in response.json()["message"]
    assert not StainImage.objects.exists() and _stored_stain_files(study) == []


def test_it_refuses_a_second_image_of_the_same_channel_and_accepts_the_other_channel(cast, study):
    client = _client(cast.a.stain)
    assert _upload(client, study, staining.fluorescence_png()).status_code == 201
    again = _upload(client, study, staining.fluorescence_png(seed=1))
    assert again.status_code == 409 and "already has a PRM1 image" in again.json()["message"]
    assert _upload(client, study, staining.fluorescence_png(seed=2), channel="pna").status_code == 201
    assert len(_stored_stain_files(study)) == 2


def test_a_two_channel_file_makes_a_prm1_image_from_green_and_a_pna_image_from_red(cast, study):
    import io

    import numpy as np
    from PIL import Image as PILImage

    prm1 = staining.fluorescence_pixels(shift=(5.0, 0.0))
    pna = staining.fluorescence_pixels(shift=(-5.0, 0.0), seed=1)
    rgb = np.stack([pna, prm1, np.zeros_like(prm1)], axis=-1)
    out = io.BytesIO()
    PILImage.fromarray(rgb, "RGB").save(out, format="PNG")
    client = _client(cast.a.stain)
    response = _upload(client, study, out.getvalue(), name="merge.png", channel="merged")
    assert response.status_code == 201, response.content
    made = {s["channel"]: s for s in response.json()}
    assert set(made) == {"prm1", "pna"}
    for channel, source in (("prm1", prm1), ("pna", pna)):
        with default_storage.open(StainImage.objects.get(pk=made[channel]["id"]).file.name) as handle:
            stored = np.asarray(PILImage.open(handle).convert("L"), dtype=float)
        assert np.corrcoef(stored.ravel(), source.astype(float).ravel())[0, 1] > 0.95
    # each channel at most once per field; a grey file cannot be split
    again = _upload(client, study, out.getvalue(), name="merge.png", channel="merged")
    assert again.status_code == 409
    StainImage.objects.all().delete()
    grey = _upload(client, study, staining.fluorescence_png(), name="grey.png", channel="merged")
    assert grey.status_code == 400 and "must be an RGB image" in grey.json()["message"]


def test_it_refuses_other_centers_field_and_stain_image(cast, study):
    client = _client(cast.a.stain)
    [created] = _upload(client, study, staining.fluorescence_png()).json()
    other = _client(cast.b.stain)
    assert _upload(other, study, staining.fluorescence_png(seed=3)).status_code == 404
    assert other.get(created["image_url"]).status_code == 404
    assert other.put(created["registration_url"], {"method": "auto"}, format="json").status_code == 404
    assert other.delete(created["url"]).status_code == 404
    assert _client(cast.a.validator).get(created["image_url"]).status_code == 404
    assert AuditEvent.objects.filter(action="access.refused").count() >= 4


def test_a_removed_image_loses_its_file_once_committed(cast, study, django_capture_on_commit_callbacks):
    client = _client(cast.a.stain)
    [created] = _upload(client, study, staining.fluorescence_png()).json()
    name = StainImage.objects.get(pk=created["id"]).file.name
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(created["url"]).status_code == 204
    assert not StainImage.objects.exists() and not default_storage.exists(name)
    assert AuditEvent.objects.filter(action="validation.stain_image.delete").count() == 1


def test_manual_registration_stores_the_similarity_of_two_point_pairs(cast, study):
    client = _client(cast.a.stain)
    [created] = _upload(client, study, staining.fluorescence_png()).json()
    response = client.put(created["registration_url"], {
        "method": "manual", "stain_points": [[10, 10], [110, 10]], "field_points": [[30, 40], [30, 240]],
    }, format="json")
    assert response.status_code == 200, response.content
    registration = response.json()["registration"]
    assert registration["method"] == "manual"
    assert registration["scale"] == pytest.approx(2.0)
    assert registration["rotation_deg"] == pytest.approx(90.0)
    assert (registration["offset_x_px"], registration["offset_y_px"]) == pytest.approx((50.0, 20.0))
    assert registration["field_points"] == [[30, 40], [30, 240]]
    assert AuditEvent.objects.filter(action="validation.stain_image.register").count() == 1


@pytest.mark.parametrize(("points", "message"), [
    ({"stain_points": [[10, 10], [11, 10]], "field_points": [[30, 40], [30, 240]]}, "apart"),
    ({"stain_points": [[10, 10], [900, 10]], "field_points": [[30, 40], [30, 240]]}, "outside the stain image"),
    ({"field_points": [[30, 40], [30, 240]]}, "needs stain_points"),
])
def test_manual_registration_refuses_bad_points(cast, study, points, message):
    client = _client(cast.a.stain)
    [created] = _upload(client, study, staining.fluorescence_png()).json()
    response = client.put(created["registration_url"], {"method": "manual", **points}, format="json")
    assert response.status_code == 400 and message in response.json()["message"]
    assert StainImage.objects.get().registration_method == RegistrationMethod.NONE


def test_automatic_registration_finds_the_shift_and_the_scale_from_pixel_sizes(cast, study):
    client = _client(cast.a.stain)
    # the field has 0.2 um/px; the fluorescence camera 0.4 um/px, shifted by (14, -9) field px
    data = staining.fluorescence_png(shift=(14.0, -9.0), scale=2.0)
    [created] = _upload(client, study, data, um_per_px=0.4).json()
    response = client.put(created["registration_url"], {"method": "auto"}, format="json")
    assert response.status_code == 200, response.content
    registration = response.json()["registration"]
    assert registration["method"] == "auto" and registration["scale"] == pytest.approx(2.0)
    assert math.hypot(registration["offset_x_px"] - 14.0, registration["offset_y_px"] + 9.0) < 0.5
    assert registration["quality"] > 10


def test_a_locked_study_refuses_uploads_and_audits_the_refusal(cast):
    study = vt.make_signed_study(cast, cast.a)
    services.study_lock(actor=cast.a.admin, study=study)
    response = _upload(_client(cast.a.stain), study, staining.fluorescence_png())
    assert response.status_code == 409
    assert AuditEvent.objects.filter(action="validation.stain_image.refused").count() == 1


def test_the_stain_cell_list_says_where_each_cell_lies(cast, study):
    cells = _client(cast.a.stain).get(f"/api/v1/validation/stain/studies/{study.pk}/cells/").json()
    field = study.fields.first().public_id
    positions = {(c["x_px"], c["y_px"]) for c in cells}
    assert {c["field"] for c in cells} == {field}
    assert set(vt.PLANTED_PICKS) <= positions and len(cells) == study.cells.count()


# --- CSV import -----------------------------------------------------------------------------------

def _import(client, study, text: str, *, confirm: bool = False):
    return client.post(f"/api/v1/validation/stain/studies/{study.pk}/import/", {"csv": text, "confirm": confirm},
                       format="json")


def test_a_csv_preview_lists_the_rows_and_saves_nothing_then_confirm_saves_them(cast, study):
    client = _client(cast.a.stain)
    first, second = list(study.cells.order_by("public_id")[:2])
    services.stain_enter(actor=cast.a.stain, study=study, public_id=second.public_id, prm1="na")
    text = f"cell,prm1,pna\n{first.public_id},pos,neg\n{second.public_id},neg,\n"
    preview = _import(client, study, text)
    assert preview.status_code == 200, preview.content
    assert preview.json()["saved"] is False
    assert [(r["cell"], r["prm1"], r["pna"], r["prm1_before"]) for r in preview.json()["rows"]] == [
        (first.public_id, "pos", "neg", ""), (second.public_id, "neg", None, "na")]
    assert not StainResult.objects.filter(cell=first).exists()
    saved = _import(client, study, text, confirm=True)
    assert saved.status_code == 200 and saved.json()["saved"] is True
    assert StainResult.objects.get(cell=first).prm1 == "pos" and StainResult.objects.get(cell=first).pna == "neg"
    assert (StainResult.objects.get(cell=second).prm1, StainResult.objects.get(cell=second).pna) == ("neg", "")
    assert AuditEvent.objects.filter(action="validation.stain.import").count() == 1
    assert AuditEvent.objects.filter(action="validation.stain").count() == 3


def test_a_csv_with_any_bad_row_is_refused_whole_with_an_error_per_row(cast, study):
    other_study = vt.make_open_study(cast, cast.a)
    other_center_study = vt.make_open_study(cast, cast.b)
    good = study.cells.order_by("public_id").first()
    text = "\n".join([
        "cell,prm1,pna",
        f"{good.public_id},pos,pos",
        "0000000000000000,pos,pos",
        f"{good.public_id},neg,neg",
        f"{other_study.cells.first().public_id},pos,neg",
        f"{other_center_study.cells.first().public_id},pos,neg",
        f"{study.cells.order_by('public_id')[1].public_id},maybe,pos",
    ])
    for confirm in (False, True):
        response = _import(_client(cast.a.stain), study, text, confirm=confirm)
        assert response.status_code == 400
        errors = response.json()["extra"]["errors"]
        assert [(e["line"], e["code"]) for e in errors] == [
            (3, "unknown_cell"), (4, "duplicate"), (5, "other_study"), (6, "unknown_cell"), (7, "bad_value")]
    assert not StainResult.objects.exists()
    assert not AuditEvent.objects.filter(action__in=["validation.stain", "validation.stain.import"]).exists()


def test_a_csv_file_upload_is_read_like_text(cast, study):
    cell = study.cells.first()
    response = _client(cast.a.stain).post(
        f"/api/v1/validation/stain/studies/{study.pk}/import/",
        {"file": ContentFile(f"cell;prm1;pna\r\n{cell.public_id};+;-\r\n".encode("utf-8-sig"), name="stains.csv"),
         "confirm": "true"}, format="multipart")
    assert response.status_code == 200, response.content
    assert (StainResult.objects.get(cell=cell).prm1, StainResult.objects.get(cell=cell).pna) == ("pos", "neg")


def test_a_csv_import_into_a_locked_study_is_refused(cast):
    study = vt.make_signed_study(cast, cast.a)
    services.study_lock(actor=cast.a.admin, study=study)
    cell = study.cells.first()
    response = _import(_client(cast.a.stain), study, f"cell,prm1,pna\n{cell.public_id},pos,pos\n")
    assert response.status_code == 409


def test_deleting_a_study_removes_its_stain_image_files_through_the_storage_api(
        cast, study, django_capture_on_commit_callbacks):
    client = _client(cast.a.stain)
    created = _upload(client, study, staining.fluorescence_png()).json()
    other = _upload(client, study, staining.fluorescence_png(), channel="pna", name="pna.png").json()
    names = [StainImage.objects.get(pk=c["id"]).file.name for c in (*created, *other)]
    assert len(names) == 2 and all(default_storage.exists(n) for n in names)
    with django_capture_on_commit_callbacks(execute=True):
        study.cells.all().delete()  # cells protect their fields
        study.delete()  # the stain image rows go by cascade, not through stain_image_delete
    assert not StainImage.objects.exists()
    assert [n for n in names if default_storage.exists(n)] == []
    assert _stored_stain_files(study) == []


def test_a_rolled_back_cascade_keeps_the_stain_image_file(cast, study, django_capture_on_commit_callbacks):
    from django.db import transaction

    client = _client(cast.a.stain)
    [created] = _upload(client, study, staining.fluorescence_png()).json()
    name = StainImage.objects.get(pk=created["id"]).file.name
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            study.cells.all().delete()
            study.fields.all().delete()
            assert not StainImage.objects.exists()
            raise RuntimeError("rolled back")
    assert StainImage.objects.filter(pk=created["id"]).exists() and default_storage.exists(name)


def test_a_stain_image_opened_for_a_read_whose_audit_fails_is_closed(cast, study, monkeypatch):
    """The file is opened before the read is recorded (a missing file is a 404, no read): when the record
    fails, the view closes the response's stream instead of leaking it."""
    from portal.testing.media import audit_insert_fails, opened_streams
    from portal.validation import views

    client = _client(cast.a.stain)
    [body] = _upload(client, study, staining.fluorescence_tiff16(), name="field1-prm1.tif").json()
    opened = opened_streams(monkeypatch)
    monkeypatch.setattr(views, "audit_record_read", audit_insert_fails)
    with pytest.raises(RuntimeError, match="audit insert failed"):
        client.get(body["image_url"])
    assert len(opened) == 1 and opened[0].closed
