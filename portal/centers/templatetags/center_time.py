"""``{{ value|center_time:center }}``: a time in a center's zone, localized, the zone named."""
from __future__ import annotations

from django import template

from portal.centers.timezones import UTC, format_in_zone

register = template.Library()


@register.filter
def center_time(value, center) -> str:
    """``value`` (an aware datetime) in ``center``'s zone (a Center or a zone name; None: UTC)."""
    if center is None:
        name = UTC
    elif isinstance(center, str):
        name = center
    else:
        name = center.time_zone
    return format_in_zone(value, name)
