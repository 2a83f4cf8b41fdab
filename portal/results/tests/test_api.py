"""Results API: result sets of an image and detections of a set; audited reads; centers; blinding."""
from __future__ import annotations

from portal.audit.models import AuditEvent
from portal.testing.jobs import build_job_world


def test_reviewer_reads_detections_and_the_read_is_audited(cast, storage, client):
    world = build_job_world(cast, cast.a)
    client.force_login(cast.a.reviewer)
    sets = client.get(f"/api/v1/images/{world['image'].pk}/result-sets/").json()
    assert [s["id"] for s in sets] == [str(world["result_set"].pk)] and sets[0]["detection_count"] == 1
    body = client.get(f"/api/v1/result-sets/{world['result_set'].pk}/").json()
    assert body["detections"][0]["box"] == [1.0, 1.0, 5.0, 5.0]
    assert body["detections"][0]["class_name"] == "round_spermatid"
    event = AuditEvent.objects.get(action="detections.read")
    assert event.actor == cast.a.reviewer and event.object_id == str(world["result_set"].pk)


def test_it_refuses_other_centers_result_sets(cast, storage, client):
    world = build_job_world(cast, cast.a)
    client.force_login(cast.b.reviewer)
    assert client.get(f"/api/v1/images/{world['image'].pk}/result-sets/").status_code == 404
    assert client.get(f"/api/v1/result-sets/{world['result_set'].pk}/").status_code == 404
    assert not AuditEvent.objects.filter(action="detections.read").exists()


def test_validators_get_no_detections_of_a_blinded_image(cast, storage, client):
    from portal.imaging.models import SessionBlinding

    world = build_job_world(cast, cast.a)
    SessionBlinding.objects.create(user=cast.a.validator, session_id=world["image"].session_id, source="test")
    client.force_login(cast.a.validator)
    response = client.get(f"/api/v1/result-sets/{world['result_set'].pk}/")
    assert response.status_code == 404 and "detections" not in response.json()  # like an unknown object
    assert client.get(f"/api/v1/images/{world['image'].pk}/result-sets/").status_code == 404
    client.force_login(cast.a.reviewer)
    assert client.get(f"/api/v1/result-sets/{world['result_set'].pk}/").status_code == 200
