"""Where the tests find ``../shared/fixtures`` (detectron2 configs, the parity model) and what happens
when it is not there.

The fixtures live beside the repository (``<repo>/../shared/fixtures``), never at a machine path.
``SHARED_FIXTURES_DIR`` overrides the place (a CI cache, or a missing folder to try a bare clone).
Absent in a developer's clone, the tests that need them are skipped with the reason; absent in CI
(``CI`` set to a true value, as CI services do), they fail: CI must run them.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV_OVERRIDE = "SHARED_FIXTURES_DIR"


def running_in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """True when the ``CI`` variable says so (``true``, ``1``, ``yes``; any case)."""
    return environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def shared_fixtures_dir(*, environ: Mapping[str, str] = os.environ, root: Path = REPO) -> Path:
    """The shared fixtures folder; skips the calling test when it is absent, fails it in CI."""
    override = environ.get(ENV_OVERRIDE, "")
    path = Path(override) if override else root.parent / "shared" / "fixtures"
    if not path.is_dir():
        reason = (f"external fixtures missing: {path} (the ../shared checkout beside the repository"
                  f" or ${ENV_OVERRIDE})")
        if running_in_ci(environ):
            pytest.fail(f"{reason}; CI must run these tests", pytrace=False)
        pytest.skip(reason)
    return path
