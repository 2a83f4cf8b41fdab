"""Writing audit events. Every create/update/delete and every read of image data calls ``audit_record``.

The chain: each event's ``hash`` is HMAC-SHA256 (key outside the database: ``settings.AUDIT_HMAC_KEY``,
else ``var/audit_hmac_key``) over its canonical content including ``prev_hash``. Appends are serialized
by locking the single ``AuditChainHead`` row (``SELECT ... FOR UPDATE``; SQLite serializes writers
anyway), which is updated in the same transaction with a signed copy of the new head. After commit the
signed head is also written to the checkpoint file ``settings.AUDIT_CHECKPOINT_PATH`` (outside the
database; only ever moved forward). ``verify_audit`` (``portal.audit.verification``) recomputes the
chain and compares its end with both heads, so an edit, a deletion anywhere (including the last event)
and a re-hash by SQL without the key are all detected.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from portal.audit.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
HEAD_ID = 1


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


def head_signature(*, chain_id: str, sequence: int, hash: str, summary: str) -> str:
    """HMAC of a chain head, for the head row and the checkpoint file."""
    message = f"head|{chain_id}|{sequence}|{hash}|{summary}".encode()
    return hmac.new(audit_key(), message, hashlib.sha256).hexdigest()


def event_summary(event: AuditEvent) -> str:
    return f"#{event.sequence} {event.action} {event.object_type}:{event.object_id}"[:200]


def _json_safe(value: Any) -> Any:
    """The value as it will read back from the JSON column (UUIDs, dates, tuples normalised)."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _request_fields(request) -> dict[str, Any]:
    if request is None:
        return {"ip_address": None, "request_id": ""}
    return {
        "ip_address": request.META.get("REMOTE_ADDR") or None,
        "request_id": getattr(request, "request_id", "")[:64],
    }


def _locked_head() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=HEAD_ID).first()
    if head is None:
        with transaction.atomic():  # first event ever (or after a test flush): create, then lock
            AuditChainHead.objects.get_or_create(pk=HEAD_ID)
        head = AuditChainHead.objects.select_for_update().get(pk=HEAD_ID)
    return head


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
    instance) fills ``object_type``/``object_id`` when they are not given. ``before``/``after`` are
    short JSON summaries (never image data or identifiers of people).
    """
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    user = actor if getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        head = _locked_head()
        event = AuditEvent(
            sequence=head.sequence + 1,
            occurred_at=timezone.now(),
            actor=user,
            actor_username=user.get_username() if user else "",
            center_id=getattr(center, "pk", center),
            action=action[:64],
            object_type=object_type[:64],
            object_id=str(object_id)[:64],
            before=_json_safe(before),
            after=_json_safe(after),
            prev_hash=head.hash if head.sequence else GENESIS_HASH,
            **_request_fields(request),
        )
        event.hash = event_hash(event)
        event.save()
        head.sequence = event.sequence
        head.hash = event.hash
        head.summary = event_summary(event)
        if event.sequence == 1 or not head.chain_id:
            head.chain_id = event.hash[:16] if event.sequence == 1 else head.chain_id or "unknown"
        head.signature = head_signature(
            chain_id=head.chain_id, sequence=head.sequence, hash=head.hash, summary=head.summary
        )
        head.save()
        checkpoint = {
            "chain_id": head.chain_id, "sequence": head.sequence, "hash": head.hash,
            "summary": head.summary, "signature": head.signature,
        }
        transaction.on_commit(lambda: checkpoint_write(checkpoint))
    return event


# --- checkpoint file (outside the database) -------------------------------------------------------

def checkpoint_key(chain_id: str) -> str:
    """Entries are kept per database and chain, so test databases never clash with the real one."""
    return f"{connection.settings_dict.get('NAME')}|{chain_id}"


def checkpoint_entries() -> dict[str, dict]:
    """This database's checkpoint entries, by chain id (every chain it ever had, even one since wiped)."""
    prefix = checkpoint_key("")
    return {key[len(prefix):]: entry for key, entry in checkpoint_read().items() if key.startswith(prefix)}


def checkpoint_path() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_PATH)


def checkpoint_read() -> dict:
    path = checkpoint_path()
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("chains", {})
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def _file_lock(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _newest_committed_head(head: dict) -> dict:
    """The chain head row when it is further along the same chain than ``head`` (read outside any
    transaction: committed events only), else ``head``."""
    if transaction.get_connection().in_atomic_block:
        return head
    newest = (AuditChainHead.objects.filter(pk=HEAD_ID, chain_id=head["chain_id"], sequence__gt=head["sequence"])
              .values("chain_id", "sequence", "hash", "summary", "signature").first())
    return newest or head


def checkpoint_write(head: dict) -> None:
    """Move this chain's signed head in the checkpoint file forward (never back), atomically.

    Group commit: the writer that gets the file lock writes the newest *committed* head of the chain,
    so the events that committed meanwhile (other requests, other processes) are covered by the same
    write, and their own writers then find the file already there and skip the write and its fsync.
    """
    path = checkpoint_path()
    with _file_lock(path):
        chains = checkpoint_read()
        key = checkpoint_key(head["chain_id"])
        current = chains.get(key)
        if current and int(current.get("sequence", 0)) >= head["sequence"]:
            return
        head = _newest_committed_head(head)
        chains[key] = {**head, "written_at": timezone.now().isoformat()}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".checkpoint-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"chains": chains}, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
