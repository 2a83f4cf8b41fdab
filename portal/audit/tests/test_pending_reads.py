"""Read events are recorded as pending rows without the chain's lock and folded into the chain: in order,
each exactly once, before any later write, and verifiable like every other event."""
from __future__ import annotations

import threading
import time

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction
from django.urls import reverse

from portal.audit import services
from portal.audit.models import AppendOnlyError, AuditChainHead, AuditEvent, PendingAuditEvent
from portal.audit.services import audit_pending_fold, audit_record, audit_record_read, checkpoint_entries
from portal.audit.verification import audit_verify
from portal.testing.db import postgres_only


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run the after-commit work (checkpoint writes) of what happens inside, as a real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def no_fold_on_read(monkeypatch):
    """A read's own fold (``wait=False``) finds nothing, as when the head is locked: its row stays pending.
    Waiting folds (beat task, commands, audit pages) work as always."""
    original = services.audit_pending_fold
    monkeypatch.setattr(services, "audit_pending_fold",
                        lambda *, wait=True, **kwargs: original(wait=wait, **kwargs) if wait else 0)


def read(user, center, n: int) -> None:
    audit_record_read(actor=user, action="image.read.test", center=center, object_type="imaging.image",
                      object_id=str(n), after={"n": n})


def chained() -> list[tuple[str, str]]:
    return list(AuditEvent.objects.order_by("sequence").values_list("action", "object_id"))


def test_pending_reads_fold_into_a_chain_that_verifies(cast, no_fold_on_read, django_capture_on_commit_callbacks):
    for n in range(3):
        read(cast.a.uploader, cast.a.center, n)
    pending = list(PendingAuditEvent.objects.order_by("id"))
    assert len(pending) == 3 and AuditEvent.objects.count() == 0

    with django_capture_on_commit_callbacks(execute=True):
        assert audit_pending_fold() == 3
    assert PendingAuditEvent.objects.count() == 0
    events = list(AuditEvent.objects.order_by("sequence"))
    assert [(e.sequence, e.object_id, e.after) for e in events] == [(1, "0", {"n": 0}), (2, "1", {"n": 1}),
                                                                    (3, "2", {"n": 2})]
    assert [e.occurred_at for e in events] == [p.occurred_at for p in pending]  # when the read happened
    assert {e.actor_id for e in events} == {cast.a.uploader.pk}
    assert AuditChainHead.objects.get().sequence == 3
    (entry,) = checkpoint_entries().values()
    assert entry["sequence"] == 3  # one checkpoint write covers the fold
    result = audit_verify()
    assert result.ok, result.problems
    assert (result.events, result.pending) == (3, 0)


def test_a_write_chains_the_reads_recorded_before_it(cast, no_fold_on_read, committed):
    read(cast.a.uploader, cast.a.center, 1)
    read(cast.a.reviewer, cast.a.center, 2)
    with committed():
        audit_record(actor=cast.a.uploader, action="image.delete", center=cast.a.center,
                     object_type="imaging.image", object_id="1")
    read(cast.a.uploader, cast.a.center, 3)
    assert chained() == [("image.read.test", "1"), ("image.read.test", "2"), ("image.delete", "1")]
    assert PendingAuditEvent.objects.count() == 1
    with committed():
        audit_pending_fold()
    assert chained()[-1] == ("image.read.test", "3")
    assert audit_verify().ok


def test_a_read_folds_at_once_when_the_head_is_free(cast):
    read(cast.a.uploader, cast.a.center, 1)
    assert PendingAuditEvent.objects.count() == 0
    assert chained() == [("image.read.test", "1")]


