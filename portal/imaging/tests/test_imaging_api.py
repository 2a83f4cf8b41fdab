"""Patients, sessions and images through the API: codes, notes, filters, pagination, query counts."""
from __future__ import annotations

import re
from datetime import date

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.imaging.models import ImageStatus, Patient
from portal.testing.imaging import make_image, make_patient, make_session


def test_patient_codes_are_random_pseudonyms_of_the_center(client, cast):
    client.force_login(cast.a.uploader)
    codes = {client.post(reverse("api-patient-list"), {"center": str(cast.a.center.pk)},
                         content_type="application/json").json()["code"] for _ in range(5)}
    assert len(codes) == 5
    assert all(re.fullmatch(r"CA-P-[2-9A-HJKMNP-TV-Z]{5}", c) for c in codes)
    assert not any(f.name in ("name", "date_of_birth", "notes") for f in Patient._meta.get_fields())


def test_a_patient_cannot_be_created_in_another_center(client, cast):
    client.force_login(cast.a.uploader)
    response = client.post(reverse("api-patient-list"), {"center": str(cast.b.center.pk)},
                           content_type="application/json")
    assert response.status_code == 404 and Patient.objects.count() == 0


def test_session_notes_are_limited_and_warned(client, cast):
    patient = make_patient(cast.a)
    client.force_login(cast.a.uploader)
    response = client.post(reverse("api-session-list"), {"patient": str(patient.pk), "acquisition_date": "2024-01-01",
                                                         "notes": "x" * 501}, content_type="application/json")
    assert response.status_code == 400 and "notes" in response.json()["extra"]["fields"]
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    notes = schema["components"]["schemas"]["SessionCreateInputRequest"]["properties"]["notes"]
    text = notes["oneOf"][0] if "oneOf" in notes else notes  # blank allowed: a oneOf with ""
    assert text["maxLength"] == 500 and "Never enter names" in notes["description"]


def test_session_dates_are_dates_only(client, cast):
    patient = make_patient(cast.a)
    client.force_login(cast.a.uploader)
    response = client.post(reverse("api-session-list"), {"patient": str(patient.pk),
                                                         "acquisition_date": "2024-01-01T10:11:12"},
                           content_type="application/json")
    assert response.status_code == 400


def test_lists_filter_by_center_patient_date_and_status(client, cast):
    early = make_session(cast.a, acquisition_date=date(2023, 1, 5))
    late = make_session(cast.a, acquisition_date=date(2024, 6, 1))
    img_early, img_late = make_image(cast.a, session=early), make_image(cast.a, session=late)
    img_late.status = ImageStatus.ANALYZED
    img_late.save()
    make_image(cast.b)
    client.force_login(cast.a.reviewer)

    def ids(name, **params):
        return {r["id"] for r in client.get(reverse(name), params).json()["results"]}

    assert ids("api-session-list", date_from="2024-01-01") == {str(late.pk)}
    assert ids("api-session-list", date_to="2023-12-31") == {str(early.pk)}
    assert ids("api-session-list", patient_code=early.patient.code) == {str(early.pk)}
    assert ids("api-image-list", status="analyzed") == {str(img_late.pk)}
    assert ids("api-image-list", center=str(cast.a.center.pk)) == {str(img_early.pk), str(img_late.pk)}
    assert ids("api-image-list", center=str(cast.b.center.pk)) == set()  # never the other center's
    assert ids("api-patient-list", code=late.patient.code) == {str(late.patient.pk)}
    assert client.get(reverse("api-session-list"), {"date_from": "yesterday"}).status_code == 400


def test_lists_are_paginated_with_a_bounded_number_of_queries(client, cast):
    session = make_session(cast.a)
    for _ in range(7):
        make_image(cast.a, session=session)
    client.force_login(cast.a.uploader)
    with CaptureQueriesContext(connection) as queries:
        body = client.get(reverse("api-image-list"), {"page_size": 5}).json()
    assert body["count"] == 7 and len(body["results"]) == 5 and body["next"]
    first_count = len(queries)
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("api-image-list"), {"page_size": 50})
    assert len(queries) == first_count  # no query per row


def test_token_authentication_works(client, cast):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=cast.a.uploader)
    response = client.get(reverse("api-session-list"), HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200


def test_a_validator_is_blinded_from_imaging(client, cast):
    image = make_image(cast.a)
    client.force_login(cast.a.validator)
    assert client.get(reverse("api-image-list")).status_code == 403
    assert client.get(reverse("api-image-display", kwargs={"pk": image.pk})).status_code == 404


def test_an_image_file_opened_for_a_read_whose_audit_fails_is_closed(client, cast, settings, tmp_path,
                                                                      monkeypatch):
    """The file is opened before the read is recorded (a missing file is a 404, no read): when the record
    fails, the view closes the response's stream instead of leaking it."""
    import pytest

    from portal.imaging import services
    from portal.testing.media import audit_insert_fails, opened_streams
    from portal.testing.review import make_reviewable_image

    settings.MEDIA_ROOT = tmp_path / "media"
    image = make_reviewable_image(cast.a, n=1)
    opened = opened_streams(monkeypatch)
    monkeypatch.setattr(services, "image_data_read_record", audit_insert_fails)
    client.force_login(cast.a.reviewer)
    with pytest.raises(RuntimeError, match="audit insert failed"):
        client.get(reverse("api-image-display", kwargs={"pk": image.pk}))
    assert len(opened) == 1 and opened[0].closed
