"""Two-factor authentication (django-otp): required for center admins, validators, auditors and staff,
optional for others; enforced for the admin site and the API-token page; token API calls unaffected.

These tests log in through the login page (not ``force_login``, which the test suite marks verified)."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token

from portal.audit.models import AuditEvent
from portal.testing.cast import PASSWORD, otp_device_for, totp_now

ENROL = "/accounts/2fa/enrol/"
VERIFY = "/accounts/2fa/"


@pytest.fixture(autouse=True)
def _no_retry_delay(settings):
    """django-otp makes a device wait 1 s, 2 s, 4 s ... after each wrong code; these tests enter a wrong
    code and then the right one at once."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def password_login(client, user):
    response = client.post(reverse("accounts:login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, "the password step passes"
    return response


def actions(user) -> list[str]:
    return list(AuditEvent.objects.filter(actor=user).values_list("action", flat=True))


def test_a_validator_without_a_device_can_do_nothing_but_enrol(client, cast):
    password_login(client, cast.a.validator)
    for url in ("/", "/review/", reverse("validation:index"), reverse("accounts:api-token")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(ENROL), url
    api = client.get(reverse("api-session-list"))
    assert api.status_code == 403 and "two-factor" in api.json()["message"]
    assert client.get(ENROL).status_code == 200


def test_enrolment_shows_a_qr_code_and_backup_codes_once(client, cast):
    user = cast.a.admin
    password_login(client, user)
    page = client.get(ENROL).content.decode()
    # the QR code is inline SVG without script; the only scripts are files (base.html's JavaScript catalog)
    assert "<svg" in page and re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    assert re.search(r'id="otp-secret">([A-Z2-7]+)<', page).group(1)
    assert "otpauth://totp/" in page
    client.get(ENROL)
    assert TOTPDevice.objects.filter(user=user).count() == 1  # a reload keeps the same key

    wrong = client.post(ENROL, {"token": "000000" if totp_now(device) != "000000" else "111111"})
    assert wrong.status_code == 200 and "not correct" in wrong.content.decode()
    done = client.post(ENROL, {"token": totp_now(device), "next": "/"})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9]+)</code></li>", done.content.decode())
    assert len(codes) == 10
    assert client.get("/").status_code == 200  # verified now
    assert client.get(ENROL).status_code == 302  # enrolled: the page is not offered again
    assert {"auth.login", "auth.otp.enrol.failed", "auth.otp.enrol"} <= set(actions(user))


def test_login_with_a_device_asks_for_the_code_after_the_password(client, cast):
    user = cast.a.validator
    device = otp_device_for(user)
    response = password_login(client, user)
    assert client.get("/").status_code == 302 and client.get("/")["Location"].startswith(VERIFY)
    response = client.post(VERIFY, {"token": "12345", "next": "/review/"})
    assert response.status_code == 200 and "not correct" in response.content.decode()
    response = client.post(VERIFY, {"token": totp_now(device), "next": "/review/"})
    assert response.status_code == 302 and response["Location"] == "/review/"
    assert client.get("/").status_code == 200
    assert {"auth.otp.failed", "auth.otp.verify"} <= set(actions(user))


def test_a_backup_code_works_once(client, cast):
    from portal.accounts.services import otp_backup_codes_issue

    user = cast.a.validator
    otp_device_for(user)
    code = otp_backup_codes_issue(user=user)[0]
    password_login(client, user)
    assert client.post(VERIFY, {"token": code}).status_code == 302
    assert client.get("/").status_code == 200
    again = client.__class__()
    password_login(again, user)
    assert again.post(VERIFY, {"token": code}).status_code == 200  # used already
    assert again.get("/").status_code == 302


def test_optional_roles_pass_without_a_device_but_need_one_for_an_api_token(client, cast):
    password_login(client, cast.a.uploader)
    assert client.get("/").status_code == 200
    response = client.get(reverse("accounts:api-token"))
    assert response.status_code == 302 and response["Location"].startswith(ENROL)
    assert client.post(reverse("accounts:api-token"), {"action": "issue"}).status_code == 302
    assert not Token.objects.filter(user=cast.a.uploader).exists()


def test_an_auditor_and_a_superuser_must_enrol(client, cast):
    for user in (cast.auditor, cast.superuser):
        c = client.__class__()
        password_login(c, user)
        assert c.get("/").status_code == 302 and c.get("/")["Location"].startswith(ENROL)


def test_the_admin_site_needs_the_second_factor(client, cast):
    otp_device_for(cast.superuser)
    password_login(client, cast.superuser)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(VERIFY)
    # The admin's own login form asks for the code as well.
    admin_client = client.__class__()
    response = admin_client.post(reverse("admin:login"), {"username": "root", "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in admin_client.session
    response = admin_client.post(reverse("admin:login"), {
        "username": "root", "password": PASSWORD, "otp_device": otp_device_for(cast.superuser).persistent_id,
        "otp_token": totp_now(otp_device_for(cast.superuser)), "next": "/admin/"})
    assert response.status_code == 302
    assert admin_client.get("/admin/").status_code == 200


def test_token_authenticated_api_calls_need_no_second_factor(client, cast):
    token = Token.objects.create(user=cast.a.validator)  # e.g. issued before 2FA became required
    response = client.get(reverse("api-validation-my-studies"),
                          HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
