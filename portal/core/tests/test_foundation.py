"""Settings from the environment, login, home page by role, deploy checks."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from portal.lib import env
from portal.testing.cast import PASSWORD
from tests.helpers import REPO


def test_env_helpers_parse_and_refuse_bad_values(monkeypatch, tmp_path):
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_INT", "12")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env.env_bool("X_BOOL") is True
    assert env.env_int("X_INT", 0) == 12
    assert env.env_list("X_LIST", []) == ["a", "b", "c"]
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_BOOL"):
        env.env_bool("X_BOOL")
    monkeypatch.setenv("X_INT", "twelve")
    with pytest.raises(ImproperlyConfigured, match="X_INT"):
        env.env_int("X_INT", 0)
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env.env_str("X_SECRET") == "from-a-file"


def test_home_redirects_anonymous_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_home_shows_what_each_role_may_do(client, cast):
    client.force_login(cast.a.uploader)
    page = client.get("/").content.decode()
    assert "Center CA" in page and "Uploader" in page and "upload images" in page
    assert "Center CB" not in page
    client.force_login(cast.a.validator)
    page = client.get("/").content.decode()
    assert "blinded validation" in page


def test_login_page_logs_in_and_logout_needs_post(client, cast):
    response = client.post(reverse("accounts:login"), {"username": cast.a.reviewer.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert client.get("/").status_code == 302


def test_responses_carry_request_id_and_content_security_policy(client):
    response = client.get(reverse("accounts:login"), HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    assert "default-src 'self'" in response["Content-Security-Policy"]


def test_healthz_reports_ok(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_check_deploy_is_clean_under_production_environment(tmp_path):
    # Not the inherited DATABASE_URL: on PostgreSQL it logs in as the test superuser, which the row-level
    # security check rightly refuses (its own tests, tests/test_row_level_security.py, log in as the app
    # role); here the embedded default database stands in.
    inherited = {k: v for k, v in os.environ.items()
                 if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL")}  # the first: set by browser tests
    production = dict(
        inherited,
        DEBUG="0",
        PORTAL_HTTPS="1",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="portal.example.org",
        AUDIT_HMAC_KEY=secrets.token_hex(32),
        VAR_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO, env=production, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_secret_key_is_generated_into_var_and_kept(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    env_vars = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env_vars.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="portal.settings")
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-c", "import django; django.setup(); " + code],
        cwd=REPO, env=env_vars, capture_output=True, text=True, timeout=120,
    ).stdout.strip()
    first, second = run(), run()
    assert len(first) >= 50 and first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
