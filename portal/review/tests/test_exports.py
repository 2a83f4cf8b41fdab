import csv
import io
import json
import zipfile

from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.review.models import PickList
from portal.review.tests.conftest import client_for
from portal.testing.review import make_reviewable_image


def _decide(user, det, verdict, class_name=""):
    r = client_for(user).put(reverse("api-review-decision", kwargs={"detection_id": det.pk}),
                             {"verdict": verdict, "class_name": class_name}, format="json")
    assert r.status_code == 200, r.content


def _coco(user, *sessions):
    return client_for(user).get(reverse("api-review-coco"), {"session": [str(s) for s in sessions]})


def test_coco_export_has_accepted_corrected_and_drawn_instances_but_no_rejected(cast, image, detections):
    _decide(cast.a.reviewer, detections[0], "accept")  # round_spermatid
    _decide(cast.a.reviewer, detections[1], "accept", "leukocyte")  # corrected spermatocyte
    _decide(cast.a.reviewer, detections[2], "reject")
    _decide(cast.a.reviewer, detections[3], "uncertain")
    _decide(cast.a.reviewer, detections[4], "accept")
    _decide(cast.a.reviewer2, detections[4], "reject")  # disputed: left out
    client_for(cast.a.reviewer).post(reverse("api-review-instance-create", kwargs={"image_id": image.pk}),
                                     {"polygon": [[10, 10], [40, 10], [40, 40]], "class_name": "erythrocyte"},
                                     format="json")
    r = _coco(cast.a.reviewer, image.session_id)
    assert r.status_code == 200, r.content
    data = json.loads(r.content)
    assert data["categories"] == [
        {"id": 1, "name": "round_spermatid", "supercategory": "cell"},
        {"id": 2, "name": "spermatocyte", "supercategory": "cell"},
        {"id": 3, "name": "elongated_spermatid", "supercategory": "cell"},
        {"id": 4, "name": "spermatozoon", "supercategory": "cell"},
        {"id": 5, "name": "erythrocyte", "supercategory": "cell"},
        {"id": 6, "name": "leukocyte", "supercategory": "cell"},
    ]
    assert data["images"][0]["um_per_px"] == 0.2 and data["images"][0]["width"] == 400
    anns = data["annotations"]
    assert sorted(a["category_id"] for a in anns) == [1, 5, 6]
    corrected = next(a for a in anns if a["category_id"] == 6)
    assert corrected["corrected"] is True and corrected["model_class"] == "spermatocyte"
    drawn = next(a for a in anns if a["source"] == "manual")
    assert isinstance(drawn["segmentation"], list) and len(drawn["segmentation"][0]) == 6
    assert "adjudication" in data["info"]["selection_rule"]
    assert AuditEvent.objects.filter(action="review.export.coco").exists()


def test_coco_export_loads_with_the_training_importer(cast, image, detections, tmp_path):
    from inference.data import load_coco

    _decide(cast.a.reviewer, detections[0], "accept")
    _decide(cast.a.reviewer, detections[1], "accept", "round_spermatid")
    _decide(cast.a.reviewer, detections[2], "reject")  # the last cell to review: the image is reviewed
    path = tmp_path / "export.json"
    path.write_bytes(_coco(cast.a.reviewer, image.session_id).content)
    ds = load_coco(str(path))
    assert len(ds) == 1
    rec = ds.records[0]
    assert rec["um_per_px"] == 0.2 and [a["category_id"] for a in rec["annotations"]] == [0, 0]
    from inference.data import segmentation_to_mask

    mask = segmentation_to_mask(rec["annotations"][0]["segmentation"], rec["height"], rec["width"])
    assert mask.sum() == rec["annotations"][0]["area"]


def test_coco_zip_holds_annotations_and_images(cast, image, detections):
    for det in detections[:3]:  # the cells to review at 0.5
        _decide(cast.a.reviewer, det, "accept")
    r = client_for(cast.a.reviewer).get(reverse("review:coco-zip"), {"session": str(image.session_id)})
    assert r.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content)))
    names = zf.namelist()
    assert "annotations.json" in names and f"images/{image.pk}.png" in names


