"""The review viewer end to end in real Chromium against the live server: zoom, pan, threshold, decisions by
keyboard, reload, drawing, COCO export and re-import, pick list. Screenshots go to test-artifacts/review/."""
from __future__ import annotations

import json

import pytest

from tests.browser.review_support import login, shot, wait_saved, wait_viewer

pytestmark = [pytest.mark.browser]


def _state(page, expr):
    return page.evaluate(f"() => window.reviewViewer.state.{expr}")


def test_reviewer_zooms_pans_filters_decides_draws_exports_and_picks(world, browser, live_server, tmp_path):
    from portal.results.models import Detection
    from portal.review.models import Decision, PickList
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    login(page, live_server.url, "a_reviewer", PASSWORD)

    # session list -> session page -> viewer
    page.goto(f"{live_server.url}/review/")
    page.click("text=CA-BROWSER1")
    page.wait_for_selector("text=Make a pick list")
    assert page.locator(".thumb").count() == 2
    shot(page, "session.png")
    page.click(f"a[href='/review/images/{images[0].pk}/']")
    wait_viewer(page)
    shot(page, "viewer-fit.png")

    # threshold 0.5 by default: scores run 0.95 .. 0.05 over 10 detections
    above = lambda t: sum(1 for d in dets if d.score >= t)  # noqa: E731
    assert page.inner_text("#visible-count") == str(above(0.5))
    page.locator("#score-threshold").fill("0.2")
    assert page.inner_text("#visible-count") == str(above(0.2))
    page.locator("#score-threshold").fill("0.9")
    assert page.inner_text("#visible-count") == str(above(0.9))
    page.locator("#score-threshold").fill("0")
    assert page.inner_text("#visible-count") == "10"
    page.uncheck("#toggle-erythrocyte")
    assert page.inner_text("#visible-count") == str(sum(1 for d in dets if d.class_name != "erythrocyte"))
    page.check("#toggle-erythrocyte")

    # zoom with the buttons and the wheel, then pan by dragging
    s0 = _state(page, "scale")
    page.click("#zoom-in")
    page.wait_for_function(f"() => window.reviewViewer.state.scale > {s0}")
    box = page.locator("#viewer-canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    s1 = _state(page, "scale")
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"() => window.reviewViewer.state.scale > {s1}")
    tx0, ty0 = _state(page, "tx"), _state(page, "ty")
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx - 120, cy - 60, steps=5)
    page.mouse.up()
    assert _state(page, "tx") == pytest.approx(tx0 - 120, abs=2)
    assert _state(page, "ty") == pytest.approx(ty0 - 60, abs=2)
    page.click("#zoom-fit")

    # keyboard decisions: n a, n r, n u then z (undo), 2 on the fourth = accept as spermatocyte
    page.focus("#viewer-canvas")
    for key in ("n", "a", "n", "r", "n", "u", "z", "n", "2"):
        page.keyboard.press(key)
    wait_saved(page)
    shot(page, "viewer-decided.png")
    mine = {d.detection_id: (d.verdict, d.class_name) for d in Decision.objects.filter(reviewer=cast.a.reviewer)}
    assert mine == {dets[0].pk: ("accept", ""), dets[1].pk: ("reject", ""), dets[3].pk: ("accept", "spermatocyte")}

    # reload: decisions come back from the API
    page.reload()
    wait_viewer(page)
    restored = page.evaluate(
        "() => Object.fromEntries(window.reviewViewer.state.instances.filter(i => i.mine)"
        ".map(i => [i.id, i.mine.verdict + ':' + i.mine.class_name]))")
    assert restored == {str(dets[0].pk): "accept:", str(dets[1].pk): "reject:", str(dets[3].pk): "accept:spermatocyte"}

    # draw a polygon (g, four clicks, Enter) and a click-to-circle (c, click)
    page.click("#zoom-fit")
    page.keyboard.press("g")
    to_screen = "([x, y]) => window.reviewViewer.toScreen(x, y)"
    for x, y in ((20, 20), (80, 22), (78, 70), (24, 66)):
        sx, sy = page.evaluate(to_screen, [x, y])
        page.mouse.click(box["x"] + sx, box["y"] + sy)
    page.keyboard.press("Enter")
    wait_saved(page)
    page.keyboard.press("c")
    sx, sy = page.evaluate(to_screen, [700, 560])
    page.mouse.click(box["x"] + sx, box["y"] + sy)
    wait_saved(page)
    page.keyboard.press("v")
    drawn = list(Detection.objects.filter(result_set__image=images[0], source="manual").order_by("index"))
    assert len(drawn) == 2
    # within one screen pixel (≈ 1 image pixel at this fit zoom): Chromium delivers mouse events at whole
    # pixels, so where a click lands depends on the canvas's sub-pixel position in the page
    assert drawn[0].polygon[0] == pytest.approx([20, 20], abs=1.05) and drawn[0].area_px > 2000
    assert drawn[1].diameter_um == pytest.approx(7.0, rel=0.05)
    assert page.inner_text("#drawn-count") == "2"
    page.mouse.move(box["x"] + sx, box["y"] + sy)
    page.wait_for_function("() => document.getElementById('hover-info').textContent.includes('µm')")
    shot(page, "viewer-drawn.png")
    page.locator("#score-threshold").fill("0")
    page.focus("#viewer-canvas")
    page.keyboard.press("j")  # the first cell shown
    sx, sy = page.evaluate(to_screen, [dets[0].centroid_x_px, dets[0].centroid_y_px])
    page.mouse.move(box["x"] + sx, box["y"] + sy)
    for _ in range(4):
        page.mouse.wheel(0, -300)
        page.wait_for_timeout(50)
    page.wait_for_timeout(100)
    shot(page, "viewer-zoomed.png")

    # COCO export, re-imported with the training importer
    response = page.request.get(f"{live_server.url}/api/v1/review/coco/?session={session.pk}&images=all")
    assert response.ok
    path = tmp_path / "coco.json"
    path.write_bytes(response.body())
    from inference.data import load_coco

    ds = load_coco(str(path))
    anns = {a["extra"]["portal_detection_id"]: a for r in ds.records for a in r["annotations"]}
    assert set(anns) == {str(dets[0].pk), str(dets[3].pk), str(drawn[0].pk), str(drawn[1].pk)}
    assert ds.class_names[anns[str(dets[3].pk)]["category_id"]] == "spermatocyte"
    assert ds.records[0]["um_per_px"] == 0.2
    assert json.loads(path.read_text())["info"]["selection_rule_id"] == "adjudication-else-unanimous"

    # pick list: accepted round spermatids (dets[0] and the two drawn ones), best score first
    page.goto(f"{live_server.url}/review/sessions/{session.pk}/")
    page.click("#make-picklist")
    page.wait_for_selector("#pick-count")
    assert page.inner_text("#pick-count") == "3"
    page.wait_for_function("() => [...document.querySelectorAll('.picklist img')].every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "picklist.png")
    pick_list = PickList.objects.get()
    assert [i.detection_id for i in pick_list.items.order_by("rank")][0] == dets[0].pk
    csv_text = page.request.get(f"{live_server.url}/review/picklists/{pick_list.pk}/picklist.csv").text()
    assert csv_text.startswith("rank,detection_id") and csv_text.count("\n") == 4
    pos = page.request.get(f"{live_server.url}/review/picklists/{pick_list.pk}/positions.pos").json()
    assert len(pos["map"]["StagePositions"]["array"]) == 3


def test_center_admin_adjudicates_in_the_viewer(world, browser, live_server):
    from portal.review.models import Adjudication
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    login(page, live_server.url, "a_admin", PASSWORD)
    page.goto(f"{live_server.url}/review/images/{images[0].pk}/")
    wait_viewer(page)
    page.focus("#viewer-canvas")
    page.keyboard.press("n")
    page.select_option("#adj-class", "erythrocyte")
    page.click("#adj-reject")
    wait_saved(page)
    assert page.inner_text("#sel-final").startswith("reject erythrocyte (adjudication)")
    adj = Adjudication.objects.get()
    assert (adj.detection_id, adj.verdict, adj.adjudicator) == (dets[0].pk, "reject", cast.a.admin)


def test_uploader_sees_the_viewer_read_only(world, browser, live_server):
    from portal.review.models import Decision
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    page = browser.new_page()
    login(page, live_server.url, "a_uploader", PASSWORD)
    page.goto(f"{live_server.url}/review/images/{images[0].pk}/")
    wait_viewer(page)
    assert page.locator("#btn-accept").count() == 0
    page.focus("#viewer-canvas")
    page.keyboard.press("n")
    page.keyboard.press("a")
    page.wait_for_function("() => document.getElementById('save-status').textContent.includes('read-only')")
    assert not Decision.objects.exists()
