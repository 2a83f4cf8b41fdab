"""Pending read events carry a MAC: a row edited, forged or replayed by SQL before its fold is not chained as
genuine (an ``audit.pending.tampered`` event takes its place) and ``verify_audit`` reports it; a write with
nothing pending pays one query for the fold; the HMAC key is read once per process."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.audit import services
from portal.audit.models import AuditEvent, PendingAuditEvent
from portal.audit.services import (
    TAMPERED_ACTION,
    audit_key,
    audit_pending_fold,
    audit_record,
    audit_record_read,
    pending_mac,
    pending_mac_ok,
)
from portal.audit.verification import audit_verify
from portal.testing.db import sql_behind_the_app


@pytest.fixture
def no_fold_on_read(monkeypatch):
    """A read's own fold finds the head taken: its row stays pending until a waiting fold."""
    original = services.audit_pending_fold
    monkeypatch.setattr(services, "audit_pending_fold",
                        lambda *, wait=True, **kwargs: original(wait=wait, **kwargs) if wait else 0)


def read(user, center, n: int) -> PendingAuditEvent:
    audit_record_read(actor=user, action="image.read.test", center=center, object_type="imaging.image",
                      object_id=str(n), after={"n": n}, request=None)
    return PendingAuditEvent.objects.order_by("-id").first()




def chained() -> list[AuditEvent]:
    return list(AuditEvent.objects.order_by("sequence"))


def test_a_pending_row_carries_a_mac_over_its_content_time_and_nonce(cast, no_fold_on_read):
    row = read(cast.a.uploader, cast.a.center, 1)
    assert len(row.nonce) == 32 and row.mac == pending_mac(row) and pending_mac_ok(row)
    other = read(cast.a.uploader, cast.a.center, 1)
    assert other.nonce != row.nonce and other.mac != row.mac  # same content, own nonce
    for name, value in (("object_id", "2"), ("after", {"n": 2}), ("actor_id", cast.a.reviewer.pk),
                        ("center_id", cast.b.center.pk), ("occurred_at", row.occurred_at.replace(microsecond=1)),
                        ("nonce", other.nonce)):
        changed = PendingAuditEvent.objects.get(pk=row.pk)
        setattr(changed, name, value)
        assert not pending_mac_ok(changed), name


def test_a_pending_row_edited_by_sql_is_chained_as_tampered_not_as_its_content(cast, no_fold_on_read, capsys):
    genuine = read(cast.a.uploader, cast.a.center, 1)
    edited = read(cast.a.uploader, cast.a.center, 2)
    sql_behind_the_app("UPDATE audit_pendingauditevent SET object_id = %s, actor_username = %s WHERE id = %s",
           ["999", "someone-else", edited.pk])
    result = audit_verify()
    assert any(f"pending read event {edited.pk} " in p and "MAC" in p for p in result.problems), result.problems
    assert not any(f"pending read event {genuine.pk} " in p for p in result.problems)

    assert audit_pending_fold() == 2
    first, second = chained()
    assert (first.action, first.object_id) == ("image.read.test", "1")
    assert (second.action, second.object_type, second.object_id) == (
        TAMPERED_ACTION, "audit.pendingauditevent", str(edited.pk))
    assert "MAC" in second.after["problem"]
    stored = second.after["stored"]
    assert (stored["object_id"], stored["actor_username"], stored["action"]) == (
        "999", "someone-else", "image.read.test")
    assert not AuditEvent.objects.filter(object_id="999").exists()  # the forged content is not an event
    assert second.actor_id is None and second.center_id is None

    result = audit_verify()
    assert [p for p in result.problems if TAMPERED_ACTION in p and f"pending read event {edited.pk}" in p]
    with pytest.raises(CommandError):
        call_command("verify_audit")
    assert f"pending read event {edited.pk} was not genuine" in capsys.readouterr().err


def test_every_folded_event_names_its_pending_row_under_its_hash(cast, no_fold_on_read):
    """Genuine and tampered events alike carry their row's id (``pending_id``): on PostgreSQL a pending row
    may be deleted only once an event names it; the link is part of the event's hash."""
    from portal.audit.services import event_hash

    direct = audit_record(actor=cast.a.uploader, action="test.write", center=cast.a.center, object_id="w")
    genuine = read(cast.a.uploader, cast.a.center, 1)
    edited = read(cast.a.uploader, cast.a.center, 2)
    sql_behind_the_app("UPDATE audit_pendingauditevent SET object_id = %s WHERE id = %s", ["999", edited.pk])
    assert audit_pending_fold() == 2
    events = chained()
    assert [(e.action, e.pending_id) for e in events] == [
        ("test.write", None), ("image.read.test", genuine.pk), (TAMPERED_ACTION, edited.pk)]
    assert direct.pending_id is None
    moved = AuditEvent.objects.get(pending_id=genuine.pk)
    assert event_hash(moved) == moved.hash
    moved.pending_id = edited.pk
    assert event_hash(moved) != moved.hash
    problems = audit_verify().problems
    assert [p for p in problems if TAMPERED_ACTION in p]  # the tampered one, as before
    assert not [p for p in problems if "does not match its HMAC" in p or "broken" in p], problems