def test_every_nth_read_chains_the_reads_pending_before_it(cast, settings):
    settings.AUDIT_READ_FOLD_EVERY = 4
    n = 0
    while not AuditEvent.objects.exists():  # the read whose row id is a multiple of 4 folds
        read(cast.a.uploader, cast.a.center, n)
        n += 1
    assert 1 <= n <= 4 and PendingAuditEvent.objects.count() == 0
    assert [object_id for _, object_id in chained()] == [str(i) for i in range(n)]
    for m in range(n, n + 3):
        read(cast.a.uploader, cast.a.center, m)
    assert PendingAuditEvent.objects.count() == 3 and len(chained()) == n  # until the next fold
    read(cast.a.uploader, cast.a.center, n + 3)
    assert PendingAuditEvent.objects.count() == 0
    assert [object_id for _, object_id in chained()] == [str(i) for i in range(n + 4)]


def test_a_fold_takes_at_most_one_batch_per_transaction(cast, no_fold_on_read, committed):
    for n in range(5):
        read(cast.a.uploader, cast.a.center, n)
    assert audit_pending_fold(wait=False, batch=2) == 2  # a read's fold: one batch
    assert PendingAuditEvent.objects.count() == 3
    with committed():
        assert audit_pending_fold(batch=2) == 3  # the beat task's: every batch
    assert [object_id for _, object_id in chained()] == ["0", "1", "2", "3", "4"]
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)  # real commits: each fold's checkpoint write happens
def test_verify_audit_reports_pending_reads_and_audit_fold_chains_them(cast, no_fold_on_read, capsys, committed):
    read(cast.a.uploader, cast.a.center, 1)
    with committed():
        audit_record(actor=cast.a.uploader, action="test.write")
    read(cast.a.uploader, cast.a.center, 2)
    read(cast.a.uploader, cast.a.center, 3)
    oldest = PendingAuditEvent.objects.order_by("id").first().occurred_at
    result = audit_verify()
    assert result.ok and (result.events, result.pending, result.pending_oldest) == (2, 2, oldest)
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "2 read event(s) pending" in out and "audit chain OK: 2 events" in out

    with committed():
        call_command("audit_fold")
    assert "folded 2 pending read event(s); 0 pending now" in capsys.readouterr().out
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "pending" not in out and "audit chain OK: 4 events" in out

    read(cast.a.uploader, cast.a.center, 4)
    call_command("verify_audit", "--fold")
    out = capsys.readouterr().out
    assert "folded 1 pending read event(s)" in out and "audit chain OK: 5 events" in out


def test_pending_rows_refuse_update_and_delete_through_the_orm(cast, no_fold_on_read):
    read(cast.a.uploader, cast.a.center, 1)
    row = PendingAuditEvent.objects.get()
    for attempt in (lambda: PendingAuditEvent.objects.update(action="x"),
                    lambda: PendingAuditEvent.objects.all().delete(),
                    lambda: PendingAuditEvent.objects.bulk_update([row], ["action"]),
                    row.delete, row.save):
        with pytest.raises(AppendOnlyError):
            attempt()
    with pytest.raises(AppendOnlyError):  # the chain's own bulk path stays closed to everyone but the fold
        AuditEvent.objects.bulk_create([AuditEvent(sequence=1, occurred_at=row.occurred_at, action="x")])
    assert PendingAuditEvent.objects.get().action == "image.read.test"


