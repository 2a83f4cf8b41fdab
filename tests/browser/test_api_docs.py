"""Browser: the API reference (Swagger UI) renders its operations under the portal's strict CSP."""
from __future__ import annotations

import os

import pytest

from portal.testing.cast import PASSWORD, build_cast

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM lookups between Playwright steps


@pytest.mark.browser
def test_swagger_ui_shows_the_operations_without_a_csp_violation(live_server, transactional_db):
    from playwright.sync_api import expect, sync_playwright

    cast = build_cast()
    base = live_server.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page()
        console, errors, failed = [], [], []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", cast.a.reviewer.username)
        page.fill("#id_password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(f"{base}/")
        response = page.goto(f"{base}/api/docs/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
        assert page.locator(".opblock").count() > 30  # every API operation is listed
        expect(page.locator(".opblock-summary-path", has_text="/api/v1/sessions/").first).to_be_visible()
        page.locator(".opblock-summary", has_text="/api/v1/me/").first.click()  # expands: React keeps working
        expect(page.locator(".opblock.is-open")).to_have_count(1)
        browser.close()
    violations = [line for line in console if "Content Security Policy" in line or "Refused to" in line]
    assert violations == []
    assert errors == []
    assert [f for f in failed if not f.endswith("/favicon.ico")] == []  # schema, scripts and styles load
