"""Media helpers for tests."""
from __future__ import annotations

from types import ModuleType


def opened_streams(monkeypatch, module: ModuleType | None = None) -> list:
    """Every stream that ``media_open_stream`` (as ``module`` names it; default ``portal.core.media``)
    opens from now on, so a test can check that each was closed."""
    from portal.core import media

    module = module or media
    original = module.media_open_stream
    opened: list = []

    def open_stream(name, **kwargs):
        opened.append(original(name, **kwargs))
        return opened[-1]

    monkeypatch.setattr(module, "media_open_stream", open_stream)
    return opened


def audit_insert_fails(**kwargs) -> None:
    """Stands in for an audit recorder whose insert fails."""
    raise RuntimeError("the audit insert failed")
