"""Where browser tests write their screenshots.

By default under ``test-artifacts/<topic>/`` (ignored by git), so a test run leaves the checkout clean.
With ``UPDATE_SCREENSHOTS=1`` in the environment they replace the committed copies in
``docs/screenshots/<topic>/`` (review the diff, then commit them).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # portal/testing/ -> the repository


def screenshots_update_docs() -> bool:
    """True when ``UPDATE_SCREENSHOTS`` is set to 1/true/yes (the docs copies are to be rewritten)."""
    return os.environ.get("UPDATE_SCREENSHOTS", "").strip().lower() in ("1", "true", "yes")


def screenshot_dir(topic: str) -> Path:
    """The folder (created) for the screenshots of ``topic`` (``review``, ``i18n``, ...)."""
    root = REPO / "docs" / "screenshots" if screenshots_update_docs() else REPO / "test-artifacts"
    path = root / topic
    path.mkdir(parents=True, exist_ok=True)
    return path
