"""Activate the time zone a signed-in user sees (see ``portal.centers.timezones`` for the rule)."""
from __future__ import annotations

from django.utils import timezone

from portal.centers.timezones import SESSION_KEY, zone


class CenterTimeZoneMiddleware:
    """Activate the zone stored in the session at login (no query per request); UTC otherwise."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        name = session.get(SESSION_KEY) if session is not None else None
        if name:
            timezone.activate(zone(name))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
