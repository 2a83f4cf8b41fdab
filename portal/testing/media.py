"""Media helpers for tests."""
from __future__ import annotations


def opened_streams(monkeypatch) -> list:
    """Every stream that ``portal.core.media.media_open_stream`` opens from now on (``media_file_response``
    opens through it), so a test can check that each was closed."""
    from portal.core import media

    original = media.media_open_stream
    opened: list = []

    def open_stream(name, **kwargs):
        opened.append(original(name, **kwargs))
        return opened[-1]

    monkeypatch.setattr(media, "media_open_stream", open_stream)
    return opened


def audit_insert_fails(**kwargs) -> None:
    """Stands in for an audit recorder whose insert fails."""
    raise RuntimeError("the audit insert failed")
