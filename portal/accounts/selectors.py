"""Account reads."""
from __future__ import annotations

from datetime import datetime

from rest_framework.authtoken.models import Token


def api_token_created_at(*, user) -> datetime | None:
    """When ``user``'s API token was issued, or None when they have none (the key itself is never shown again)."""
    return Token.objects.filter(user=user).values_list("created", flat=True).first()
