"""Missing or invalid API credentials answer 401 with a challenge; sessions still need CSRF; the schema
and its reference page are for signed-in users only."""
from __future__ import annotations

import json

from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token


def test_an_anonymous_api_request_gets_401_with_a_token_challenge(client, db):
    response = client.get(reverse("api-me"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["message"] == "Authentication credentials were not provided."


def test_an_invalid_token_gets_401_with_a_token_challenge(client, db):
    response = client.get(reverse("api-me"), HTTP_AUTHORIZATION="Token not-a-real-key")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_session_write_without_csrf_token_is_refused(cast):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(cast.a.uploader)
    response = browser.post(reverse("api-patient-list"), data=json.dumps({"center": str(cast.a.center.pk)}),
                            content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["message"]


def test_a_token_write_needs_no_csrf_token(cast):
    token = Token.objects.create(user=cast.a.uploader)
    response = Client(enforce_csrf_checks=True).post(
        reverse("api-patient-list"), data=json.dumps({"center": str(cast.a.center.pk)}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 201, response.content


def test_the_schema_needs_credentials(client, cast):
    assert client.get(reverse("api-schema")).status_code == 401
    token = Token.objects.create(user=cast.a.reviewer)
    response = client.get(reverse("api-schema"), HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    assert b"/api/v1/sessions/" in response.content


def test_the_api_reference_page_sends_anonymous_users_to_login(client, cast):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    client.force_login(cast.a.reviewer)
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    assert b"<script>" not in response.content  # no inline script: the CSP stays strict
    assert b"core/api_docs.js" in response.content