@postgres_only
def test_postgres_refuses_sql_update_delete_and_truncate_of_pending_rows(cast, no_fold_on_read):
    read(cast.a.uploader, cast.a.center, 1)
    for sql in ("UPDATE audit_pendingauditevent SET action = 'x'",
                "DELETE FROM audit_pendingauditevent",
                "TRUNCATE audit_pendingauditevent"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's transaction: no deferred checks
                cursor.execute(sql)
    assert PendingAuditEvent.objects.get().action == "image.read.test"
    # The fold's setting is no key: any session can set it, and a row no chained event names stays.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.audit_folding', 'on', true)")
        cursor.execute("DELETE FROM audit_pendingauditevent")
    assert PendingAuditEvent.objects.get().action == "image.read.test"
    assert audit_pending_fold() == 1  # the fold chains it (its event names the row), then deletes it
    assert not PendingAuditEvent.objects.exists()
    with connection.cursor() as cursor:  # the fold's setting ended with its transaction
        cursor.execute("SELECT coalesce(current_setting('app.audit_folding', true), '')")
        assert cursor.fetchone()[0] in ("", "off")


def test_the_beat_task_folds_pending_reads(cast, no_fold_on_read, settings):
    from workers.tasks import audit_fold_pending

    read(cast.a.uploader, cast.a.center, 1)
    read(cast.b.uploader, cast.b.center, 2)
    assert audit_fold_pending.apply().get() == 2
    assert PendingAuditEvent.objects.count() == 0 and len(chained()) == 2
    assert settings.CELERY_BEAT_SCHEDULE["audit-fold-pending"]["task"] == audit_fold_pending.name


def test_the_audit_page_folds_pending_reads_before_listing(cast, client, no_fold_on_read):
    from portal.testing.cast import login_verified

    read(cast.a.uploader, cast.a.center, 1)
    login_verified(client, cast.auditor)
    response = client.get(reverse("audit:event-list"), {"action": "image.read"})
    assert response.status_code == 200
    assert PendingAuditEvent.objects.count() == 0
    assert "image.read.test" in response.content.decode()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_reads_fold_does_not_wait_for_a_held_head(settings, tmp_path):
    from portal.testing.cast import build_cast

    cast = build_cast()
    audit_record(actor=None, action="test.first")  # the head row exists
    locked, release, errors = threading.Event(), threading.Event(), []

    def holder():
        try:
            with transaction.atomic():
                AuditChainHead.objects.select_for_update().get(pk=services.HEAD_ID)
                locked.set()
                release.wait(30)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        read(cast.a.uploader, cast.a.center, 1)
        assert time.monotonic() - started < 5  # the holder keeps the lock for up to 30 s
        assert PendingAuditEvent.objects.count() == 1 and len(chained()) == 1
    finally:
        release.set()
        thread.join()
    assert errors == []
    assert audit_pending_fold() == 1
    assert chained() == [("test.first", ""), ("image.read.test", "1")]
    assert audit_verify().ok


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_readers_and_writers_end_in_the_chain_exactly_once(settings, tmp_path):
    """Several threads (own connections), each in its own center's scope (the app role under RLS in CI
    mode), read and write at once; every event is chained once, none lost, and the chain verifies."""
    from portal.centers.rls import center_scope
    from portal.testing.cast import build_cast

    cast = build_cast()
    errors, readers, reads_each = [], 6, 30

    def worker(n):
        side = cast.a if n % 2 else cast.b
        try:
            with center_scope([side.center.pk]):
                for i in range(reads_each):
                    read(side.uploader, side.center, n * 1000 + i)
                    if n == 0 and i % 10 == 0:
                        audit_record(actor=side.uploader, action="test.write", center=side.center,
                                     object_id=f"w{i}")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    audit_pending_fold()  # what every reader skipped (the beat task's job)
    assert PendingAuditEvent.objects.count() == 0
    read_ids = list(AuditEvent.objects.filter(action="image.read.test").values_list("object_id", flat=True))
    expected = {str(n * 1000 + i) for n in range(readers) for i in range(reads_each)}
    assert len(read_ids) == len(expected) and set(read_ids) == expected
    total = readers * reads_each + 3
    assert list(AuditEvent.objects.values_list("sequence", flat=True)) == list(range(1, total + 1))
    in_chain = [int(i) for i in AuditEvent.objects.filter(action="image.read.test").order_by("sequence")
                .values_list("object_id", flat=True)]
    for n in range(readers):  # each reader's own reads keep their order in the chain
        own = [i for i in in_chain if i // 1000 == n]
        assert own == sorted(own) and len(own) == reads_each
    result = audit_verify()
    assert result.ok, result.problems
