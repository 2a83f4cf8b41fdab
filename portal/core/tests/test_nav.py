"""Every role sees only nav entries that open: no link leads to a 403 or 404 page."""
from __future__ import annotations

import re

import pytest
from django.test import Client


def _nav_links(html: str) -> list[str]:
    nav = re.search(r'<ul class="nav">(.*?)</ul>', html, re.S).group(1)
    return re.findall(r'href="([^"]+)"', nav)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["uploader", "reviewer", "validator", "stain", "admin", "auditor"])
def test_every_nav_entry_shown_to_a_role_opens(cast, role, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    user = cast.auditor if role == "auditor" else getattr(cast.a, role)
    client = Client()
    client.force_login(user)
    links = _nav_links(client.get("/").content.decode())
    assert "/" in links
    for href in links:
        assert client.get(href).status_code == 200, (role, href)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["validator", "stain"])
def test_an_empty_study_list_says_nothing_is_assigned_yet(cast, role):
    client = Client()
    client.force_login(getattr(cast.a, role))
    html = client.get("/validation/").content.decode()
    assert 'id="nothing-assigned"' in html and "Nothing assigned to you yet" in html
