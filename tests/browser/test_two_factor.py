"""Browser: a validator (two-factor required) enrols an authenticator from the QR page on first login,
keeps the backup codes, logs out, and logs in again with a TOTP code computed here from the secret the
page showed, as an authenticator app would (RFC 6238). No CSP violation on the way."""
from __future__ import annotations

import base64
import os
import time

import pytest

from portal.testing.cast import PASSWORD, build_cast

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM lookups between Playwright steps


def code_for(secret_b32: str, *, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for this secret now (or ``steps_ahead`` 30-s steps later)."""
    from django_otp.oath import TOTP

    totp = TOTP(base64.b32decode(secret_b32), step=30, t0=0, digits=6)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


@pytest.mark.browser
def test_a_validator_enrols_and_logs_in_with_a_totp_code(live_server, transactional_db, settings):
    from playwright.sync_api import expect, sync_playwright

    build_cast()
    base = live_server.url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page()
        problems = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)

        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", "a_validator")
        page.fill("#id_password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/2fa/enrol/" in url)
        expect(page.locator(".qr svg")).to_be_visible()
        secret = page.locator("#otp-secret").inner_text().strip()
        page.goto(f"{base}/review/")  # nothing else opens before enrolment
        page.wait_for_url(lambda url: "/accounts/2fa/enrol/" in url)
        assert page.locator("#otp-secret").inner_text().strip() == secret  # same key after a reload

        page.fill("#id_token", code_for(secret))
        page.press("#id_token", "Enter")
        expect(page.locator("#backup-codes li")).to_have_count(10)
        expect(page.locator("a:has-text('Continue')")).to_have_attribute("href", "/review/")  # where it was going
        page.goto(f"{base}/")
        expect(page.locator("h1")).to_contain_text("Welcome")

        page.click("header button:has-text('Log out')")
        page.wait_for_url(lambda url: "/accounts/login/" in url)
        page.fill("#id_username", "a_validator")
        page.fill("#id_password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/2fa/" in url and "enrol" not in url)
        page.fill("#id_token", code_for(secret, steps_ahead=1))  # this step's code was used at enrolment
        page.press("#id_token", "Enter")
        page.wait_for_url(f"{base}/")
        expect(page.locator("h1")).to_contain_text("Welcome")
        browser.close()
    assert problems == []
