"""Verifying the audit chain: every event's HMAC, the links, the signed head row, this host's checkpoint file
and every host's checkpoint object in the media storage."""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime

from portal.audit.models import AuditChainHead, AuditEvent, PendingAuditEvent
from portal.audit.services import (
    GENESIS_HASH,
    HEAD_ID,
    TAMPERED_ACTION,
    audit_pending_count,
    checkpoint_entries,
    checkpoint_objects,
    checkpoint_path,
    event_hash,
    head_signature,
    pending_mac_ok,
)


@dataclass
class VerifyResult:
    events: int = 0
    problems: list[str] = field(default_factory=list)
    pending: int = 0  # read events not chained yet (``audit_pending_fold`` chains them): not a problem
    pending_oldest: datetime | None = None
    checkpoints: list[str] = field(default_factory=list)  # what the chain was compared with
    checkpoints_unreadable: list[str] = field(default_factory=list)  # objects that could not be read: not compared

    @property
    def ok(self) -> bool:
        return not self.problems


def _name(event: AuditEvent) -> str:
    return f"event #{event.sequence} ({event.action} {event.object_type}:{event.object_id} by " \
           f"{event.actor_username or '-'} at {event.occurred_at:%Y-%m-%d %H:%M:%S})"


def audit_verify() -> VerifyResult:
    """Recompute the whole chain and compare its end with the signed head row, with this host's checkpoint
    file and with every host's checkpoint object in the media storage (always: an empty trail with a
    checkpoint entry is a wiped trail; ``checkpoints`` lists what was compared).
    Each problem names the event concerned. Also counts the read events still pending (not in the chain
    yet: ``pending``, ``pending_oldest``) and checks their MACs; a pending row that fails its MAC, and an
    ``audit.pending.tampered`` event (chained in place of such a row), are problems."""
    result = VerifyResult()
    result.pending, result.pending_oldest = audit_pending_count()
    if result.pending:
        for row in PendingAuditEvent.objects.order_by("id").iterator(chunk_size=2000):
            if not pending_mac_ok(row):
                result.problems.append(
                    f"pending read event {row.pk} ({row.action} {row.object_type}:{row.object_id} by "
                    f"{row.actor_username or '-'}): content does not match its MAC (edited or forged)"
                )
    expected_seq, prev_hash, first, last = 1, GENESIS_HASH, None, None
    for event in AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000):
        result.events += 1
        first = first or event
        if event.sequence != expected_seq:
            missing = (f"#{expected_seq}" if event.sequence == expected_seq + 1
                       else f"#{expected_seq}..#{event.sequence - 1}")
            after = f"after {_name(last)}" if last else "at the start of the chain"
            result.problems.append(f"event(s) {missing} deleted: missing {after}, before {_name(event)}")
        elif event.prev_hash != prev_hash:
            result.problems.append(f"{_name(event)}: link to the previous event is broken (prev_hash differs)")
        if not hmac.compare_digest(event.hash, event_hash(event)):
            result.problems.append(
                f"{_name(event)}: content does not match its HMAC (edited, or re-hashed without the key)"
            )
        if event.action == TAMPERED_ACTION:
            problem = (event.after or {}).get("problem", "") if isinstance(event.after, dict) else ""
            result.problems.append(
                f"{_name(event)}: pending read event {event.object_id} was not genuine when it was chained "
                f"({problem}); the event records what it held"
            )
        prev_hash, last = event.hash, event
        expected_seq = event.sequence + 1

    head = AuditChainHead.objects.filter(pk=HEAD_ID).first()
    if head is None:
        if result.events:
            result.problems.append("the signed chain head row is missing")
    else:
        expected_sig = head_signature(chain_id=head.chain_id, sequence=head.sequence, hash=head.hash,
                                      summary=head.summary)
        if not hmac.compare_digest(head.signature or "", expected_sig):
            result.problems.append(f"the chain head row ({head.summary}) has an invalid signature")
        _compare_head("chain head row", head.sequence, head.hash, head.summary, last, result)

    # The chain this database holds: the head row's id, else the first event's hash prefix.
    chain_id = head.chain_id if head is not None and head.sequence else (first.hash[:16] if first else "")
    _compare_checkpoint(chain_id, last, result)
    return result


def _compare_checkpoint(chain_id: str, last: AuditEvent | None, result: VerifyResult) -> None:
    """Compare the chain with every checkpoint of this database kept outside it: this host's file and every
    host's object ``audit/checkpoints/<name>.json`` (another host may have written the newest events)."""
    sources = {"the checkpoint file": checkpoint_entries()}
    result.checkpoints.append(f"file {checkpoint_path()}")
    objects, result.checkpoints_unreadable = checkpoint_objects()
    for name, entries in objects.items():
        sources[f"the checkpoint object {name}"] = entries
        result.checkpoints.append(f"object {name}")
    if last is not None and not any(chain_id in entries for entries in sources.values()):
        result.problems.append("no checkpoint for this chain in the checkpoint file nor in any checkpoint object")
    for label, entries in sources.items():
        for entry_chain, entry in sorted(entries.items()):
            _compare_entry(label, chain_id, entry_chain, entry, last, result)


def _compare_entry(label: str, chain_id: str, entry_chain: str, entry: dict, last: AuditEvent | None,
                   result: VerifyResult) -> None:
    """Compare the chain with one checkpoint entry (``label`` names the file or object holding it)."""
    summary = entry.get("summary", "")
    sig = head_signature(chain_id=entry.get("chain_id", ""), sequence=int(entry.get("sequence", 0)),
                         hash=entry.get("hash", ""), summary=summary)
    if entry.get("chain_id") != entry_chain or not hmac.compare_digest(entry.get("signature", ""), sig):
        result.problems.append(f"{label}'s entry for chain {entry_chain} has an invalid signature")
        return
    if entry_chain != chain_id:
        held = f"holds chain {chain_id} ending at {_name(last)}" if last else "holds no events"
        result.problems.append(
            f"{label} records {summary} of chain {entry_chain} but the database {held}: "
            f"the audit trail was wiped or replaced"
        )
        return
    seq = int(entry["sequence"])
    if last is None or seq > last.sequence:
        result.problems.append(
            f"{label} records {summary} but the chain ends at "
            f"{_name(last) if last else 'nothing'}: the last event(s) were deleted"
        )
    else:
        event = AuditEvent.objects.filter(sequence=seq).first()
        if event is None or not hmac.compare_digest(event.hash, entry["hash"]):
            result.problems.append(f"{label}: checkpointed {summary} differs from the stored event")


def _compare_head(label, sequence, hash_, summary, last, result) -> None:
    if last is None:
        if sequence:
            result.problems.append(f"the {label} records {summary} but there are no events: all deleted")
        return
    if sequence > last.sequence:
        result.problems.append(
            f"the {label} records {summary} but the chain ends at {_name(last)}: the last event(s) were deleted"
        )
    elif sequence < last.sequence:
        result.problems.append(f"the {label} is behind the chain ({summary}); events after it are not signed")
    elif not hmac.compare_digest(hash_, last.hash):
        result.problems.append(f"the {label} hash differs from {_name(last)}")
