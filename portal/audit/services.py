"""Writing audit events. Every create/update/delete calls ``audit_record``; every read of image data calls
``audit_record_read``.

The chain: each event's ``hash`` is HMAC-SHA256 (key outside the database: ``settings.AUDIT_HMAC_KEY``,
else ``var/audit_hmac_key``) over its canonical content including ``prev_hash``. Appends are serialized
by locking the single ``AuditChainHead`` row (``SELECT ... FOR UPDATE``; SQLite serializes writers
anyway), which is updated in the same transaction with a signed copy of the new head. After commit the
signed head is also written to the checkpoint file ``settings.AUDIT_CHECKPOINT_PATH`` (outside the
database; only ever moved forward). ``verify_audit`` (``portal.audit.verification``) recomputes the
chain and compares its end with both heads, so an edit, a deletion anywhere (including the last event)
and a re-hash by SQL without the key are all detected.

Pending read events: reads are many (every thumbnail page, every image shown) and would all queue on the
head lock, so ``audit_record_read`` only INSERTs a ``PendingAuditEvent`` (same content, no sequence or
hash yet; one short statement, no lock) and then tries a fold without waiting. ``audit_pending_fold``
takes the head lock, chains up to ``FOLD_BATCH`` pending rows in ``id`` order as ordinary events (same
hash rules, ``occurred_at`` kept, ``pending_id`` naming the row), deletes them, saves the head once and
moves the checkpoint once. Folds happen:

- in every ``audit_record``, first, under its own lock: a read whose row had committed when the write took
  the lock is chained before it;
- after every ``AUDIT_READ_FOLD_EVERY``-th read (by pending row id; default 20, so one fold pays for many
  reads), when the head lock is free at that instant (``SKIP LOCKED``: a read never waits; the holder, or
  the next fold, chains what it skipped);
- in the beat task ``audit_fold_pending`` every ``AUDIT_FOLD_INTERVAL_SECONDS``, so rows left when every
  reader skipped (the last reads before a quiet spell) are chained within seconds;
- before the audit pages and exports list events, and in ``manage.py audit_fold``; ``verify_audit``
  reports how many rows are still pending and how old the oldest is.

Until folded, a pending row is protected like the trail (the model refuses UPDATE and DELETE; on
PostgreSQL a trigger refuses UPDATE and TRUNCATE, and a trigger and the row-level-security policy refuse the
DELETE of a row that no event of the chain names: each folded event, genuine or tampered, carries the id of
its row in ``pending_id`` (part of its hash), and the fold inserts its events before it deletes their rows;
the fold also sets ``app.audit_folding`` for its own transaction, which alone is no protection, since any
session can set it) and by its own ``mac``: an HMAC (same key) over its content,
its ``occurred_at`` and a random ``nonce``, computed by the app at insert. The fold checks it; a row that
fails (edited or forged by SQL), or a valid row seen before (a copy of a row already chained, or of another
row in the batch: a replay), is not chained as genuine: an ``audit.pending.tampered`` event naming the row
and summarising its stored content is chained in its place, and ``verify_audit`` reports both that event
and any pending row whose MAC fails. Reordering changes nothing that matters: a row's time travels under
its MAC. So the app role (SQL injected into the app, without the key) cannot remove a pending read without
a trace: deleting it needs an event naming it, and an event inserted without the key breaks the chain.
What neither can show is a pending row deleted by the database's owner or a superuser (who can drop the
triggers and policies) before the fold: the window is the fold interval.

What the chain's order means: ``sequence`` is the order of chaining (a write's append, a read's fold), and
``occurred_at`` is when the event happened (a write: once it holds the lock; a read: when it was recorded).
A fold sees only committed pending rows, so a read recorded inside a transaction that commits later (a
long request, a task) is chained after the events that committed first, though its ``occurred_at`` is
earlier: ``occurred_at`` is not monotonic along the chain. The time order of reads and writes is that of
``occurred_at``; ``sequence`` orders the chain itself (what ``verify_audit`` checks). Rows are chained in
``id`` order, which is the order of their INSERTs, not of their commits.

A write with nothing pending pays one query for this (``audit_pending_any()``, migration 0005: whether any
row is pending, whatever the session's row-level-security scope).
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from portal.audit.models import AuditChainHead, AuditEvent, PendingAuditEvent

GENESIS_HASH = "0" * 64
HEAD_ID = 1
FOLD_BATCH = 500  # pending read events chained per transaction
# What a pending read event carries into the chain (everything but sequence, prev_hash and hash).
PENDING_FIELDS = ("occurred_at", "actor_id", "actor_username", "center_id", "action", "object_type", "object_id",
                  "before", "after", "ip_address", "request_id")
TAMPERED_ACTION = "audit.pending.tampered"  # chained in place of a pending row that fails its MAC or is a replay
_STORED_JSON_LIMIT = 2000  # characters of a tampered row's before/after kept in its tampered event

_key_cache: dict[tuple[str, str], bytes] = {}


def audit_key() -> bytes:
    """The HMAC key (from settings/env, outside the database); generated into var/ for the demo.

    Read once per process, cached by the setting's value and the key file's path (tests that change
    either get the matching key)."""
    key_file = settings.VAR_DIR / "audit_hmac_key"
    cache_key = (settings.AUDIT_HMAC_KEY or "", str(key_file))
    key = _key_cache.get(cache_key)
    if key is None:
        key = _key_cache[cache_key] = _key_load(key_file)
    return key


def _key_load(key_file: Path) -> bytes:
    if settings.AUDIT_HMAC_KEY:
        return settings.AUDIT_HMAC_KEY.encode()
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32), encoding="utf-8")
        key_file.chmod(0o600)
    return key_file.read_text(encoding="utf-8").strip().encode()


def event_payload(event: AuditEvent) -> bytes:
    """Canonical bytes of an event's content (everything except its own hash; ``pending_id`` only when set)."""
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
    if event.pending_id is not None:  # only folded events have one: older events hash as they always did
        body["pending_id"] = event.pending_id
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def event_hash(event: AuditEvent) -> str:
    """HMAC-SHA256 of the event's canonical payload."""
    return hmac.new(audit_key(), event_payload(event), hashlib.sha256).hexdigest()


