"""Stage positions of a session's fields: entered in a form or imported from CSV, all rows or none."""
from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.imaging.lib.stagecsv import parse_stage_csv
from portal.imaging.models import Image
from portal.imaging.services import images_upload
from portal.testing.imaging import make_session, png_upload

IMAGES = [("11111111-1111-1111-1111-111111111111", "field-01.tif"),
          ("22222222-2222-2222-2222-222222222222", "field-02.tif"),
          ("33333333-3333-3333-3333-333333333333", "multi.tif"),
          ("44444444-4444-4444-4444-444444444444", "multi.tif")]


def test_it_reads_rows_by_file_name_or_image_id_in_micrometres():
    text = ("File name,Stage X (µm),Stage Y (µm),units\n"
            "field-01.tif,10250.5,-3120,µm\n"
            "FIELD-02.TIF,0,1e3,um\n")
    parsed = parse_stage_csv(text, images=IMAGES)
    assert parsed.errors == []
    assert parsed.positions == {IMAGES[0][0]: (10250.5, -3120.0), IMAGES[1][0]: (0.0, 1000.0)}
    parsed = parse_stage_csv(f"image_id,stage_x_um,stage_y_um\n{IMAGES[3][0]},1,2\n", images=IMAGES)
    assert parsed.errors == [] and parsed.positions == {IMAGES[3][0]: (1.0, 2.0)}


def test_each_bad_row_gets_its_own_message():
    text = ("file_name,stage_x_um,stage_y_um,units\n"
            "field-01.tif,12,13,µm\n"
            "nowhere.tif,1,2,µm\n"
            "field-02.tif,abc,2,µm\n"
            "field-02.tif,1,2,mm\n"
            "multi.tif,1,2,µm\n"
            "field-01.tif,5,5,µm\n"
            "field-02.tif,2000000,0,µm\n")
    parsed = parse_stage_csv(text, images=IMAGES)
    messages = {e["row"]: e["message"] for e in parsed.errors}
    assert sorted(messages) == [3, 4, 5, 6, 7, 8]
    assert "nowhere.tif" in messages[3]
    assert "numbers" in messages[4]
    assert "mm" in messages[5]
    assert "image_id" in messages[6]
    assert "row 2" in messages[7]
    assert "micrometres" in messages[8]


def test_a_file_without_the_right_columns_is_refused_on_its_first_row():
    parsed = parse_stage_csv("a,b,c\n1,2,3\n", images=IMAGES)
    assert parsed.positions == {} and parsed.errors[0]["row"] == 1
    assert parse_stage_csv("", images=IMAGES).errors[0]["row"] == 1
    assert parse_stage_csv("file_name,x,y\n", images=IMAGES).errors[0]["message"].startswith("The file has no rows")


def _session_with_images(cast, *names):
    session = make_session(cast.a)
    result = images_upload(session=session, files=[png_upload(n) for n in names], user=cast.a.uploader)
    assert not result.errors
    return session, result.created


def _csv(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("positions.csv", text.encode("utf-8"), content_type="text/csv")


def test_the_csv_import_saves_every_row_and_audits_each_change(cast, client):
    session, (one, two) = _session_with_images(cast, "f1.png", "f2.png")
    client.force_login(cast.a.uploader)
    url = reverse("imaging:session-stage", kwargs={"pk": session.pk})
    r = client.post(url, {"mode": "csv", "csv": _csv("file_name,stage_x_um,stage_y_um\nf1.png,100,200\nf2.png,-5,7.5\n")})
    assert r.status_code == 302
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.stage_x_um, one.stage_y_um, two.stage_x_um, two.stage_y_um) == (100.0, 200.0, -5.0, 7.5)
    assert AuditEvent.objects.filter(action="image.update", object_id=str(one.pk)).exists()


def test_a_csv_with_one_bad_row_saves_nothing_and_lists_the_row(cast, client):
    session, (one, two) = _session_with_images(cast, "f1.png", "f2.png")
    client.force_login(cast.a.uploader)
    url = reverse("imaging:session-stage", kwargs={"pk": session.pk})
    r = client.post(url, {"mode": "csv", "csv": _csv("file_name,stage_x_um,stage_y_um\nf1.png,100,200\nf3.png,1,1\n")})
    assert r.status_code == 400
    html = r.content.decode()
    assert 'data-row="3"' in html and "f3.png" in html and "Nothing was saved" in html
    assert not Image.objects.filter(session=session, stage_x_um__isnull=False).exists()


def test_the_form_sets_and_clears_positions_and_refuses_half_a_position(cast, client):
    session, (one, two) = _session_with_images(cast, "f1.png", "f2.png")
    client.force_login(cast.a.admin)
    url = reverse("imaging:session-stage", kwargs={"pk": session.pk})
    r = client.post(url, {"mode": "form", f"x-{one.pk}": "1.5", f"y-{one.pk}": "2.5", f"x-{two.pk}": "", f"y-{two.pk}": ""})
    assert r.status_code == 302
    one.refresh_from_db()
    assert (one.stage_x_um, one.stage_y_um) == (1.5, 2.5)
    r = client.post(url, {"mode": "form", f"x-{one.pk}": "9", f"y-{one.pk}": "", f"x-{two.pk}": "3", f"y-{two.pk}": "4"})
    assert r.status_code == 400 and "Image 1" in r.content.decode()
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.stage_x_um, two.stage_x_um) == (1.5, None)


def test_reviewers_and_other_centers_cannot_set_positions(cast, client):
    session, (one,) = _session_with_images(cast, "f1.png")
    url = reverse("imaging:session-stage", kwargs={"pk": session.pk})
    for user in (cast.a.reviewer, cast.b.uploader, cast.a.validator):
        client.force_login(user)
        assert client.post(url, {"mode": "form", f"x-{one.pk}": "1", f"y-{one.pk}": "1"}).status_code == 404
    one.refresh_from_db()
    assert one.stage_x_um is None
