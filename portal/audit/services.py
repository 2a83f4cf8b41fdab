"""Writing audit events. Every create/update/delete and every read of image data calls ``audit_record``."""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.audit.models import AuditEvent

GENESIS_HASH = "0" * 64


def audit_key() -> bytes:
    """The HMAC key (from settings/env, outside the database); generated into var/ for the demo."""
    if settings.AUDIT_HMAC_KEY:
        return settings.AUDIT_HMAC_KEY.encode()
    key_file = settings.VAR_DIR / "audit_hmac_key"
    if not key_file.exists():
        import secrets

        key_file.write_text(secrets.token_hex(32), encoding="utf-8")
        key_file.chmod(0o600)
    return key_file.read_text(encoding="utf-8").strip().encode()


def event_payload(event: AuditEvent) -> bytes:
    """Canonical bytes of an event's content (everything except its own hash)."""
    body = {
        "sequence": event.sequence,
        "occurred_at": event.occurred_at.isoformat(),
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "center_id": str(event.center_id) if event.center_id else None,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before,
        "after": event.after,
        "ip_address": event.ip_address,
        "request_id": event.request_id,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def event_hash(event: AuditEvent) -> str:
    """HMAC-SHA256 of the event's canonical payload."""
    return hmac.new(audit_key(), event_payload(event), hashlib.sha256).hexdigest()


def _request_fields(request) -> dict[str, Any]:
    if request is None:
        return {"ip_address": None, "request_id": ""}
    return {
        "ip_address": request.META.get("REMOTE_ADDR") or None,
        "request_id": getattr(request, "request_id", "")[:64],
    }


def audit_record(
    *,
    actor,
    action: str,
    center=None,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    before: Any = None,
    after: Any = None,
    request=None,
) -> AuditEvent:
    """Append one event to the chain (inside the caller's transaction when there is one).

    ``action`` is a dotted verb such as ``image.create`` or ``image.read``; ``obj`` (a model
    instance) fills ``object_type``/``object_id`` when they are not given.
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    user = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        last = AuditEvent.objects.select_for_update().order_by("-sequence").first()
        event = AuditEvent(
            sequence=(last.sequence + 1) if last else 1,
            occurred_at=timezone.now(),
            actor=user,
            actor_username=user.get_username() if user else "",
            center_id=getattr(center, "pk", center),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=before,
            after=after,
            prev_hash=last.hash if last else GENESIS_HASH,
            **_request_fields(request),
        )
        event.hash = event_hash(event)
        event.save()
    return event
