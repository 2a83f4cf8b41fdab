from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.results.models import Detection, ResultSet
from portal.review.models import Decision
from portal.review.tests.conftest import client_for

SQUARE = [[100, 100], [130, 100], [130, 130], [100, 130]]


def _create(client, image, polygon=SQUARE, class_name="round_spermatid"):
    return client.post(reverse("api-review-instance-create", kwargs={"image_id": image.pk}),
                       {"polygon": polygon, "class_name": class_name}, format="json")


def test_a_drawn_polygon_is_stored_as_a_manual_detection_in_its_own_result_set(cast, image):
    r = _create(client_for(cast.a.reviewer), image)
    assert r.status_code == 201, r.content
    det = Detection.objects.get(pk=r.json()["id"])
    assert det.source == "manual" and det.result_set.source == "manual"
    assert det.created_by == cast.a.reviewer and det.score is None
    assert det.polygon == SQUARE
    assert det.area_px == 900 or abs(det.area_px - 900) < 40
    assert det.diameter_um is not None and det.centroid_x_um is not None
    assert Decision.objects.get(detection=det).verdict == "accept"
    assert AuditEvent.objects.filter(action="review.instance.create", object_id=str(det.pk)).exists()


def test_drawn_instances_of_one_image_share_one_manual_result_set(cast, image):
    c = client_for(cast.a.reviewer)
    _create(c, image)
    _create(client_for(cast.a.reviewer2), image, polygon=[[10, 10], [20, 10], [20, 20]])
    manual = ResultSet.objects.filter(image=image, source="manual")
    assert manual.count() == 1
    assert sorted(manual.get().detections.values_list("index", flat=True)) == [0, 1]


def test_it_refuses_a_bad_polygon_and_stores_nothing(cast, image):
    r = _create(client_for(cast.a.reviewer), image, polygon=[[1, 1], [2, 2]])
    assert r.status_code == 400
    assert r.json()["extra"]["fields"]["polygon"] == ["Ensure this field has at least 3 elements."]
    assert not Detection.objects.filter(source="manual").exists()
    assert not ResultSet.objects.filter(source="manual").exists()


def test_editing_vertices_remeasures_the_instance(cast, image):
    c = client_for(cast.a.reviewer)
    det_id = _create(c, image).json()["id"]
    bigger = [[100, 100], [160, 100], [160, 160], [100, 160]]
    r = c.patch(reverse("api-review-instance", kwargs={"detection_id": det_id}), {"polygon": bigger}, format="json")
    assert r.status_code == 200, r.content
    det = Detection.objects.get(pk=det_id)
    assert det.polygon == bigger and det.area_px > 3000
    event = AuditEvent.objects.filter(action="review.instance.update").latest("sequence")
    assert event.before["polygon"] == SQUARE


def test_only_the_author_or_a_center_admin_may_change_a_drawn_instance(cast, image):
    det_id = _create(client_for(cast.a.reviewer), image).json()["id"]
    url = reverse("api-review-instance", kwargs={"detection_id": det_id})
    assert client_for(cast.a.reviewer2).delete(url).status_code == 403
    assert client_for(cast.a.admin).patch(url, {"class_name": "leukocyte"}, format="json").status_code == 200
    assert client_for(cast.a.reviewer).delete(url).status_code == 204
    assert not Detection.objects.filter(pk=det_id).exists()


def test_model_detections_cannot_be_deleted(cast, detections):
    r = client_for(cast.a.admin).delete(reverse("api-review-instance", kwargs={"detection_id": detections[0].pk}))
    assert r.status_code == 409
    assert Detection.objects.filter(pk=detections[0].pk).exists()


def test_uploader_may_not_draw_and_other_center_gets_404(cast, image):
    assert _create(client_for(cast.a.uploader), image).status_code == 403
    assert _create(client_for(cast.b.reviewer), image).status_code == 404