def test_coco_export_refuses_other_centers_and_missing_sessions(cast, image):
    assert _coco(cast.b.reviewer, image.session_id).status_code == 404
    r = client_for(cast.a.reviewer).get(reverse("api-review-coco"))
    assert r.status_code == 400 and "session" in r.json()["message"]
    assert _coco(cast.a.uploader, image.session_id).status_code == 403


def _pick(user, session_id):
    return client_for(user).post(reverse("api-review-picklist-create", kwargs={"session_id": session_id}))


def test_pick_list_has_accepted_round_spermatids_by_score_with_the_rule(cast):
    image = make_reviewable_image(cast.a, n=12, stage=(5000.0, 3000.0))
    from portal.results.models import Detection

    dets = list(Detection.objects.filter(result_set__image=image).order_by("index"))
    rs = [d for d in dets if d.class_name == "round_spermatid"]  # indexes 0 and 6
    for d in rs:
        _decide(cast.a.reviewer, d, "accept")
    _decide(cast.a.reviewer, dets[1], "accept", "round_spermatid")  # corrected into the target class
    _decide(cast.a.reviewer, dets[2], "reject", "round_spermatid")
    r = _pick(cast.a.reviewer, image.session_id)
    assert r.status_code == 201, r.content
    body = r.json()
    assert [i["detection"] for i in body["items"]] == [str(d.pk) for d in sorted(rs + [dets[1]], key=lambda d: -d.score)]
    assert "adjudication" in body["rule"]
    pick_list = PickList.objects.get()
    c = client_for(cast.a.reviewer)

    page = c.get(reverse("review:picklist", kwargs={"pick_list_id": pick_list.pk})).content.decode()
    assert "Selection rule" in page and reverse("review:detection-crop", kwargs={"detection_id": rs[0].pk}) in page

    r = c.get(reverse("review:picklist-csv", kwargs={"pick_list_id": pick_list.pk}))
    rows = list(csv.DictReader(io.StringIO(r.content.decode())))
    assert [float(x["score"]) for x in rows] == sorted((float(x["score"]) for x in rows), reverse=True)
    assert rows[0]["rule_id"] == "adjudication-else-unanimous" and rows[0]["stage_x_um"]
    assert float(rows[0]["diameter_um"]) > 6

    r = c.get(reverse("review:picklist-geojson", kwargs={"pick_list_id": pick_list.pk}))
    geo = json.loads(r.content)
    assert len(geo["features"]) == 3 and geo["features"][0]["geometry"]["type"] == "Point"
    assert geo["properties"]["rule"] == pick_list.rule

    r = c.get(reverse("review:picklist-pos", kwargs={"pick_list_id": pick_list.pk}), {"xy_stage": "XY"})
    pos = json.loads(r.content)
    assert pos["format"] == "Micro-Manager Property Map"
    first = pos["map"]["StagePositions"]["array"][0]["DevicePositions"]["array"][0]
    assert first["Device"]["scalar"] == "XY" and len(first["Position_um"]["array"]) == 2
    assert AuditEvent.objects.filter(action="review.picklist.export").count() == 3


def test_position_list_is_refused_when_an_image_has_no_stage_position(cast, image, detections):
    _decide(cast.a.reviewer, detections[0], "accept")
    pick_list_id = _pick(cast.a.reviewer, image.session_id).json()["id"]
    r = client_for(cast.a.reviewer).get(reverse("review:picklist-pos", kwargs={"pick_list_id": pick_list_id}))
    assert r.status_code == 400 and str(image.pk) in r.json()["extra"]["images"]


def test_a_pick_list_without_accepted_cells_is_refused(cast, image):
    r = _pick(cast.a.reviewer, image.session_id)
    assert r.status_code == 409 and "No finally accepted" in r.json()["message"]
    assert not PickList.objects.exists()


