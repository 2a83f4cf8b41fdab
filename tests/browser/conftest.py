"""Browser tests need Debian's Chromium (`apt-get install chromium chromium-driver`; .ci/run installs it)."""
from __future__ import annotations

import asyncio
import os

import pytest

from tests.browser.review_support import build_world, launch

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"external program missing: {CHROMIUM} (apt-get install chromium chromium-driver)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _close_event_loop_connections():
    """Playwright's sync API runs an event loop while a test is inside ``with sync_playwright()``, and while a
    loop runs Django keeps database connections apart from the thread's own (per context, as in async code):
    an ORM lookup between Playwright steps opens a second connection, and the test's teardown closes only
    the thread's. Closed here, from a context that sees them, so that the test database can be dropped at
    the end of the run (else: "is being accessed by other users")."""
    from django.db import connections

    yield

    async def close_all() -> None:
        connections.close_all()

    asyncio.run(close_all())


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def world(transactional_db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return build_world()
