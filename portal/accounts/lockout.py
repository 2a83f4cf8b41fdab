"""django-axes glue: which address a request comes from, and what a locked-out client is told."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

LOCKED_MESSAGE = gettext_noop("Too many wrong passwords for this user from this address. Try again in %(minutes)s minutes.")


def client_ip(request: HttpRequest) -> str | None:
    """The client's address (REMOTE_ADDR; a proxy in front must set it correctly), as the audit records it."""
    return request.META.get("REMOTE_ADDR") or None


def lockout_message() -> str:
    """What a locked-out user reads (the cool-off time in minutes)."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    return _(LOCKED_MESSAGE) % {"minutes": minutes}


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """429 for a locked-out username and address: JSON ``{"message", "extra"}`` under /api/, else a page."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    if request.path.startswith("/api/"):
        response = JsonResponse({"message": lockout_message(), "extra": {"retry_after_seconds": seconds}},
                                status=429)
    else:
        response = render(request, "accounts/locked_out.html", {"message": lockout_message()}, status=429)
    response["Retry-After"] = str(seconds)
    return response