def test_pick_lists_are_hidden_from_other_centers_and_uploaders(cast, image, detections):
    _decide(cast.a.reviewer, detections[0], "accept")
    pick_list_id = _pick(cast.a.reviewer, image.session_id).json()["id"]
    url = reverse("review:picklist", kwargs={"pick_list_id": pick_list_id})
    assert client_for(cast.b.reviewer).get(url).status_code == 404
    assert client_for(cast.a.uploader).get(url).status_code == 403
    assert client_for(cast.a.admin).get(url).status_code == 200


def test_the_pick_list_page_explains_a_missing_stage_position_instead_of_linking_to_a_dead_pos(cast, image,
                                                                                              detections):
    _decide(cast.a.reviewer, detections[0], "accept")
    pick_list_id = _pick(cast.a.reviewer, image.session_id).json()["id"]
    page = client_for(cast.a.reviewer).get(reverse("review:picklist", kwargs={"pick_list_id": pick_list_id}))
    html = page.content.decode()
    assert reverse("review:picklist-pos", kwargs={"pick_list_id": pick_list_id}) not in html
    assert 'id="pos-unavailable"' in html and "no stage position" in html


def test_coco_export_leaves_out_unreviewed_images_unless_asked(cast, image, detections):
    from portal.testing.review import make_reviewable_image

    untouched = make_reviewable_image(cast.a, n=4, session=image.session)
    for det in detections[:3]:  # every cell to review of the first image (scores >= 0.5)
        _decide(cast.a.reviewer, det, "accept")
    data = json.loads(_coco(cast.a.reviewer, image.session_id).content)
    assert [i["portal_image_id"] for i in data["images"]] == [str(image.pk)]
    assert data["info"]["image_selection"] == "reviewed" and data["info"]["images_left_out"] == 1

    r = client_for(cast.a.reviewer).get(reverse("api-review-coco"), {"session": str(image.session_id),
                                                                     "images": "all"})
    every = json.loads(r.content)
    assert {i["portal_image_id"] for i in every["images"]} == {str(image.pk), str(untouched.pk)}
    assert client_for(cast.a.reviewer).get(reverse("api-review-coco"), {"session": str(image.session_id),
                                                                        "images": "some"}).status_code == 400


def test_coco_export_says_when_a_16_bit_image_is_exported_as_8_bit(cast, image, detections):
    image.bit_depth = 16
    image.save(update_fields=["bit_depth"])
    for det in detections[:3]:
        _decide(cast.a.reviewer, det, "accept")
    data = json.loads(_coco(cast.a.reviewer, image.session_id).content)
    assert (data["images"][0]["bit_depth"], data["images"][0]["exported_bit_depth"]) == (16, 8)
    assert data["info"]["images_reduced_to_8_bit"] == 1 and "8-bit" in data["info"]["pixel_data"]
    page = client_for(cast.a.reviewer).get(reverse("review:session-detail", kwargs={"pk": image.session_id}))
    assert "windowed to 8 bits in the export" in page.content.decode()


def test_coco_zip_is_streamed_with_a_memory_peak_far_below_its_size(cast, image, detections):
    import os
    import tracemalloc

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    for det in detections[:3]:  # the cells to review at 0.5: the image is reviewed and goes in
        _decide(cast.a.reviewer, det, "accept")
    big = os.urandom(32 << 20)  # the display PNG stands for a large microscope image
    name = image.display_file.name
    default_storage.delete(name)
    assert default_storage.save(name, ContentFile(big)) == name
    client = client_for(cast.a.reviewer)
    tracemalloc.start()
    try:
        r = client.get(reverse("review:coco-zip"), {"session": str(image.session_id)})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 200 and r.streaming
    assert r["Content-Disposition"] == 'attachment; filename="reviewed-coco.zip"'
    body = b"".join(r.streaming_content)
    r.close()
    assert len(body) > len(big) and peak < len(big) / 8
    assert zipfile.ZipFile(io.BytesIO(body)).read(f"images/{image.pk}.png") == big
