"""Once a validation study that uses a session opens, the session's measurements and its images' pixel
sizes are frozen: the API answers 409 with a message, the page's form shows an error, nothing changes."""
from __future__ import annotations

import pytest
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.core.errors import Conflict
from portal.imaging.models import Image, ImageSession
from portal.imaging.services import session_freeze, session_update
from portal.testing.imaging import make_image, make_session


@pytest.fixture
def frozen(cast):
    image = make_image(cast.a, session=make_session(cast.a, um_per_px=0.25))
    assert session_freeze(session_ids=[image.session_id], reason="validation study 'S1' opened",
                          actor=cast.a.admin) == 1
    image.refresh_from_db()
    return image


def test_opening_a_validation_study_freezes_its_sessions(cast):
    from portal.testing import validation as vt
    from portal.validation.services import study_open

    study = vt.make_draft_study(cast, cast.a)
    session = study.sessions.get()
    assert session.frozen_at is None
    study_open(actor=cast.a.admin, study=study)
    session.refresh_from_db()
    assert session.frozen_at is not None
    assert session.frozen_reason == f"validation study {study.name!r} opened"
    assert AuditEvent.objects.filter(action="session.freeze", object_id=str(session.pk)).count() == 1


def test_a_frozen_session_refuses_measurement_changes_through_the_api(client, cast, frozen):
    client.force_login(cast.a.uploader)
    url = reverse("api-session-detail", kwargs={"pk": frozen.session_id})
    response = client.patch(url, {"um_per_px": 0.5, "stage_rotation": 90}, content_type="application/json")
    assert response.status_code == 409
    body = response.json()
    assert body["message"].startswith("The session's stage_rotation, um_per_px can no longer change: the "
                                      "session was frozen on ")
    assert "(validation study 'S1' opened)" in body["message"]
    assert body["extra"]["fields"] == ["stage_rotation", "um_per_px"]
    session = ImageSession.objects.get(pk=frozen.session_id)
    assert (session.um_per_px, session.stage_rotation) == (0.25, 0)
    assert client.get(url).json()["frozen_reason"] == "validation study 'S1' opened"


def test_a_frozen_session_still_takes_notes_and_unchanged_values(client, cast, frozen):
    client.force_login(cast.a.uploader)
    url = reverse("api-session-detail", kwargs={"pk": frozen.session_id})
    response = client.patch(url, {"notes": "lamp replaced", "um_per_px": 0.25}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()["notes"] == "lamp replaced"


def test_a_frozen_sessions_image_refuses_a_pixel_size_through_the_api(client, cast, frozen):
    client.force_login(cast.a.uploader)
    response = client.patch(reverse("api-image-detail", kwargs={"pk": frozen.pk}), {"um_per_px": 0.4},
                            content_type="application/json")
    assert response.status_code == 409
    assert response.json()["message"].startswith("The image's pixel size can no longer change")
    assert Image.objects.get(pk=frozen.pk).um_per_px == 0.25


def test_a_frozen_sessions_image_refuses_a_pixel_size_through_the_form(client, cast, frozen):
    client.force_login(cast.a.uploader)
    page = client.post(reverse("imaging:image-um-per-px", kwargs={"pk": frozen.pk}), {"um_per_px": "0.4"},
                       follow=True)
    [message] = list(page.context["messages"])
    assert message.level_tag == "error"
    assert str(message).startswith("The image's pixel size can no longer change")
    assert Image.objects.get(pk=frozen.pk).um_per_px == 0.25


def test_freezing_again_keeps_the_first_date_and_reason(cast, frozen):
    first = frozen.session.frozen_at
    assert session_freeze(session_ids=[frozen.session_id], reason="another study opened") == 0
    session = ImageSession.objects.get(pk=frozen.session_id)
    assert (session.frozen_at, session.frozen_reason) == (first, "validation study 'S1' opened")
    with pytest.raises(Conflict):
        session_update(session=session, user=cast.a.uploader, microscope="other")
