"""Browser: create a study, pick, open, two validators score (keyboard) and sign, lock, unblind, report."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.db import connections

from portal.testing import validation as vt
from portal.testing.cast import PASSWORD, build_cast
from portal.validation.models import Cell
from tests.browser.review_support import login

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM lookups between Playwright steps

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "validation"


def _login(page, base, username):
    page.context.clear_cookies()
    login(page, base, username, PASSWORD)  # with the code step for admins and validators
    page.wait_for_url(f"{base}/")


@pytest.mark.browser
def test_validation_study_end_to_end_in_the_browser(live_server, transactional_db, settings, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    settings.MEDIA_ROOT = tmp_path / "media"
    cast = build_cast()
    a = cast.a
    session = vt.make_session(a)
    image = vt.make_image(session)
    mv = vt.make_model_version()
    vt.make_result_set(image, mv)
    base = live_server.url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        # administrator creates the draft study and adds two validators
        _login(page, base, a.admin.username)
        page.goto(f"{base}/validation/studies/new/")
        page.fill("#id_name", "Browser study")
        page.select_option("#id_center", str(a.center.pk))
        page.select_option("#id_sessions", [str(session.pk)])
        page.select_option("#id_model_version", str(mv.pk))
        page.select_option("#id_design", "picked_cells")
        page.click("main button[type=submit]")
        page.wait_for_url("**/validation/studies/*/")
        study_url = page.url
        for name in (a.validator.username, a.validator2.username):
            page.select_option("#add-validator", name)
            page.click("form.inline button[type=submit]")
            page.wait_for_load_state()

        # the embryologist picks cells on the plain image
        _login(page, base, a.uploader.username)
        page.goto(study_url + "pick/")
        img = page.locator("#fields img").first
        img.wait_for()
        expect(img).to_have_js_property("complete", True)
        for n, (x, y) in enumerate(vt.PLANTED_PICKS, start=1):
            img.click(position={"x": x, "y": y})
            expect(page.locator(".marker")).to_have_count(n)

        _login(page, base, a.admin.username)
        page.goto(study_url)
        page.click("#open-study")
        page.wait_for_selector("text=Open for scoring")

        # two validators score with the keyboard and sign
        for user in (a.validator, a.validator2):
            _login(page, base, user.username)
            page.goto(study_url + "score/")
            expect(page.locator("#cell-id")).not_to_have_text("")
            for n in range(1, 15):
                public_id = page.inner_text("#cell-id")
                positive = vt.planted_truth(Cell.objects.get(public_id=public_id))
                page.keyboard.press("1" if positive else "2")
                page.wait_for_selector("button[data-field=prm1][aria-pressed=true]")
                page.keyboard.press("4" if positive else "5")
                page.wait_for_selector("button[data-field=pna][aria-pressed=true]")
                page.keyboard.press("y")
                expect(page.locator("#progress-text")).to_have_text(re.compile(f"^{n} of 14"))
            assert "14 of 14" in page.inner_text("#progress-text")
            page.click("#sign-link")
            page.fill("#password", PASSWORD)
            page.click("#sign-button")
            page.wait_for_selector("#signature")

        # lock, unblind, report
        _login(page, base, a.admin.username)
        page.goto(study_url)
        page.click("#lock-study")
        page.fill("#password", PASSWORD)
        page.screenshot(path=str(ARTIFACTS / "lock-signature.png"))
        page.click("#confirm-button")
        page.wait_for_selector("#unblind-study")
        page.click("#unblind-study")
        expect(page.locator("#signature-meaning")).to_contain_text("I unblind this study")
        page.fill("#password", PASSWORD)
        page.click("#confirm-button")
        page.click("#report-link")
        page.wait_for_selector("#metrics")
        row = page.locator("tr[data-group='Model picks'][data-metric='PPV (precision)'] td.estimate")
        assert row.inner_text() == vt.PLANTED_MODEL_PPV_TEXT
        assert "I confirm these scores" in page.inner_text("#report")
        assert "verified at unblinding" in page.inner_text("#report")
        page.emulate_media(media="print")
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        browser.close()
        # the ORM lookup above ran while Playwright's event loop was running, so Django gave it its own
        # connection (per async context), which nothing else closes: it kept the test database open
        connections.close_all()
    assert not [e for e in errors if "Content Security Policy" in e], errors