def test_a_forged_pending_row_is_chained_as_tampered(cast, no_fold_on_read):
    row = read(cast.a.uploader, cast.a.center, 1)
    forged = PendingAuditEvent.objects.create(  # inserted by SQL without the key: any MAC it guesses fails
        occurred_at=row.occurred_at, actor=cast.a.reviewer, actor_username=cast.a.reviewer.username,
        center_id=cast.a.center.pk, action="image.read.test", object_type="imaging.image", object_id="7",
        nonce=row.nonce, mac=row.mac,
    )
    assert not audit_verify().ok
    audit_pending_fold()
    assert [(e.action, e.object_id) for e in chained()] == [("image.read.test", "1"), (TAMPERED_ACTION, str(forged.pk))]


def test_a_replayed_copy_of_a_pending_row_is_chained_as_tampered(cast, no_fold_on_read):
    row = read(cast.a.uploader, cast.a.center, 1)
    columns = ("occurred_at, actor_id, actor_username, center_id, action, object_type, object_id, before, after, "
               "ip_address, request_id, nonce, mac")
    copy = f"INSERT INTO audit_pendingauditevent ({columns}) SELECT {columns} FROM audit_pendingauditevent WHERE id = %s"
    sql_behind_the_app(copy, [row.pk])  # a copy while the original is pending: same batch
    assert audit_verify().ok  # each row's MAC holds: only the fold can tell a copy
    audit_pending_fold()
    assert [e.action for e in chained()] == ["image.read.test", TAMPERED_ACTION]
    assert "replayed" in chained()[1].after["problem"]

    saved = {name: getattr(row, name) for name in ("occurred_at", "actor_id", "actor_username", "center_id",
                                                   "action", "object_type", "object_id", "after", "nonce", "mac")}
    PendingAuditEvent.objects.create(**saved)  # the same copy after the original was chained
    audit_pending_fold()
    assert [e.action for e in chained()] == ["image.read.test", TAMPERED_ACTION, TAMPERED_ACTION]
    assert AuditEvent.objects.filter(action="image.read.test").count() == 1


def _fold_sql(queries) -> list[str]:
    return [q["sql"] for q in queries if "audit_pending" in q["sql"] or "audit_folding" in q["sql"]]


def test_a_write_with_nothing_pending_pays_one_query_for_the_fold(cast):
    audit_record(actor=cast.a.uploader, action="test.first")  # the head row exists
    with CaptureQueriesContext(connection) as queries:
        audit_record(actor=cast.a.uploader, action="test.write")
    assert len(_fold_sql(queries)) == 1, _fold_sql(queries)
    with CaptureQueriesContext(connection) as queries:
        assert audit_pending_fold() == 0
    assert len(queries) == 1, [q["sql"] for q in queries]


def test_the_key_is_read_once_per_setting_and_file(settings, tmp_path):
    settings.AUDIT_HMAC_KEY = ""
    settings.VAR_DIR = tmp_path / "one"
    settings.VAR_DIR.mkdir()
    key = audit_key()
    (settings.VAR_DIR / "audit_hmac_key").write_text("changed-on-disk", encoding="utf-8")
    assert audit_key() == key  # cached: the file is not read again
    settings.VAR_DIR = tmp_path / "two"
    settings.VAR_DIR.mkdir()
    (settings.VAR_DIR / "audit_hmac_key").write_text("second-key", encoding="utf-8")
    assert audit_key() == b"second-key"
    settings.AUDIT_HMAC_KEY = "from-settings"
    assert audit_key() == b"from-settings"
    settings.AUDIT_HMAC_KEY = ""
    assert audit_key() == b"second-key"


@pytest.mark.parametrize("remote_addr, stored", [("2001:DB8::1", "2001:db8::1"), ("fe80::1%eth0", "fe80::1"),
                                                 ("2001:0db8:0000::0001", "2001:db8::1")])
def test_a_read_from_an_ipv6_address_the_column_normalises_is_chained_as_genuine(
        cast, no_fold_on_read, django_capture_on_commit_callbacks, remote_addr, stored):
    """The MAC and the hash are computed over the address as the column stores it, not as REMOTE_ADDR
    spelled it: a genuine read (and a write) from such an address verifies."""
    from django.test import RequestFactory

    request = RequestFactory().get("/", REMOTE_ADDR=remote_addr)
    audit_record_read(actor=cast.a.uploader, action="image.read.test", center=cast.a.center,
                      object_type="imaging.image", object_id="1", request=request)
    row = PendingAuditEvent.objects.get()
    assert row.ip_address == stored and pending_mac_ok(row)
    assert not audit_verify().problems  # its MAC holds as stored
    with django_capture_on_commit_callbacks(execute=True):  # the checkpoint moves as after a commit
        audit_record(actor=cast.a.uploader, action="test.write", center=cast.a.center, object_id="w",
                     request=request)
    assert [(e.action, e.ip_address) for e in chained()] == [("image.read.test", stored), ("test.write", stored)]
    result = audit_verify()
    assert result.ok, result.problems


def test_a_remote_addr_that_is_no_address_is_recorded_as_none(cast, no_fold_on_read,
                                                              django_capture_on_commit_callbacks):
    from django.test import RequestFactory

    request = RequestFactory().get("/", REMOTE_ADDR="not-an-address")
    with django_capture_on_commit_callbacks(execute=True):
        audit_record(actor=cast.a.uploader, action="test.write", center=cast.a.center, object_id="w",
                     request=request)
    assert AuditEvent.objects.get().ip_address is None and audit_verify().ok
