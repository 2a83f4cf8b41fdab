"""Browser: editing any mask (brush, eraser, undo, vertex handles, split, merge), the cell list, image done →
next image, ``?cell=`` deep links and the 1024x768 layout, in Chromium against the live server.
Screenshots go to test-artifacts/review/ (docs/screenshots/review/ with UPDATE_SCREENSHOTS=1)."""
from __future__ import annotations

import pytest

from portal.testing.screenshots import screenshot_dir
from tests.browser.review_support import login, shot, wait_saved, wait_viewer

pytestmark = [pytest.mark.browser]
DOCS = screenshot_dir("review")  # small PNGs, copied to docs/screenshots/review with UPDATE_SCREENSHOTS=1


def _doc_shot(page, name: str, clip=None) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / name), clip=clip, full_page=False)


def _page_xy(page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of image pixel (x, y) in the viewer."""
    sx, sy = page.evaluate(f"() => window.reviewViewer.toScreen({x}, {y})")
    box = page.locator("#viewer-canvas").bounding_box()
    return box["x"] + sx, box["y"] + sy


def _open(page, live_server, image, query: str = ""):
    page.goto(f"{live_server.url}/review/images/{image.pk}/{query}")
    wait_viewer(page)


def _select(page, det):
    page.evaluate(f"""() => {{ const v = window.reviewViewer, inst = v.state.byId['{det.pk}'];
        v.fit(); v.zoomAt(3); v.select(inst); v.centerOn(inst, true); v.render(); }}""")


def _current(det, user):
    from portal.review.selectors import current_correction

    return current_correction(user=user, detection=det)


def test_reviewer_brushes_erases_undoes_edits_vertices_splits_and_merges(world, browser, live_server):
    from portal.results.models import Detection
    from portal.review.models import Decision, MaskCorrection
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server.url, "a_reviewer", PASSWORD)
    _open(page, live_server, images[0])
    page.locator("#score-threshold").fill("0")
    det = dets[0]
    _select(page, det)

    # brush: paint outward from the cell's edge -> a stored correction larger than the model's mask
    page.keyboard.press("b")
    page.keyboard.press(".")  # 2.0 -> 2.5 µm
    assert page.inner_text("#brush-size-value") == "2.5 µm"
    cx, cy, r = det.centroid_x_px, det.centroid_y_px, 17.5
    page.mouse.move(*_page_xy(page, cx + r - 2, cy))
    page.mouse.down()
    page.mouse.move(*_page_xy(page, cx + r + 8, cy), steps=5)
    page.mouse.up()
    wait_saved(page)
    painted = _current(det, cast.a.reviewer)
    assert painted is not None and painted.area_px > det.area_px
    _doc_shot(page, "brush.png", clip={"x": 0, "y": 0, "width": 900, "height": 640})

    # eraser: take a bite out of the other side
    page.keyboard.press("x")
    page.mouse.move(*_page_xy(page, cx - r - 2, cy))
    page.mouse.down()
    page.mouse.move(*_page_xy(page, cx - r + 6, cy), steps=4)
    page.mouse.up()
    wait_saved(page)
    erased = _current(det, cast.a.reviewer)
    assert erased.pk != painted.pk and erased.area_px < painted.area_px

    # undo: the eraser stroke is reverted on the server, the brush stroke is current again
    page.keyboard.press("z")
    wait_saved(page)
    assert _current(det, cast.a.reviewer).pk == painted.pk
    assert MaskCorrection.objects.filter(detection=det, reverted_at__isnull=False).count() == 1

    # vertex handles on an untouched 7 µm model cell: a handful, not 32
    other = dets[1]
    page.keyboard.press("v")
    _select(page, other)
    page.keyboard.press("e")
    page.wait_for_function("() => document.getElementById('viewer-canvas').hasAttribute('data-handles')")
    handles = int(page.get_attribute("#viewer-canvas", "data-handles"))
    assert 6 <= handles <= 14, handles
    pts = page.evaluate("() => window.reviewViewer.state.editPoly.pts")
    hx, hy = pts[0]
    page.mouse.move(*_page_xy(page, hx, hy))
    page.mouse.down()
    page.mouse.move(*_page_xy(page, hx + 6, hy), steps=3)
    page.mouse.up()
    wait_saved(page)
    edited = _current(other, cast.a.reviewer)
    assert edited is not None and len(edited.polygon) == handles
    _doc_shot(page, "vertices.png", clip={"x": 0, "y": 0, "width": 900, "height": 640})

    # split the third cell along a vertical line through its centre
    third = dets[2]
    page.keyboard.press("v")
    _select(page, third)
    page.keyboard.press("s")
    page.mouse.move(*_page_xy(page, third.centroid_x_px + 2, third.centroid_y_px - 30))
    page.mouse.down()
    page.mouse.move(*_page_xy(page, third.centroid_x_px + 2, third.centroid_y_px + 30), steps=4)
    page.mouse.up()
    wait_saved(page)
    assert _current(third, cast.a.reviewer).operation == "split"
    new = Detection.objects.get(source="manual", created_by=cast.a.reviewer)
    assert page.evaluate(f"() => !!window.reviewViewer.state.byId['{new.pk}']")

    # merge the fifth cell into the fourth
    fourth, fifth = dets[3], dets[4]
    page.keyboard.press("v")
    _select(page, fourth)
    page.evaluate("() => window.reviewViewer.fit()")
    page.keyboard.press("m")
    page.mouse.click(*_page_xy(page, fifth.centroid_x_px, fifth.centroid_y_px))
    wait_saved(page)
    merged = _current(fourth, cast.a.reviewer)
    assert merged.operation == "merge" and merged.partner_id == fifth.pk
    assert Decision.objects.get(detection=fifth, reviewer=cast.a.reviewer).verdict == "reject"
    # undo the merge: the fifth cell is undecided again for me
    page.keyboard.press("z")
    wait_saved(page)
    assert _current(fourth, cast.a.reviewer) is None
    assert not Decision.objects.filter(detection=fifth, reviewer=cast.a.reviewer).exists()

    # after a reload my corrections are still shown; another reviewer sees the model's masks
    _open(page, live_server, images[0])
    assert page.evaluate(f"() => window.reviewViewer.state.byId['{det.pk}'].correction.id") == str(painted.pk)
    page.close()


def test_cell_list_deep_link_and_image_done_to_next_image(world, browser, live_server):
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server.url, "a_reviewer", PASSWORD)

    # ?cell=<id>: that cell is selected and in the middle of the view
    target = dets[3]
    _open(page, live_server, images[0], f"?cell={target.pk}")
    assert page.evaluate("() => window.reviewViewer.state.selected.id") == str(target.pk)
    sx, sy = page.evaluate(f"() => window.reviewViewer.toScreen({target.centroid_x_px}, {target.centroid_y_px})")
    cw, ch = page.evaluate("() => [window.reviewViewer.state.cw, window.reviewViewer.state.ch]")
    assert abs(sx - cw / 2) < 20 and abs(sy - ch / 2) < 20
    assert page.locator("#cell-list-body tr.selected").get_attribute("data-cell") == str(target.pk)
    _doc_shot(page, "deep-link.png", clip={"x": 0, "y": 0, "width": 1280, "height": 900})

    # the list: every shown cell, sortable by score, filterable by class and decision
    page.locator("#score-threshold").fill("0")
    assert page.locator("#cell-list-body tr").count() == 10
    page.click("#cell-list th button[data-sort='score']")
    scores = [float(t) for t in page.locator("#cell-list-body tr td:nth-child(3)").all_inner_texts()]
    assert scores == sorted(scores)
    page.click("#cell-list th button[data-sort='score']")
    scores = [float(t) for t in page.locator("#cell-list-body tr td:nth-child(3)").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    page.select_option("#list-class", "erythrocyte")
    classes = page.locator("#cell-list-body tr td:nth-child(2)").all_inner_texts()
    assert classes and all(c.strip() == "erythrocyte" for c in classes)
    page.select_option("#list-class", "")
    page.locator("#cell-list-body tr").nth(2).click()
    page.keyboard.press("a")
    wait_saved(page)
    page.select_option("#list-decision", "accept")
    assert page.locator("#cell-list-body tr").count() == 1
    page.select_option("#list-decision", "")
    page.fill("#list-min-score", "0.5")
    assert page.locator("#cell-list-body tr").count() == sum(1 for d in dets if d.score >= 0.5)
    _doc_shot(page, "cell-list.png", clip={"x": 880, "y": 0, "width": 400, "height": 900})

    # image done -> the next image not done opens; the session page shows the mark
    page.locator("#viewer-canvas").focus()
    page.keyboard.press("D")
    page.wait_for_url(f"**/review/images/{images[1].pk}/")
    wait_viewer(page)
    page.goto(f"{live_server.url}/review/sessions/{session.pk}/")
    assert page.locator(".done-state[data-done='1']").count() == 1
    assert page.locator(".thumb").nth(0).locator(".image-done").count() == 1
    page.close()


def test_disputed_key_jumps_to_a_cell_the_reviewers_disagree_on(world, browser, live_server):
    from portal.review.services import decision_set
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    decision_set(user=cast.a.reviewer, detection=dets[2], verdict="accept")
    decision_set(user=cast.a.reviewer2, detection=dets[2], verdict="reject")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server.url, "a_reviewer", PASSWORD)
    _open(page, live_server, images[0])
    page.locator("#viewer-canvas").focus()
    page.keyboard.press("d")
    assert page.evaluate("() => window.reviewViewer.state.selected.id") == str(dets[2].pk)
    page.close()


def test_decision_buttons_are_above_the_fold_at_1024x768(world, browser, live_server):
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    login(page, live_server.url, "a_reviewer", PASSWORD)
    _open(page, live_server, images[0])
    page.keyboard.press("n")
    for button in ("#btn-accept", "#btn-reject", "#btn-uncertain"):
        box = page.locator(button).bounding_box()
        assert box is not None and box["y"] + box["height"] <= 768 and box["x"] + box["width"] <= 1024, (button, box)
    assert page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    shot(page, "viewer-1024x768.png")
    _doc_shot(page, "viewer-1024x768.png")
    page.close()


def test_the_audit_table_fits_1024_pixels_without_sideways_scrolling(world, browser, live_server):
    from portal.audit.services import audit_record
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    for k in range(3):  # changes with long unbroken values (the first event of a chain is not listed)
        audit_record(actor=cast.a.reviewer, action="review.correction.edit", center=cast.a.center.pk, obj=dets[k],
                     after={"polygon": [[round(j * 1.37, 2), 5.5] for j in range(60)], "note": "x" * 300})
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    login(page, live_server.url, "auditor", PASSWORD)
    page.goto(f"{live_server.url}/audit/")
    page.wait_for_selector(".audit-table")
    assert page.locator(".audit-table tbody tr").count() >= 3
    assert page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    table = page.locator(".audit-table").bounding_box()
    assert table["x"] + table["width"] <= 1024
    page.close()


def test_labels_stay_readable_at_threshold_005_with_stacked_duplicates(world, browser, live_server):
    """Ten detections stacked on one cell at threshold 0.05 read as one label with a count, not ten."""
    from portal.results.models import Detection
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    base = dets[0]
    for k in range(9):
        Detection.objects.create(
            result_set=base.result_set, index=100 + k, source=base.source, class_name=base.class_name,
            score=0.06 + 0.01 * k, x1=base.x1 + k % 2, y1=base.y1, x2=base.x2 + k % 2, y2=base.y2, mask_rle=base.mask_rle,
            polygon=base.polygon, area_px=base.area_px, area_um2=base.area_um2, diameter_um=base.diameter_um,
            centroid_x_px=base.centroid_x_px, centroid_y_px=base.centroid_y_px)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    login(page, live_server.url, "a_reviewer", PASSWORD)
    _open(page, live_server, images[0])
    page.locator("#score-threshold").fill("0.05")
    page.evaluate("() => window.reviewViewer.render()")
    placed = int(page.get_attribute("#viewer-canvas", "data-labels"))
    shown = int(page.inner_text("#onscreen-count"))
    assert shown >= 19 and placed < shown
    rects = page.evaluate("() => window.reviewViewer.state.labelsPlaced")
    assert rects == placed
    _doc_shot(page, "labels-threshold-0.05.png", clip={"x": 0, "y": 0, "width": 900, "height": 640})
    page.close()
