from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.results.models import ResultSet, ResultSetStatus, ResultSource
from portal.review.models import Decision
from portal.review.tests.conftest import client_for


def _url(det):
    return reverse("api-review-decision", kwargs={"detection_id": det.pk})


def test_a_reviewer_decision_is_saved_with_user_time_and_result_set(cast, detections):
    det = detections[0]
    r = client_for(cast.a.reviewer).put(_url(det), {"verdict": "accept"}, format="json")
    assert r.status_code == 200, r.content
    d = Decision.objects.get(detection=det)
    assert (d.reviewer, d.verdict, d.result_set_id) == (cast.a.reviewer, "accept", det.result_set_id)
    assert d.updated_at is not None
    assert r.json()["mine"]["verdict"] == "accept"
    assert r.json()["final"] == {"verdict": "accept", "class_name": det.class_name, "decided_by": "unanimous:1"}
    assert AuditEvent.objects.filter(action="review.decision.create", object_id=str(d.pk)).exists()


def test_reviewers_are_kept_apart_and_agreement_is_reported(cast, detections):
    det = detections[0]
    client_for(cast.a.reviewer).put(_url(det), {"verdict": "accept"}, format="json")
    r = client_for(cast.a.reviewer2).put(_url(det), {"verdict": "reject"}, format="json")
    assert r.status_code == 200
    rows = {d.reviewer.username: d.verdict for d in Decision.objects.filter(detection=det)}
    assert rows == {"a_reviewer": "accept", "a_reviewer2": "reject"}
    body = r.json()
    assert body["agreement"] == "disagree" and body["final"] is None
    assert body["others"] == {"accept": 1, "reject": 0, "uncertain": 0}


def test_changing_my_decision_replaces_only_mine_and_audits_before_and_after(cast, detections):
    det = detections[1]
    c = client_for(cast.a.reviewer)
    c.put(_url(det), {"verdict": "accept"}, format="json")
    r = c.put(_url(det), {"verdict": "accept", "class_name": "leukocyte"}, format="json")
    assert r.status_code == 200
    d = Decision.objects.get(detection=det, reviewer=cast.a.reviewer)
    assert d.class_name == "leukocyte"
    event = AuditEvent.objects.filter(action="review.decision.update").latest("sequence")
    assert event.before == {"verdict": "accept", "class_name": ""}
    assert event.after["class_name"] == "leukocyte"


def test_choosing_the_detected_class_is_stored_as_no_change(cast, detections):
    det = detections[0]
    client_for(cast.a.reviewer).put(_url(det), {"verdict": "accept", "class_name": det.class_name}, format="json")
    assert Decision.objects.get(detection=det).class_name == ""


def test_delete_undoes_my_decision(cast, detections):
    det = detections[0]
    c = client_for(cast.a.reviewer)
    c.put(_url(det), {"verdict": "reject"}, format="json")
    r = c.delete(_url(det))
    assert r.status_code == 200 and r.json()["mine"] is None
    assert not Decision.objects.filter(detection=det).exists()
    assert AuditEvent.objects.filter(action="review.decision.delete").exists()


def test_it_refuses_an_unknown_verdict_or_class_with_a_message(cast, detections):
    c = client_for(cast.a.reviewer)
    r = c.put(_url(detections[0]), {"verdict": "maybe"}, format="json")
    assert r.status_code == 400 and "message" in r.json()
    r = c.put(_url(detections[0]), {"verdict": "accept", "class_name": "neutrophil"}, format="json")
    assert r.status_code == 400
    assert not Decision.objects.exists()


def test_it_refuses_other_centers_detection_with_404(cast, detections):
    r = client_for(cast.b.reviewer).put(_url(detections[0]), {"verdict": "accept"}, format="json")
    assert r.status_code == 404
    assert not Decision.objects.exists()


def test_uploaders_validators_and_stain_technicians_may_not_decide(cast, detections):
    for user in (cast.a.uploader, cast.a.validator, cast.a.stain):
        r = client_for(user).put(_url(detections[0]), {"verdict": "accept"}, format="json")
        assert r.status_code == 403, user
    assert not Decision.objects.exists()


def test_center_admin_may_decide_as_a_reviewer(cast, detections):
    r = client_for(cast.a.admin).put(_url(detections[0]), {"verdict": "uncertain"}, format="json")
    assert r.status_code == 200


def test_it_refuses_a_decision_on_a_superseded_result_set(cast, image, detections):
    from django.utils import timezone

    from portal.testing.review import make_result_set

    old = detections[0]
    newer = make_result_set(image, cells=[(50, 50, 10)])
    ResultSet.objects.filter(pk=newer.pk).update(completed_at=timezone.now(), status=ResultSetStatus.COMPLETE,
                                                 source=ResultSource.MODEL)
    r = client_for(cast.a.reviewer).put(_url(old), {"verdict": "accept"}, format="json")
    assert r.status_code == 409
    assert "superseded" in r.json()["message"]