def pending_mac(row: PendingAuditEvent) -> str:
    """HMAC-SHA256 of a pending read event's canonical content (its ``PENDING_FIELDS`` and ``nonce``)."""
    body = {name: getattr(row, name) for name in PENDING_FIELDS}
    body["occurred_at"] = row.occurred_at.isoformat()
    body["center_id"] = str(row.center_id) if row.center_id else None
    body["nonce"] = row.nonce
    payload = b"pending|" + json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hmac.new(audit_key(), payload, hashlib.sha256).hexdigest()


def pending_mac_ok(row: PendingAuditEvent) -> bool:
    """Whether a pending row's stored ``mac`` matches its content."""
    return bool(row.nonce) and hmac.compare_digest(row.mac or "", pending_mac(row))


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
        "ip_address": normalized_ip(request.META.get("REMOTE_ADDR")),
        "request_id": getattr(request, "request_id", "")[:64],
    }


def normalized_ip(value: str | None) -> str | None:
    """The address as the ``ip_address`` column will store and read it back (``GenericIPAddressField``:
    IPv6 lower-cased and compressed, a zone such as ``%eth0`` dropped), so the MAC and the hash computed
    before the save match the row; ``None`` when empty or not an address."""
    from django.core.exceptions import ValidationError

    if not value:
        return None
    try:
        normalized = AuditEvent._meta.get_field("ip_address").to_python(value.strip())
        ipaddress.ip_address(normalized)
    except (ValidationError, ValueError):
        return None
    return normalized


def _locked_head(*, skip_locked: bool = False) -> AuditChainHead | None:
    """The head row, locked for this transaction. With ``skip_locked``: ``None`` when another transaction
    holds it (never waits)."""
    head = AuditChainHead.objects.select_for_update(skip_locked=skip_locked).filter(pk=HEAD_ID).first()
    if head is None:
        if skip_locked and AuditChainHead.objects.filter(pk=HEAD_ID).exists():
            return None
        with transaction.atomic():  # first event ever (or after a test flush): create, then lock
            AuditChainHead.objects.get_or_create(pk=HEAD_ID)
        head = AuditChainHead.objects.select_for_update().get(pk=HEAD_ID)
    return head


