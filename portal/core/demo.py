"""Demo content for ``seed_demo``: the committed demo model and a synthetic image session."""
from __future__ import annotations


def seed_demo_model_and_session(*, center) -> list[str]:
    """Register the demo model bundle and upload a synthetic session (filled in as the apps land)."""
    return []
