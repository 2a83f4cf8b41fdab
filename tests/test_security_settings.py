"""Production security settings: login (lockout tests: portal/accounts/tests/test_lockout.py), CSP, HSTS, secure cookies, idle session timeout."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from portal.testing.cast import PASSWORD

PRODUCTION = {
    "DEBUG": False,
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
    "SECURE_SSL_REDIRECT": True,
    "SECURE_HSTS_SECONDS": 31536000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
}


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def login(client, username, password, **extra):
    return client.post(reverse("accounts:login"), {"username": username, "password": password}, **extra)


def test_a_successful_login_clears_earlier_failures(client, cast):
    login(client, "a_uploader", "wrong-password-1")
    assert login(client, "a_uploader", PASSWORD).status_code == 302


@override_settings(**PRODUCTION)
def test_production_settings_send_csp_and_hsts_and_secure_cookies(client, cast):
    response = client.get(reverse("accounts:login"), secure=True)
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"

    response = login(client, "a_uploader", PASSWORD, secure=True)
    assert response.status_code == 302
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["secure"] and cookie["httponly"]
    assert 0 < int(cookie["max-age"] or settings.SESSION_COOKIE_AGE) <= 3600


@override_settings(**PRODUCTION)
def test_production_redirects_plain_http_to_https(client):
    response = client.get(reverse("accounts:login"))
    assert response.status_code == 301 and response["Location"].startswith("https://")


def test_sessions_expire_after_idle_time():
    assert settings.SESSION_COOKIE_AGE <= 60 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True  # idle, not absolute, timeout