def _event_fields(
    *, actor, action: str, center, obj, object_type: str, object_id: str, before: Any, after: Any, request,
) -> dict[str, Any]:
    """The content of one event (what ``AuditEvent`` and ``PendingAuditEvent`` share), stamped now."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    user = actor if getattr(actor, "is_authenticated", False) else None
    return {
        "occurred_at": timezone.now(),
        "actor": user,
        "actor_username": user.get_username() if user else "",
        "center_id": getattr(center, "pk", center),
        "action": action[:64],
        "object_type": object_type[:64],
        "object_id": str(object_id)[:64],
        "before": _json_safe(before),
        "after": _json_safe(after),
        **_request_fields(request),
    }


def _chain(head: AuditChainHead, fields: dict[str, Any]) -> AuditEvent:
    """A new event after ``head`` (locked by the caller), hashed; ``head`` moved to it in memory only."""
    event = AuditEvent(sequence=head.sequence + 1, prev_hash=head.hash if head.sequence else GENESIS_HASH,
                       **fields)
    event.hash = event_hash(event)
    head.sequence = event.sequence
    head.hash = event.hash
    head.summary = event_summary(event)
    if event.sequence == 1 or not head.chain_id:
        head.chain_id = event.hash[:16] if event.sequence == 1 else head.chain_id or "unknown"
    return event


def _head_save(head: AuditChainHead) -> None:
    """Sign and save the moved head; after commit, move the checkpoint file (group-committed)."""
    head.signature = head_signature(
        chain_id=head.chain_id, sequence=head.sequence, hash=head.hash, summary=head.summary
    )
    head.save()
    checkpoint = {
        "chain_id": head.chain_id, "sequence": head.sequence, "hash": head.hash,
        "summary": head.summary, "signature": head.signature,
    }
    transaction.on_commit(lambda: checkpoint_write(checkpoint))


def _fold_batch(head: AuditChainHead, *, batch: int) -> int:
    """Chain up to ``batch`` committed pending read events after ``head`` (locked by the caller, moved in
    memory), in ``id`` order, each naming its row, and delete them; returns how many."""
    if connection.vendor != "postgresql":
        return _fold_rows(head, batch=batch)
    # This fold may read, return and delete every pending row (RLS policies and the DELETE trigger of
    # migration 0004 honour the setting). Transaction-local, and switched off again at once: a fold inside
    # a caller's longer transaction must not widen what the rest of that transaction sees.
    # (If the fold fails, the caller's atomic block rolls back, and the setting with it.)
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.audit_folding', 'on', true)")
        folded = _fold_rows(head, batch=batch)
        cursor.execute("SELECT set_config('app.audit_folding', 'off', true)")
    return folded


def _fold_rows(head: AuditChainHead, *, batch: int) -> int:
    # No row locks needed here: every fold holds the head lock, so folds never overlap, and each one reads
    # the rows committed before it took the lock (READ COMMITTED).
    # ``chained``: an event with the same time and content is in the chain already (a replayed copy).
    same_event = AuditEvent.objects.filter(
        occurred_at=OuterRef("occurred_at"), action=OuterRef("action"), object_type=OuterRef("object_type"),
        object_id=OuterRef("object_id"), request_id=OuterRef("request_id"),
    )
    pending = list(PendingAuditEvent.objects.annotate(chained=Exists(same_event)).order_by("id")[:batch])
    if not pending:
        return 0
    events, nonces = [], set()
    for row in pending:
        problem = ("its MAC does not match its content (edited or forged)" if not pending_mac_ok(row)
                   else "a copy of an event already chained (replayed)" if row.chained or row.nonce in nonces
                   else "")
        nonces.add(row.nonce)
        fields = _tampered_fields(row, problem) if problem else {name: getattr(row, name) for name in PENDING_FIELDS}
        events.append(_chain(head, {**fields, "pending_id": row.id}))  # the row's DELETE needs this link
    AuditEvent.objects.append_folded(events)
    PendingAuditEvent.objects.filter(id__in=[row.id for row in pending]).delete_folded()
    return len(pending)


def _tampered_fields(row: PendingAuditEvent, problem: str) -> dict[str, Any]:
    """The event chained in place of a pending row that is not genuine: the row's id, what is wrong, and
    a summary of what it holds (so the tampering itself is on the chain)."""
    stored = {name: getattr(row, name) for name in PENDING_FIELDS}
    for name in ("before", "after"):
        text = json.dumps(stored[name], default=str)
        if len(text) > _STORED_JSON_LIMIT:
            stored[name] = text[:_STORED_JSON_LIMIT] + "..."
    return {
        "occurred_at": timezone.now(), "actor": None, "actor_username": "", "center_id": None,
        "action": TAMPERED_ACTION, "object_type": "audit.pendingauditevent", "object_id": str(row.id),
        "before": None, "after": _json_safe({"problem": problem, "stored": stored}),
        "ip_address": None, "request_id": "",
    }


def _pending_any() -> bool:
    """Whether any read event is pending (one query; on PostgreSQL whatever the session's RLS scope)."""
    if connection.vendor != "postgresql":
        return PendingAuditEvent.objects.exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT audit_pending_any()")
        return bool(cursor.fetchone()[0])


def audit_pending_fold(*, wait: bool = True, batch: int = FOLD_BATCH) -> int:
    """Chain the pending read events (oldest first); returns how many were folded.

    ``wait=True`` (beat task, ``manage.py audit_fold``, the audit pages, ``verify_audit``): waits for the
    head lock and folds every pending row, ``batch`` rows per transaction. ``wait=False`` (after a read):
    one batch if the head lock is free, else nothing at once (whoever holds it, or the next fold, chains
    the row)."""
    if wait and not _pending_any():
        return 0
    total = 0
    while True:
        with transaction.atomic():
            head = _locked_head(skip_locked=not wait)
            if head is None:
                return total
            folded = _fold_batch(head, batch=batch)
            if folded:
                _head_save(head)
        total += folded
        if not wait or folded < batch:
            return total


def audit_pending_count() -> tuple[int, datetime | None]:
    """How many read events wait to be chained, and when the oldest occurred (``None`` when none)."""
    from django.db.models import Count, Min

    row = PendingAuditEvent.objects.aggregate(n=Count("id"), oldest=Min("occurred_at"))
    return row["n"], row["oldest"]


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
    short JSON summaries (never image data or identifiers of people). The pending read events committed
    by now are chained first, under the same lock, so they come before this event; a read still inside an
    uncommitted transaction is chained by a later fold, after this event, with its earlier time.
    """
    fields = _event_fields(actor=actor, action=action, center=center, obj=obj, object_type=object_type,
                           object_id=object_id, before=before, after=after, request=request)
    with transaction.atomic():
        head = _locked_head()
        if _pending_any():  # one query when nothing is pending (the usual case)
            while _fold_batch(head, batch=FOLD_BATCH) == FOLD_BATCH:
                pass
        # After the wait for the lock: writes' times keep the chain's order (reads keep their own times, so
        # a read folded here may carry an earlier time than an event chained before it: see the module doc).
        fields["occurred_at"] = timezone.now()
        event = _chain(head, fields)
        event.save()
        _head_save(head)
    return event


def audit_record_read(
    *,
    actor,
    action: str,
    center=None,
    obj=None,
    object_type: str = "",
    object_id: str = "",
    after: Any = None,
    request=None,
) -> None:
    """Record a read of image data without waiting for the chain: one INSERT of a pending event (no lock);
    every ``AUDIT_READ_FOLD_EVERY``-th read (by row id) then folds if the chain's head is free at this
    instant (never waits). Arguments as ``audit_record``.

    The event is chained by that fold, or by the next one: any ``audit_record``, any read that finds the
    head free, the beat task ``audit_fold_pending`` (every ``AUDIT_FOLD_INTERVAL_SECONDS``), the audit
    pages and ``verify_audit``."""
    fields = _event_fields(actor=actor, action=action, center=center, obj=obj, object_type=object_type,
                           object_id=object_id, before=None, after=after, request=request)
    row = PendingAuditEvent(nonce=secrets.token_hex(16), **fields)
    row.mac = pending_mac(row)
    row.save()
    if row.pk % max(settings.AUDIT_READ_FOLD_EVERY, 1) == 0:
        audit_pending_fold(wait=False)


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
    """Move this chain's signed head in the checkpoint file forward (never back), atomically; then publish
    the file to this host's checkpoint object (``checkpoint_publish``: at most once per
    ``AUDIT_CHECKPOINT_PUBLISH_SECONDS`` per process, never failing the caller).

    Group commit: the writer that gets the file lock writes the newest *committed* head of the chain,
    so the events that committed meanwhile (other requests, other processes) are covered by the same
    write, and their own writers then find the file already there and skip the write and its fsync.
    """
    _checkpoint_file_write(head)
    checkpoint_publish()


def _checkpoint_file_write(head: dict) -> None:
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


# --- checkpoint objects (a copy of the checkpoint in the media storage, one per host) ----------------
#
# With several hosts and no shared filesystem each host has its own checkpoint file, and only the host
# that wrote the newest events knows how far the chain went. So each host also publishes its file, through
# Django's storage API (the object store when configured, local disk otherwise), as
# ``audit/checkpoints/<AUDIT_CHECKPOINT_NAME>.json``; ``verify_audit`` compares the chain with every one.
# One object per host: hosts never race each other. Within a host, publishers take a lock file beside the
# checkpoint file and merge forward (an entry of the object is only ever replaced by a later one).

CHECKPOINT_OBJECT_DIR = "audit/checkpoints"
# Per process: when ``checkpoint_publish`` last ran (monotonic), and the pending trailing publish.
_publisher: dict[str, Any] = {"at": float("-inf"), "timer": None}


def checkpoint_object_name(name: str | None = None) -> str:
    """The storage name of host ``name``'s checkpoint object (this host's by default)."""
    return f"{CHECKPOINT_OBJECT_DIR}/{name or settings.AUDIT_CHECKPOINT_NAME}.json"


def _object_chains(storage, name: str) -> dict:
    """Every entry (all databases) of the checkpoint object ``name``; ``{}`` when it does not exist."""
    try:
        with storage.open(name, "rb") as handle:
            return json.loads(handle.read().decode("utf-8")).get("chains", {})
    except FileNotFoundError:
        return {}


def _merged_forward(current: dict, new: dict) -> dict:
    """``current`` with every entry of ``new`` that is further along its chain (never moves an entry back)."""
    merged = dict(current)
    for key, entry in new.items():
        old = merged.get(key)
        if old is None or int(old.get("sequence", 0)) < int(entry.get("sequence", 0)):
            merged[key] = entry
    return merged


def _object_write(storage, name: str, chains: dict) -> None:
    """Replace the checkpoint object ``name`` with ``chains``."""
    from django.core.files.base import ContentFile

    body = json.dumps({"host": name.rsplit("/", 1)[-1].removesuffix(".json"), "chains": chains,
                       "published_at": timezone.now().isoformat()}, indent=1, sort_keys=True)
    content = ContentFile(body.encode("utf-8"))
    if hasattr(storage, "file_overwrite"):
        # An object store: replaced in one PUT, never absent in between. (The media storage is configured
        # not to overwrite, so ``save`` would pick another name: ``_save`` is the backend's write itself.)
        saved = storage._save(name, content)
    else:
        storage.delete(name)  # local disk renames taken names: make room first (absent for an instant)
        saved = storage.save(name, content)
    if saved != name:
        storage.delete(saved)
        raise OSError(f"the storage saved the audit checkpoint as {saved}, not {name}")


@contextlib.contextmanager
def _publish_lock(*, wait: bool):
    """This host's publish lock (beside the checkpoint file, apart from its write lock, so checkpoint writes
    never wait for the object store). Yields whether it was taken (``wait=False``: never waits)."""
    import fcntl

    path = checkpoint_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".publish.lock"), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def checkpoint_publish(*, force: bool = False) -> bool:
    """Publish this host's checkpoint file to its object ``audit/checkpoints/<AUDIT_CHECKPOINT_NAME>.json``
    in the media storage, merged forward with what the object holds; returns whether the object was written.

    Unless ``force``, at most once per ``AUDIT_CHECKPOINT_PUBLISH_SECONDS`` per process, counted from the end
    of the last publish: a request pays for an object store round trip only every few seconds. A publish
    skipped by the interval (or because another process of this host is publishing) leaves a trailing
    publish behind (one timer thread per process, at the end of the interval), so the object lags its
    host's file by about the interval even when the host then falls quiet. The beat task
    ``audit_fold_pending`` also publishes with ``force`` on every run. A failing storage never fails the
    caller: it is logged as a warning (``/readyz`` reports the storage)."""
    import logging
    import time

    from django.core.files.storage import default_storage

    now = time.monotonic()
    wait = settings.AUDIT_CHECKPOINT_PUBLISH_SECONDS - (now - _publisher["at"])
    if not force and wait > 0:
        _publish_later(wait)
        return False
    _publisher["at"] = now
    try:
        with _publish_lock(wait=force) as locked:
            if not locked:
                _publish_later(settings.AUDIT_CHECKPOINT_PUBLISH_SECONDS)
                return False
            name = checkpoint_object_name()
            try:
                current = _object_chains(default_storage, name)
            except ValueError:  # a damaged object: rewritten from this host's file
                current = {}
            merged = _merged_forward(current, checkpoint_read())
            if merged == current:
                return False
            _object_write(default_storage, name, merged)
            return True
    except Exception as exc:  # noqa: BLE001 - the object store must never fail the request or the task
        logging.getLogger(__name__).warning("audit checkpoint not published to %s: %s", checkpoint_object_name(),
                                            exc)
        return False
    finally:
        # The interval runs from the end of a publish: a slow object store is not asked again at once.
        _publisher["at"] = max(_publisher["at"], time.monotonic())


def _publish_later(delay: float) -> None:
    """Start this process's trailing publish in ``delay`` seconds, unless one is pending already."""
    import threading

    timer = _publisher["timer"]
    if timer is not None and timer.is_alive():
        return
    timer = threading.Timer(max(delay, 0.0), _publish_trailing)
    timer.daemon = True  # never keeps a process from exiting (the beat task's publish covers the rest)
    _publisher["timer"] = timer
    timer.start()


