"""Browser: review-viewer defects from a clinician's walk-through (issue 16)."""
from __future__ import annotations

import pytest

from tests.browser.review_support import login, wait_saved, wait_viewer

pytestmark = [pytest.mark.browser]


def _selected_id(page):
    return page.evaluate("() => window.reviewViewer.state.selected && window.reviewViewer.state.selected.id")


def test_n_continues_after_a_cell_is_changed_to_a_hidden_class(world, browser, live_server):
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    login(page, live_server.url, "a_reviewer", PASSWORD)
    page.goto(f"{live_server.url}/review/images/{images[0].pk}/")
    wait_viewer(page)
    page.locator("#score-threshold").fill("0")
    page.uncheck("#toggle-erythrocyte")
    visible = [d for d in dets if d.class_name != "erythrocyte"]
    page.focus("#viewer-canvas")
    page.keyboard.press("n")
    page.keyboard.press("n")
    assert _selected_id(page) == str(visible[1].pk)
    page.keyboard.press("5")  # accept as erythrocyte: the cell leaves the view
    wait_saved(page)
    page.keyboard.press("n")
    assert _selected_id(page) == str(visible[2].pk)


def test_viewer_progress_and_session_page_count_the_same_cells_to_review(world, browser, live_server):
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    above = lambda t: sum(1 for d in dets if d.score >= t)  # noqa: E731
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    login(page, live_server.url, "a_reviewer", PASSWORD)
    page.goto(f"{live_server.url}/review/images/{images[0].pk}/")
    wait_viewer(page)
    assert page.inner_text("#visible-count") == str(above(0.5))
    assert page.inner_text("#my-progress") == f"0 of {above(0.5)}"
    page.focus("#viewer-canvas")
    page.keyboard.press("n")
    page.keyboard.press("a")
    page.locator("#score-threshold").fill("0.2")
    wait_saved(page)
    assert page.inner_text("#my-progress") == f"1 of {above(0.2)}"
    page.goto(f"{live_server.url}/review/sessions/{session.pk}/")
    first = page.locator(".cells-to-review").first.inner_text()
    assert first == str(above(0.2))
    page.goto(f"{live_server.url}/review/images/{images[0].pk}/")
    wait_viewer(page)
    assert page.input_value("#score-threshold") == "0.2"
    assert page.inner_text("#visible-count") == first


def test_n_goes_to_the_next_undecided_cell_and_j_to_the_next_cell(world, browser, live_server):
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    login(page, live_server.url, "a_reviewer", PASSWORD)
    page.goto(f"{live_server.url}/review/images/{images[0].pk}/")
    wait_viewer(page)
    page.locator("#score-threshold").fill("0")
    page.focus("#viewer-canvas")
    for key in ("j", "j", "a"):  # decide the second cell only
        page.keyboard.press(key)
    wait_saved(page)
    page.keyboard.press("k")
    assert _selected_id(page) == str(dets[0].pk)
    page.keyboard.press("n")  # skips the decided second cell
    assert _selected_id(page) == str(dets[2].pk)
    page.keyboard.press("p")  # back past it again
    assert _selected_id(page) == str(dets[0].pk)
    page.keyboard.press("j")
    assert _selected_id(page) == str(dets[1].pk)


def test_auto_advance_after_a_decision_is_a_setting(world, browser, live_server):
    from portal.review.models import Decision
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    login(page, live_server.url, "a_reviewer", PASSWORD)
    page.goto(f"{live_server.url}/review/images/{images[0].pk}/")
    wait_viewer(page)
    page.locator("#score-threshold").fill("0")
    page.check("#auto-advance")
    page.focus("#viewer-canvas")
    for key in ("n", "a", "r", "u"):
        page.keyboard.press(key)
    wait_saved(page)
    mine = {d.detection_id: d.verdict for d in Decision.objects.filter(reviewer=cast.a.reviewer)}
    assert mine == {dets[0].pk: "accept", dets[1].pk: "reject", dets[2].pk: "uncertain"}
    assert _selected_id(page) == str(dets[3].pk)
    # the setting is kept by this browser; off again, a decision stays on its cell
    page.reload()
    wait_viewer(page)
    assert page.is_checked("#auto-advance")
    page.uncheck("#auto-advance")
    page.locator("#score-threshold").fill("0")
    page.focus("#viewer-canvas")
    page.keyboard.press("n")
    page.keyboard.press("a")
    wait_saved(page)
    assert _selected_id(page) == str(dets[3].pk)
