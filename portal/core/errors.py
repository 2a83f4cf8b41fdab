"""Domain errors shared by every app, apart from the DRF glue that maps them to responses (``core/api.py``)."""
from __future__ import annotations

from typing import Any

from django.http import Http404


class DomainError(Exception):
    """A business rule refused an operation; maps to a 4xx ``{"message": ..., "extra": ...}``."""

    status_code = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        if status_code is not None:
            self.status_code = status_code


class Conflict(DomainError):
    """The object's state does not allow the operation (409)."""

    status_code = 409


class NotFound(Http404):
    """The one answer of the access layer for "absent", "another center's" and "blinded from you".

    A subclass of ``Http404``: HTML views answer Django's 404 page, the API ``{"message": "Not found."}``.
    """