def _publish_trailing() -> None:
    _publisher["timer"] = None
    checkpoint_publish()


def checkpoint_publish_reset() -> None:
    """Cancel this process's pending trailing publish and forget when it last published (tests)."""
    timer = _publisher["timer"]
    if timer is not None:
        timer.cancel()
    _publisher.update(at=float("-inf"), timer=None)


def checkpoint_objects() -> tuple[dict[str, dict[str, dict]], list[str]]:
    """Every published checkpoint object's entries for this database (by object name, then chain id), and
    the names of the objects that could not be read (with the reason)."""
    from django.core.files.storage import default_storage

    prefix = checkpoint_key("")
    try:
        _, files = default_storage.listdir(CHECKPOINT_OBJECT_DIR)
    except FileNotFoundError:
        return {}, []
    except Exception as exc:  # noqa: BLE001 - reported by verify_audit, not raised
        return {}, [f"{CHECKPOINT_OBJECT_DIR}/ ({exc})"]
    objects, unreadable = {}, []
    for file_name in sorted(f for f in files if f.endswith(".json")):
        name = f"{CHECKPOINT_OBJECT_DIR}/{file_name}"
        try:
            chains = _object_chains(default_storage, name)
        except Exception as exc:  # noqa: BLE001
            unreadable.append(f"{name} ({exc})")
            continue
        objects[name] = {key[len(prefix):]: entry for key, entry in chains.items() if key.startswith(prefix)}
    return objects, unreadable


def checkpoint_objects_restore(objects: dict[str, dict[str, dict]]) -> None:
    """Write backed-up checkpoint objects (object name → this database's entries by chain id, as
    ``checkpoint_objects`` returns them) for the database of these settings, merged forward with any
    object already there."""
    import re

    from django.core.files.storage import default_storage

    for name in objects:
        if not re.fullmatch(rf"{CHECKPOINT_OBJECT_DIR}/[A-Za-z0-9][A-Za-z0-9._-]{{0,99}}\.json", name):
            raise ValueError(f"{name!r} is not a checkpoint object name")
    for name, entries in objects.items():
        fields = ("chain_id", "sequence", "hash", "summary", "signature", "written_at")
        restored = {checkpoint_key(entry["chain_id"]): {k: entry[k] for k in fields if k in entry}
                    for entry in entries.values()}
        current = _object_chains(default_storage, name)
        merged = _merged_forward(current, restored)
        if merged != current:
            _object_write(default_storage, name, merged)
