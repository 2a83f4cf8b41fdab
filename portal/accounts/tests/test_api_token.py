"""Personal API tokens: issued once, replaced, revoked, audited without the key."""
from __future__ import annotations

import re

from django.urls import reverse

from portal.audit.models import AuditEvent

URL = "/accounts/api-token/"


def _issued_key(response) -> str:
    match = re.search(r'value="([0-9a-f]{40})"', response.content.decode())
    assert match, "the new key is shown on the response that issued it"
    return match.group(1)


def test_a_user_issues_uses_replaces_and_revokes_their_token(cast, client):
    assert reverse("accounts:api-token") == URL
    client.force_login(cast.a.uploader)
    page = client.get(URL)
    assert page.status_code == 200 and "You have no token" in page.content.decode()
    assert "no-store" in page["Cache-Control"]
    first = _issued_key(client.post(URL, {"action": "issue"}))
    assert first not in client.get(URL).content.decode()  # shown once only
    api = client.__class__()
    assert api.get("/api/v1/sessions/", HTTP_AUTHORIZATION=f"Token {first}").status_code == 200
    second = _issued_key(client.post(URL, {"action": "issue"}))
    assert second != first
    assert api.get("/api/v1/sessions/", HTTP_AUTHORIZATION=f"Token {first}").status_code in (401, 403)
    assert api.get("/api/v1/sessions/", HTTP_AUTHORIZATION=f"Token {second}").status_code == 200
    assert client.post(URL, {"action": "revoke"}).status_code == 302
    assert api.get("/api/v1/sessions/", HTTP_AUTHORIZATION=f"Token {second}").status_code in (401, 403)
    actions = list(AuditEvent.objects.filter(actor=cast.a.uploader, action__startswith="api_token.")
                   .order_by("sequence").values_list("action", flat=True))
    assert actions == ["api_token.create", "api_token.rotate", "api_token.revoke"]
    dumped = str(list(AuditEvent.objects.filter(action__startswith="api_token.").values()))
    assert first not in dumped and second not in dumped


def test_a_token_carries_only_its_users_roles(cast, client):
    client.force_login(cast.a.validator)
    key = _issued_key(client.post(URL, {"action": "issue"}))
    api = client.__class__()
    assert api.get("/api/v1/images/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 403  # blinded role


def test_bad_actions_and_anonymous_users_are_refused(cast, client):
    assert client.get(URL).status_code == 302  # to the login page
    client.force_login(cast.a.reviewer)
    assert client.post(URL, {"action": "steal"}).status_code == 400
    assert client.post(URL, {"action": "revoke"}).status_code == 302  # nothing to revoke: no event
    assert not AuditEvent.objects.filter(action__startswith="api_token.").exists()
