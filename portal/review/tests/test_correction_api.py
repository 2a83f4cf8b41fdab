"""Corrected masks of any detection: per reviewer, validated, with history, revert, split and merge; the final
mask follows the final call (pick lists, COCO)."""
from __future__ import annotations

import numpy as np
from django.urls import reverse

from portal.audit.models import AuditEvent
from portal.results.models import Detection
from portal.review.lib.geometry import decode_rle
from portal.review.models import Decision, MaskCorrection
from portal.review.tests.conftest import client_for


def _url(name, det):
    return reverse(name, kwargs={"detection_id": det.pk})


def _crop(x0, y0, h, w, painted):
    """An uncompressed column-major RLE of an h x w crop whose pixels (x, y) in ``painted`` are set."""
    m = np.zeros((h, w), dtype=bool)
    for x, y in painted:
        m[y - y0, x - x0] = True
    flat = m.T.reshape(-1)
    counts, value, run = [], False, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    counts.append(run)
    return {"origin": [x0, y0], "size": [h, w], "counts": counts}


def _block(x0, y0, side):
    return _crop(x0, y0, side, side, [(x, y) for x in range(x0, x0 + side) for y in range(y0, y0 + side)])


def test_a_reviewer_corrects_a_model_mask_with_a_painted_crop(cast, image, detections):
    det = detections[0]
    r = client_for(cast.a.reviewer).put(_url("api-review-correction", det), {"mask": _block(20, 30, 10)},
                                        format="json")
    assert r.status_code == 200, r.content
    current = r.json()["current"]
    assert current["area_px"] == 100 and current["box"] == [20.0, 30.0, 30.0, 40.0]
    full = decode_rle(current["rle"])
    assert full.shape == (image.height, image.width) and full[30:40, 20:30].all() and full.sum() == 100
    det.refresh_from_db()
    assert det.area_px != 100  # the model's own mask is untouched
    assert AuditEvent.objects.filter(action="review.correction.edit").count() == 1


def test_corrections_are_per_reviewer(cast, image, detections):
    det = detections[0]
    client_for(cast.a.reviewer).put(_url("api-review-correction", det), {"mask": _block(20, 30, 10)}, format="json")
    other = client_for(cast.a.reviewer2)
    assert other.get(_url("api-review-correction", det)).json()["current"] is None
    payload = other.get(reverse("api-review-image", kwargs={"image_id": image.pk})).json()
    assert all(i["correction"] is None for i in payload["instances"])
    mine = client_for(cast.a.reviewer).get(reverse("api-review-image", kwargs={"image_id": image.pk})).json()
    assert next(i for i in mine["instances"] if i["id"] == str(det.pk))["correction"]["area_px"] == 100


def test_a_polygon_correction_is_measured_like_a_drawn_cell(cast, image, detections):
    square = [[100, 100], [130, 100], [130, 130], [100, 130]]
    r = client_for(cast.a.reviewer).put(_url("api-review-correction", detections[1]), {"polygon": square},
                                        format="json")
    assert r.status_code == 200
    assert abs(r.json()["current"]["area_px"] - 900) < 40 and r.json()["current"]["polygon"] == square


def test_it_refuses_malformed_masks_with_a_clear_400_and_stores_nothing(cast, image, detections):
    c = client_for(cast.a.reviewer)
    url = _url("api-review-correction", detections[0])
    bad = {
        "outside": _block(image.width - 5, 10, 10),
        "empty": _crop(10, 10, 5, 5, []),
        "counts": {"origin": [10, 10], "size": [5, 5], "counts": [3, 4]},
        "negative": {"origin": [10, 10], "size": [5, 5], "counts": [-1, 26]},
        "huge": {"origin": [0, 0], "size": [2000, 2000], "counts": [4000000]},
        "shape": {"origin": [10], "size": [5, 5], "counts": [25]},
    }
    for name, mask in bad.items():
        r = c.put(url, {"mask": mask}, format="json")
        assert r.status_code == 400, (name, r.content)
        assert r.json()["message"], name
    assert c.put(url, {}, format="json").status_code == 400
    assert c.put(url, {"polygon": [[1, 1], [2, 2], [3, 3]], "mask": _block(1, 1, 3)}, format="json").status_code == 400
    assert c.put(url, "not json", content_type="text/plain").status_code in (400, 415)
    assert not MaskCorrection.objects.exists()


def test_revert_brings_the_earlier_correction_back_and_keeps_the_history(cast, image, detections):
    c = client_for(cast.a.reviewer)
    url = _url("api-review-correction", detections[0])
    c.put(url, {"mask": _block(20, 30, 10)}, format="json")
    c.put(url, {"mask": _block(20, 30, 12)}, format="json")
    r = c.delete(url)
    assert r.status_code == 200
    assert r.json()["current"]["area_px"] == 100
    assert [h["reverted"] for h in r.json()["history"]] == [True, False]
    r = c.delete(url)
    assert r.json()["current"] is None
    assert c.delete(url).status_code == 409


