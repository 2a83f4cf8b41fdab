"""The pick list page orders cells along a short stage path, says so, and falls back to score order."""
from __future__ import annotations

import json
import re

from django.urls import reverse

from portal.results.models import Detection
from portal.review.models import PickList
from portal.review.tests.conftest import client_for
from portal.testing.review import make_image, make_result_set, make_session

CELLS = [(60.0, 60.0, 17.5), (340.0, 60.0, 17.5), (60.0, 240.0, 17.5), (340.0, 240.0, 17.5)]


def _two_far_fields(cast, *, stage_b=(20000.0, 0.0)):
    """Two fields 20 mm apart whose round spermatids alternate between the fields in score order."""
    session = make_session(cast.a)
    a = make_image(cast.a, session=session, stage=(0.0, 0.0), cells=CELLS)
    b = make_image(cast.a, session=session, stage=stage_b, cells=CELLS)
    make_result_set(a, cells=CELLS, classes=["round_spermatid"] * 4, scores=[0.99, 0.97, 0.95, 0.93])
    make_result_set(b, cells=CELLS, classes=["round_spermatid"] * 4, scores=[0.98, 0.96, 0.94, 0.92])
    for det in Detection.objects.filter(result_set__image__session=session):
        for reviewer in (cast.a.reviewer, cast.a.reviewer2):
            r = client_for(reviewer).put(reverse("api-review-decision", kwargs={"detection_id": det.pk}),
                                         {"verdict": "accept", "class_name": ""}, format="json")
            assert r.status_code == 200, r.content
    r = client_for(cast.a.reviewer).post(reverse("api-review-picklist-create", kwargs={"session_id": session.pk}))
    assert r.status_code == 201, r.content
    return session, a, b, PickList.objects.get(pk=r.json()["id"])


def _page_detection_order(html: str) -> list[str]:
    return re.findall(r'class="pick-row" data-detection="([0-9a-f-]+)"', html)


def test_the_pick_list_is_travel_ordered_and_says_how_far_the_stage_moves(cast):
    session, a, b, pick_list = _two_far_fields(cast)
    html = client_for(cast.a.reviewer).get(reverse("review:picklist", kwargs={"pick_list_id": pick_list.pk})).content.decode()
    score_order = [str(i.detection_id) for i in pick_list.items.order_by("rank")]
    page_order = _page_detection_order(html)
    assert sorted(page_order) == sorted(score_order) and page_order != score_order
    images = [str(Detection.objects.get(pk=d).result_set.image_id) for d in page_order]
    assert images == [images[0]] * 4 + [images[-1]] * 4  # one field, then the other: one long stage move
    assert 'data-order="travel"' in html and "Travel-ordered" in html
    travel = float(re.search(r'id="pick-travel-mm">([0-9.]+)<', html).group(1))
    score = float(re.search(r'id="pick-score-travel-mm">([0-9.]+)<', html).group(1))
    assert 20 <= travel < 21 and score > 6.5 * 20  # about seven 20 mm trips in score order
    viewer = reverse("review:viewer", kwargs={"image_id": images[0]})
    assert f'href="{viewer}?cell={page_order[0]}"' in html


def test_the_position_list_follows_the_travel_order(cast):
    session, a, b, pick_list = _two_far_fields(cast)
    r = client_for(cast.a.reviewer).get(reverse("review:picklist-pos", kwargs={"pick_list_id": pick_list.pk}))
    assert r.status_code == 200
    positions = json.loads(r.content)["map"]["StagePositions"]["array"]
    xs = [p["DevicePositions"]["array"][0]["Position_um"]["array"][0] for p in positions]
    assert len(xs) == 8
    far = [x > 10000 for x in xs]
    assert far in ([False] * 4 + [True] * 4, [True] * 4 + [False] * 4)


def test_it_falls_back_to_score_order_with_a_note_when_a_field_has_no_stage_position(cast):
    session, a, b, pick_list = _two_far_fields(cast)
    b.stage_x_um = b.stage_y_um = None
    b.save(update_fields=["stage_x_um", "stage_y_um"])
    html = client_for(cast.a.reviewer).get(reverse("review:picklist", kwargs={"pick_list_id": pick_list.pk})).content.decode()
    assert _page_detection_order(html) == [str(i.detection_id) for i in pick_list.items.order_by("rank")]
    assert 'data-order="score"' in html and "Score order" in html and "Travel-ordered" not in html


def test_the_pick_list_shows_the_clinic_file_name_to_its_center(cast):
    session, a, b, pick_list = _two_far_fields(cast)
    a.original_name = "patient-field-07.tif"
    a.save(update_fields=["original_name"])
    html = client_for(cast.a.reviewer).get(reverse("review:picklist", kwargs={"pick_list_id": pick_list.pk})).content.decode()
    assert "patient-field-07.tif" in html


def test_the_csv_carries_file_names_only_when_asked_and_the_audit_says_so(cast):
    from portal.audit.models import AuditEvent

    session, a, b, pick_list = _two_far_fields(cast)
    a.original_name = "patient-field-07.tif"
    a.save(update_fields=["original_name"])
    url = reverse("review:picklist-csv", kwargs={"pick_list_id": pick_list.pk})
    c = client_for(cast.a.reviewer)
    plain = c.get(url).content.decode()
    assert "patient-field-07.tif" not in plain and "original_file_name" not in plain
    named = c.get(url, {"file_names": "1"}).content.decode()
    assert "original_file_name" in named.splitlines()[0] and "patient-field-07.tif" in named
    exports = AuditEvent.objects.filter(action="review.picklist.export").order_by("id")
    assert [e.after["file_names"] for e in exports] == [False, True]
