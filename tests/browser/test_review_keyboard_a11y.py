"""Keyboard-only review and a basic accessibility check (labels, names, alt text, contrast, focus order)."""
from __future__ import annotations

import pytest

from tests.browser.review_support import (
    A11Y_JS,
    launch,
    login,
    shot,
    tab_order,
    wait_saved,
    wait_viewer,
)

pytestmark = [pytest.mark.browser]


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b.new_page(viewport={"width": 1400, "height": 950})
        b.close()


def _reach(page, target_id: str, limit: int = 80) -> int:
    """Press Tab until ``target_id`` has focus; returns how many presses it took."""
    for n in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.id") == target_id:
            return n
    raise AssertionError(f"Tab never reached #{target_id}")


def test_a_reviewer_works_with_the_keyboard_only(world, page, live_server):
    from portal.review.models import Decision
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    page.goto(f"{live_server.url}/accounts/login/?next=/review/")
    page.focus("body")
    _reach(page, "id_username")
    page.keyboard.type("a_reviewer")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:has-text('Sessions to review')")
    # from the session list to the session, then to the first image, by Tab and Enter
    page.keyboard.press("Tab")
    for _ in range(60):
        if page.evaluate("() => document.activeElement.textContent.trim()") == "CA-BROWSER1":
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector(".thumb")
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("() => (document.activeElement.getAttribute('href') || '').startsWith('/review/images/')"):
            break
    page.keyboard.press("Enter")
    wait_viewer(page)
    assert str(images[0].pk) in page.url
    _reach(page, "viewer-canvas")
    for key in ("n", "a", "n", "n", "r", "+", "ArrowLeft", "0", "n", "3"):
        page.keyboard.press(key)
    wait_saved(page)
    assert "Selected:" in page.inner_text("#selection-live")
    shot(page, "viewer-keyboard.png")
    got = {d.detection_id: (d.verdict, d.class_name) for d in Decision.objects.all()}
    assert got == {dets[0].pk: ("accept", ""), dets[2].pk: ("reject", ""),
                   dets[3].pk: ("accept", "elongated_spermatid")}
    # buttons work from the keyboard too: Tab to "Accept" and press Space on the selected cell
    _reach(page, "btn-accept")
    page.keyboard.press("Space")
    wait_saved(page)
    assert Decision.objects.get(detection=dets[3]).verdict == "accept"
    # next image with ]
    _reach(page, "viewer-canvas")
    page.keyboard.press("]")
    page.wait_for_url(f"**/review/images/{images[1].pk}/")
    wait_viewer(page)


def test_review_pages_pass_a_basic_accessibility_check(world, page, live_server):
    from portal.review.services import decision_set, pick_list_create
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    decision_set(user=cast.a.reviewer, detection=dets[0], verdict="accept")
    pick_list = pick_list_create(user=cast.a.reviewer, session=session)
    login(page, live_server.url, "a_admin", PASSWORD)
    pages = {
        "session list": "/review/",
        "session": f"/review/sessions/{session.pk}/",
        "viewer": f"/review/images/{images[0].pk}/",
        "pick list": f"/review/picklists/{pick_list.pk}/",
    }
    problems = {}
    for name, url in pages.items():
        page.goto(live_server.url + url)
        if name == "viewer":
            wait_viewer(page)
            page.focus("#viewer-canvas")
            page.keyboard.press("n")  # show the selection panel too
        found = page.evaluate(A11Y_JS)
        if found:
            problems[name] = found
    assert not problems, problems


def test_viewer_focus_order_follows_the_layout(world, page, live_server):
    from portal.testing.cast import PASSWORD

    cast, session, images, dets = world
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "a_reviewer")
    page.fill("#id_password", PASSWORD)
    page.press("#id_password", "Enter")
    page.wait_for_url(lambda url: "/accounts/login" not in url)
    page.goto(f"{live_server.url}/review/images/{images[0].pk}/")
    wait_viewer(page)
    order = tab_order(page, 70)
    # issue 16: the decision and navigation buttons come first in the side column (above the fold at
    # 1024x768), then the cell list, then the class toggles
    expected = ["img-next", "zoom-in", "zoom-fit", "tool-select", "tool-polygon", "tool-brush", "brush-size",
                "tool-merge", "draw-class", "score-threshold", "viewer-canvas", "btn-next", "btn-image-done",
                "list-class", "toggle-round_spermatid", "toggle-leukocyte", "show-labels"]
    positions = [order.index(e) for e in expected]
    assert positions == sorted(positions), order
