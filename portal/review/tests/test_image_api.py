from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.review.tests.conftest import client_for
from portal.testing.review import make_reviewable_image


def _url(image):
    return reverse("api-review-image", kwargs={"image_id": image.pk})


def test_it_gives_the_viewer_instances_with_masks_and_my_decisions(cast, image, detections):
    client_for(cast.a.reviewer).put(reverse("api-review-decision", kwargs={"detection_id": detections[0].pk}),
                                    {"verdict": "reject"}, format="json")
    r = client_for(cast.a.reviewer).get(_url(image))
    assert r.status_code == 200
    body = r.json()
    assert len(body["instances"]) == 6
    first = next(i for i in body["instances"] if i["id"] == str(detections[0].pk))
    assert first["mine"]["verdict"] == "reject"
    assert first["rle"]["size"] == [300, 400] and isinstance(first["rle"]["counts"], str)
    assert body["image"]["um_per_px"] == 0.2
    assert [c["name"] for c in body["classes"]][0] == "round_spermatid"
    assert body["me"]["can_decide"] is True and body["me"]["can_adjudicate"] is False
    assert "adjudication" in body["rule"]
    assert AuditEvent.objects.filter(action="review.detections.read", object_id=str(image.pk)).exists()


def test_another_reviewer_sees_counts_not_my_decision_as_theirs(cast, image, detections):
    client_for(cast.a.reviewer).put(reverse("api-review-decision", kwargs={"detection_id": detections[0].pk}),
                                    {"verdict": "accept"}, format="json")
    body = client_for(cast.a.reviewer2).get(_url(image)).json()
    inst = next(i for i in body["instances"] if i["id"] == str(detections[0].pk))
    assert inst["mine"] is None and inst["others"]["accept"] == 1 and "decisions" not in inst
    admin_inst = next(i for i in client_for(cast.a.admin).get(_url(image)).json()["instances"]
                      if i["id"] == str(detections[0].pk))
    assert admin_inst["decisions"][0]["reviewer"] == "a_reviewer"


def test_the_query_count_does_not_grow_with_instances(cast):
    small = make_reviewable_image(cast.a, n=3)
    big = make_reviewable_image(cast.a, n=60, width=800, height=600)
    c = client_for(cast.a.reviewer)
    c.get(_url(small))  # warm up (session, user)
    with CaptureQueriesContext(connection) as q_small:
        c.get(_url(small))
    with CaptureQueriesContext(connection) as q_big:
        c.get(_url(big))
    assert len(q_big) == len(q_small)


def test_uploader_reads_read_only_and_others_are_refused(cast, image):
    body = client_for(cast.a.uploader).get(_url(image)).json()
    assert body["me"]["can_decide"] is False
    assert client_for(cast.a.validator).get(_url(image)).status_code == 403
    assert client_for(cast.b.reviewer).get(_url(image)).status_code == 404
    assert client_for(cast.auditor).get(_url(image)).status_code == 404


def test_a_blinded_validator_who_also_reviews_gets_404(cast, image, monkeypatch):
    from portal.centers.services import membership_grant

    membership_grant(user=cast.a.validator, center=cast.a.center, role="reviewer")
    assert client_for(cast.a.validator).get(_url(image)).status_code == 200
    from portal.imaging.models import SessionBlinding

    SessionBlinding.objects.create(user=cast.a.validator, session_id=image.session_id, source="test")
    assert client_for(cast.a.validator).get(_url(image)).status_code == 404
    assert client_for(cast.a.validator).get(reverse("review:viewer", kwargs={"image_id": image.pk})).status_code == 404
    page = client_for(cast.a.validator).get(reverse("review:session-list"))
    assert str(image.session_id) not in page.content.decode()
    assert client_for(cast.a.reviewer).get(_url(image)).status_code == 200