def test_a_split_keeps_the_larger_part_and_draws_the_other_as_a_new_cell(cast, image, detections):
    det = detections[0]
    c = client_for(cast.a.reviewer)
    full = decode_rle(det.mask_rle)
    cx, cy = det.centroid_x_px, det.centroid_y_px
    r = c.post(_url("api-review-split", det), {"line": [[cx + 3, cy - 50], [cx + 3, cy + 50]]}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    new = Detection.objects.get(pk=body["new_instance"]["id"])
    assert new.source == "manual" and new.created_by == cast.a.reviewer
    assert Decision.objects.get(detection=new, reviewer=cast.a.reviewer).verdict == "accept"
    kept = decode_rle(body["correction"]["rle"])
    assert kept.sum() > decode_rle(new.mask_rle).sum()
    assert kept.sum() + decode_rle(new.mask_rle).sum() == full.sum()
    assert not (kept & decode_rle(new.mask_rle)).any()
    # undo: the new cell goes, the detection's own mask comes back
    r = c.delete(_url("api-review-correction", det))
    assert r.status_code == 200 and r.json()["current"] is None
    assert not Detection.objects.filter(pk=new.pk).exists()


def test_a_line_that_misses_the_cell_is_refused(cast, image, detections):
    r = client_for(cast.a.reviewer).post(_url("api-review-split", detections[0]), {"line": [[0, 0], [0, 5]]},
                                         format="json")
    assert r.status_code == 400 and "line" in r.json()["message"]


def test_a_merge_joins_two_masks_and_rejects_the_merged_cell_for_me_only(cast, image, detections):
    a, b = detections[0], detections[1]
    client_for(cast.a.reviewer).put(reverse("api-review-decision", kwargs={"detection_id": b.pk}),
                                    {"verdict": "accept"}, format="json")
    c = client_for(cast.a.reviewer)
    r = c.post(_url("api-review-merge", a), {"other": str(b.pk)}, format="json")
    assert r.status_code == 201, r.content
    merged = decode_rle(r.json()["correction"]["rle"])
    assert merged.sum() == decode_rle(a.mask_rle).sum() + decode_rle(b.mask_rle).sum()
    assert r.json()["other"]["mine"]["verdict"] == "reject"
    # undo gives b its decision back
    c.delete(_url("api-review-correction", a))
    assert Decision.objects.get(detection=b, reviewer=cast.a.reviewer).verdict == "accept"
    assert c.post(_url("api-review-merge", a), {"other": str(a.pk)}, format="json").status_code == 400


def test_another_centers_reviewer_cannot_correct_or_read_corrections(cast, image, detections):
    r = client_for(cast.b.reviewer).put(_url("api-review-correction", detections[0]), {"mask": _block(1, 1, 4)},
                                        format="json")
    assert r.status_code == 404
    r = client_for(cast.a.reviewer).post(_url("api-review-merge", detections[0]), {"other": "00000000-0000-0000-0000-000000000001"},
                                         format="json")
    assert r.status_code == 404


def test_the_final_mask_is_the_correction_of_the_reviewer_whose_accept_is_final(cast, image, detections):
    from portal.review.exports import coco_export
    from portal.review.services import pick_list_create

    det = detections[0]  # round spermatid
    c = client_for(cast.a.reviewer)
    c.put(_url("api-review-correction", det), {"mask": _block(20, 30, 10)}, format="json")
    c.put(reverse("api-review-decision", kwargs={"detection_id": det.pk}), {"verdict": "accept"}, format="json")
    data = coco_export(sessions=[image.session], threshold=0.0, include_unreviewed=True)
    ann = next(a for a in data["annotations"] if a["portal_detection_id"] == str(det.pk))
    assert ann["mask_corrected"] and ann["area"] == 100 and ann["bbox"] == [20.0, 30.0, 10.0, 10.0]
    assert "corrected mask" in data["info"]["mask_rule"]
    pick_list = pick_list_create(user=cast.a.reviewer, session=image.session)
    item = pick_list.items.get(detection=det)
    assert (item.centroid_x_px, item.centroid_y_px) == (25.0, 35.0)
    # a second reviewer who rejects makes it disputed: no final call, so no final mask either
    client_for(cast.a.reviewer2).put(reverse("api-review-decision", kwargs={"detection_id": det.pk}),
                                     {"verdict": "reject"}, format="json")
    data = coco_export(sessions=[image.session], threshold=0.0, include_unreviewed=True)
    assert not any(a["portal_detection_id"] == str(det.pk) for a in data["annotations"])


def test_image_done_marks_are_per_reviewer_and_name_the_next_open_image(cast, image):
    from portal.testing.review import make_reviewable_image

    second = make_reviewable_image(cast.a, n=2, session=image.session)
    c = client_for(cast.a.reviewer)
    r = c.put(reverse("api-review-image-done", kwargs={"image_id": image.pk}), {"done": True}, format="json")
    assert r.status_code == 200 and r.json() == {"image": str(image.pk), "done": True, "next_open_id": str(second.pk)}
    payload = c.get(reverse("api-review-image", kwargs={"image_id": second.pk})).json()["image"]
    assert payload["done"] is False and payload["next_open_id"] is None
    other = client_for(cast.a.reviewer2).get(reverse("api-review-image", kwargs={"image_id": image.pk})).json()
    assert other["image"]["done"] is False and other["image"]["done_by"] == 1
    page = c.get(reverse("review:session-detail", kwargs={"pk": image.session.pk})).content.decode()
    assert page.count('data-done="1"') == 1
    r = c.put(reverse("api-review-image-done", kwargs={"image_id": image.pk}), {"done": False}, format="json")
    assert r.json()["done"] is False
    assert c.put(reverse("api-review-image-done", kwargs={"image_id": image.pk}), {"done": "maybe"},
                 format="json").status_code == 400
