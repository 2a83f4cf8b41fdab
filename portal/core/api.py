"""DRF glue shared by every app: the exception handler that maps domain errors (``core/errors.py``) to responses."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal.core.errors import DomainError


def _django_validation_extra(exc: DjangoValidationError) -> dict[str, Any]:
    if hasattr(exc, "message_dict"):
        return {"fields": exc.message_dict}
    return {"errors": exc.messages}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Map domain errors and Django validation errors to ``{"message", "extra"}`` with a 4xx.

    ``message`` is for people, in the request's language (``Accept-Language``, the language cookie or the
    user's choice); ``extra`` keeps machine-readable keys and values (field names, codes, statuses)."""
    if isinstance(exc, DomainError):
        return Response({"message": exc.message, "extra": exc.extra}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        return Response(
            {"message": "; ".join(exc.messages) or _("Invalid input."), "extra": _django_validation_extra(exc)},
            status=400,
        )
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied(detail=str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data and len(data) == 1:
        response.data = {"message": str(data["detail"]), "extra": {}}
    elif isinstance(exc, drf_exceptions.ValidationError):
        response.data = {"message": _("Invalid input."), "extra": {"fields": data}}
    return response
