"""Template context: the name of the time zone the page's times are shown in."""
from django.utils import timezone


def time_zone(request) -> dict:
    """``time_zone_name``: the active zone (``Asia/Shanghai``), for "times in …" notes on pages."""
    return {"time_zone_name": timezone.get_current_timezone_name()}
