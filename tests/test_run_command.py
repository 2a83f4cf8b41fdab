"""The README's run command (`make run`) on the embedded default: SQLite + filesystem broker.

Starts it as a subprocess in a fresh VAR_DIR, waits for the web server, GETs `/` and the login page,
logs in as each demo user, sends a task through the worker that `make run` started, and stops it.
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest

from tests.helpers import REPO, free_port, stop_process_group, wait_for

STARTUP_LIMIT_SECONDS = 120


def _embedded_env(var_dir, port):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "PYTEST", "DJANGO_"))}
    env.update(VAR_DIR=str(var_dir), PORT=str(port), PYTHONUNBUFFERED="1")
    return env


class Browser:
    """A cookie-keeping HTTP client good enough for a Django login form."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def get(self, path: str):
        with self.opener.open(self.base + path, timeout=30) as response:
            return response.status, response.geturl(), response.read().decode()

    def post_form(self, url: str, page: str, fields: dict):
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(url, data=data, headers={"Referer": url})
        with self.opener.open(request, timeout=30) as response:
            return response.status, response.geturl(), response.read().decode()

    def login(self, username: str, password: str):
        """Log in; where the role requires two-factor authentication, enrol as a newcomer would: read the
        key the enrolment page shows and type the code an authenticator app computes from it."""
        _, _, page = self.get("/accounts/login/")
        status, url, page = self.post_form(self.base + "/accounts/login/", page,
                                           {"username": username, "password": password})
        if "/accounts/2fa/enrol/" in url:
            from django_otp.oath import totp

            secret = re.search(r'id="otp-secret">([A-Z2-7]+)<', page).group(1)
            code = f"{totp(base64.b32decode(secret)):06d}"
            status, _, page = self.post_form(url, page, {"token": code})
            assert "backup codes" in page.lower(), page[-2000:]
            status, url, page = self.get("/")
        return status, url, page


@pytest.mark.slow
@pytest.mark.worker
def test_readme_run_command_serves_pages_logs_in_and_runs_tasks(tmp_path):
    port = free_port()
    var_dir = tmp_path / "var"
    env = _embedded_env(var_dir, port)
    log = open(tmp_path / "run.log", "wb")
    started = time.monotonic()
    proc = subprocess.Popen(["make", "run"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def up():
            try:
                return urllib.request.urlopen(base + "/healthz", timeout=2).status == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
                return False

        wait_for(up, timeout=STARTUP_LIMIT_SECONDS, interval=1, what="make run to serve /healthz")
        elapsed = time.monotonic() - started
        assert elapsed < STARTUP_LIMIT_SECONDS

        anonymous = Browser(base)
        status, url, page = anonymous.get("/")
        assert status == 200 and "/accounts/login/" in url and "Log in" in page

        credentials = json.loads((var_dir / "demo_credentials.json").read_text())
        output = (tmp_path / "run.log").read_text()
        assert f"http://127.0.0.1:{port}/" in output
        for username, password in credentials.items():
            assert password in output, f"{username}'s password is not printed"
            browser = Browser(base)
            status, url, page = browser.login(username, password)
            assert status == 200 and url.rstrip("/") == base, f"{username} could not log in"
            assert "Welcome" in page

        # a task through the embedded filesystem broker to the worker that `make run` started
        client = subprocess.run(
            [sys.executable, "-c",
             "from workers.tasks import smoke; print(smoke.apply_async(args=[4], queue='cpu').get(timeout=90)['value'])"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )
        assert client.stdout.strip() == "8", client.stderr[-2000:]
    finally:
        code = stop_process_group(proc, timeout=40)
        log.close()
    assert code is not None, "make run did not stop"
    # nothing left listening
    with pytest.raises(OSError):
        urllib.request.urlopen(base + "/healthz", timeout=2)
    print(f"make run served /healthz after {elapsed:.1f}s", file=sys.stderr)
