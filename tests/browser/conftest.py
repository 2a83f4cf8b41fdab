"""Browser tests need Debian's Chromium (`apt-get install chromium chromium-driver`; .ci/run installs it)."""
from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"external program missing: {CHROMIUM} (apt-get install chromium chromium-driver)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
