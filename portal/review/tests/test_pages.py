from datetime import date

from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.review.tests.conftest import client_for
from portal.testing.review import make_reviewable_image, make_session


def test_session_list_filters_by_patient_status_and_date(cast):
    s1 = make_session(cast.a, patient_code="CA-AAA111", acquisition_date=date(2024, 1, 10))
    make_reviewable_image(cast.a, session=s1)
    s2 = make_session(cast.a, patient_code="CA-BBB222", acquisition_date=date(2024, 6, 1))
    make_session(cast.b, patient_code="CB-CCC333")
    c = client_for(cast.a.reviewer)
    page = c.get(reverse("review:session-list")).content.decode()
    assert "CA-AAA111" in page and "CA-BBB222" in page and "CB-CCC333" not in page
    page = c.get(reverse("review:session-list"), {"patient": "aaa"}).content.decode()
    assert "CA-AAA111" in page and "CA-BBB222" not in page
    page = c.get(reverse("review:session-list"), {"status": "analyzed"}).content.decode()
    assert "CA-AAA111" in page and "CA-BBB222" not in page
    page = c.get(reverse("review:session-list"), {"status": "awaiting"}).content.decode()
    assert "CA-AAA111" not in page and "CA-BBB222" in page
    page = c.get(reverse("review:session-list"), {"date_from": "2024-03-01"}).content.decode()
    assert "CA-AAA111" not in page and "CA-BBB222" in page
    page = c.get(reverse("review:session-list"), {"center": str(cast.b.center.pk)}).content.decode()
    assert "CA-AAA111" in page  # a center the user does not belong to is ignored, not honoured
    assert str(s2.pk) in page


def test_session_page_shows_thumbnails_counts_per_class_and_job_status(cast, image):
    r = client_for(cast.a.reviewer).get(reverse("review:session-detail", kwargs={"pk": image.session_id}))
    assert r.status_code == 200
    page = r.content.decode()
    assert reverse("review:image-thumb", kwargs={"image_id": image.pk}) in page
    assert reverse("review:viewer", kwargs={"image_id": image.pk}) in page
    assert "round spermatid" in page and "no analysis yet" in page
    assert "Make a pick list" in page


def test_uploader_sees_the_session_read_only(cast, image):
    c = client_for(cast.a.uploader)
    page = c.get(reverse("review:session-detail", kwargs={"pk": image.session_id})).content.decode()
    assert "Make a pick list" not in page
    viewer = c.get(reverse("review:viewer", kwargs={"image_id": image.pk})).content.decode()
    assert 'id="btn-accept"' not in viewer and 'id="tool-polygon"' not in viewer


def test_review_pages_refuse_other_roles_and_centers(cast, image):
    url = reverse("review:viewer", kwargs={"image_id": image.pk})
    assert client_for(cast.a.validator).get(url).status_code == 403
    assert client_for(cast.a.stain).get(url).status_code == 403
    assert client_for(cast.b.reviewer).get(url).status_code == 404
    assert client_for(cast.auditor).get(url).status_code == 404
    from django.test import Client

    assert Client().get(url).status_code == 302


def test_viewer_page_has_labelled_controls_and_its_config(cast, image):
    page = client_for(cast.a.admin).get(reverse("review:viewer", kwargs={"image_id": image.pk})).content.decode()
    assert 'id="viewer-config"' in page and 'id="visible-count"' in page
    assert '<label class="inline" for="score-threshold">' in page
    assert 'id="adj-accept"' in page
    assert "<script>" not in page and 'style="' not in page  # CSP: no inline script or style


def test_image_files_are_served_to_members_and_audited(cast, image, detections):
    c = client_for(cast.a.reviewer)
    r = c.get(reverse("review:image-display", kwargs={"image_id": image.pk}))
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    b"".join(r.streaming_content)
    assert c.get(reverse("review:image-thumb", kwargs={"image_id": image.pk})).status_code == 200
    r = c.get(reverse("review:detection-crop", kwargs={"detection_id": detections[0].pk}))
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"image.read", "review.crop.read"} <= actions
    other = client_for(cast.b.reviewer)
    assert other.get(reverse("review:image-display", kwargs={"image_id": image.pk})).status_code == 404
    assert other.get(reverse("review:detection-crop", kwargs={"detection_id": detections[0].pk})).status_code == 404


def test_large_images_get_a_reduced_preview_for_the_first_paint(cast):
    from PIL import Image as PILImage

    from portal.testing.review import make_image

    wide = make_image(cast.a, width=4200, height=60)
    c = client_for(cast.a.reviewer)
    page = c.get(reverse("review:viewer", kwargs={"image_id": wide.pk})).content.decode()
    preview_url = reverse("review:image-preview", kwargs={"image_id": wide.pk})
    assert preview_url in page
    r = c.get(preview_url)
    assert r.status_code == 200 and r["Content-Type"] == "image/jpeg"
    import io

    assert max(PILImage.open(io.BytesIO(r.content)).size) <= 2048
    assert c.get(preview_url).content == r.content  # kept, not remade
    small = make_image(cast.a)
    page = c.get(reverse("review:viewer", kwargs={"image_id": small.pk})).content.decode()
    assert "preview.jpg" not in page


def test_every_image_variant_is_audited_once_and_cached_only_privately(cast, image, detections):
    c = client_for(cast.a.reviewer)
    urls = {"display": reverse("review:image-display", kwargs={"image_id": image.pk}),
            "preview": reverse("review:image-preview", kwargs={"image_id": image.pk}),
            "thumbnail": reverse("review:image-thumb", kwargs={"image_id": image.pk}),
            "crop": reverse("review:detection-crop", kwargs={"detection_id": detections[0].pk})}
    for variant, url in urls.items():
        before = AuditEvent.objects.count()
        r = c.get(url)
        if r.status_code == 404 and variant == "preview":
            continue  # a small image has no reduced preview
        assert r.status_code == 200, variant
        assert r["Cache-Control"] == "private, max-age=3600", variant
        event = AuditEvent.objects.order_by("-sequence").first()
        assert AuditEvent.objects.count() == before + 1, variant
        assert event.center_id == image.center_id, variant
        if variant == "crop":
            assert event.action == "review.crop.read"
        else:
            assert (event.action, event.after) == ("image.read", {"variant": variant})


def test_a_display_file_opened_for_a_read_whose_audit_fails_is_closed(cast, image, monkeypatch):
    """The stream is opened before the read is recorded (a missing file is a 404, no read): when the
    record fails, the view closes the stream instead of leaking it."""
    import pytest

    from portal.review import views
    from portal.testing.media import audit_insert_fails, opened_streams

    opened = opened_streams(monkeypatch)
    monkeypatch.setattr(views, "audit_record_read", audit_insert_fails)
    with pytest.raises(RuntimeError, match="audit insert failed"):
        client_for(cast.a.reviewer).get(reverse("review:image-display", kwargs={"image_id": image.pk}))
    assert len(opened) == 1 and opened[0].closed
