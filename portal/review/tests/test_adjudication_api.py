from django.urls import reverse

from portal.review.models import Adjudication
from portal.review.tests.conftest import client_for


def _url(det, name="api-review-adjudication"):
    return reverse(name, kwargs={"detection_id": det.pk})


def test_center_admin_adjudication_is_the_final_call(cast, detections):
    det = detections[0]
    client_for(cast.a.reviewer).put(_url(det, "api-review-decision"), {"verdict": "accept"}, format="json")
    client_for(cast.a.reviewer2).put(_url(det, "api-review-decision"), {"verdict": "reject"}, format="json")
    r = client_for(cast.a.admin).put(_url(det), {"verdict": "accept", "class_name": "spermatocyte",
                                                 "note": "nucleus too big"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["final"] == {"verdict": "accept", "class_name": "spermatocyte", "decided_by": "adjudication"}
    adj = Adjudication.objects.get(detection=det)
    assert adj.adjudicator == cast.a.admin and adj.note == "nucleus too big"


def test_removing_the_adjudication_falls_back_to_the_reviewers(cast, detections):
    det = detections[0]
    client_for(cast.a.reviewer).put(_url(det, "api-review-decision"), {"verdict": "reject"}, format="json")
    admin = client_for(cast.a.admin)
    admin.put(_url(det), {"verdict": "accept"}, format="json")
    r = admin.delete(_url(det))
    assert r.status_code == 200
    assert r.json()["final"]["decided_by"] == "unanimous:1"
    assert r.json()["final"]["verdict"] == "reject"


def test_reviewers_may_not_adjudicate(cast, detections):
    r = client_for(cast.a.reviewer).put(_url(detections[0]), {"verdict": "accept"}, format="json")
    assert r.status_code == 403
    assert not Adjudication.objects.exists()


def test_other_centers_admin_gets_404(cast, detections):
    r = client_for(cast.b.admin).put(_url(detections[0]), {"verdict": "accept"}, format="json")
    assert r.status_code == 404
