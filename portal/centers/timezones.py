"""Per-center time zones: storage stays UTC, people see the time of the center the data belongs to.

The rule for which zone a page uses (activated per request by ``CenterTimeZoneMiddleware``):

1. A page about one center's object (a study report, a session) shows that center's zone: its view
   calls ``center_time_zone_activate(center)`` after getting the object through the access layer.
2. Otherwise the zone chosen at login (``user_time_zone``): the zone of the user's centers when they
   all share one; UTC for users of centers in several zones and for users without a center.
3. Lists that mix centers (the audit trail) render each row in its own center's zone with the
   ``center_time`` filter (``portal/centers/templatetags/center_time.py``), the zone always named.

Machine exports (CSV, JSON, the API) stay UTC ISO-8601 and say so.
"""
from __future__ import annotations

import zoneinfo
from datetime import datetime
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

SESSION_KEY = "portal_time_zone"
UTC = "UTC"


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    """Raise ``ValidationError`` unless ``value`` is an IANA time zone name (``Asia/Shanghai``, ``UTC``)."""
    if value not in _known_zones():
        raise ValidationError(_("“%(value)s” is not an IANA time zone name (for example Asia/Shanghai)."),
                              code="invalid_time_zone", params={"value": value})


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The ``ZoneInfo`` of a validated name; UTC for an unknown one (fail safe: storage time)."""
    return zoneinfo.ZoneInfo(name if name in _known_zones() else UTC)


def user_time_zone(user) -> str:
    """The zone name a user sees by default: their centers' zone when they all share one, else UTC."""
    from portal.centers.models import Membership

    names = set(Membership.objects.filter(user=user).values_list("center__time_zone", flat=True))
    return names.pop() if len(names) == 1 else UTC


def center_time_zone_activate(center) -> None:
    """Show this request's times in ``center``'s zone (rule 1 above)."""
    timezone.activate(zone(center.time_zone))


def format_in_zone(value: datetime | None, zone_name: str, fmt: str = "DATETIME_FORMAT") -> str:
    """``value`` in ``zone_name``, formatted for the active language, the zone named: ``… (Asia/Shanghai)``."""
    if value is None:
        return "—"
    local = timezone.localtime(value, zone(zone_name))
    return f"{formats.date_format(local, fmt)} ({zone(zone_name).key})"
