"""The append-only, hash-chained audit trail."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class AppendOnlyError(RuntimeError):
    """Audit events are never updated or deleted."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events are append-only: UPDATE refused")

    def delete(self):
        raise AppendOnlyError("audit events are append-only: DELETE refused")

    def bulk_update(self, *args, **kwargs):
        raise AppendOnlyError("audit events are append-only: UPDATE refused")

    def bulk_create(self, *args, **kwargs):
        raise AppendOnlyError("audit events are appended one by one through audit_record")

    def append_folded(self, events: list[AuditEvent]) -> list[AuditEvent]:
        """The fold's own path (``audit_pending_fold``, under the head lock): insert events it has already
        chained (sequence, prev_hash and hash set). Nothing else appends in bulk."""
        return super().bulk_create(events)


class AuditEvent(models.Model):
    """Who did what to which object, when, from where. Each row's ``hash`` chains to the previous row.

    Append-only: ``save()`` of an existing row, ``delete()`` and queryset ``update()``/``delete()`` raise
    ``AppendOnlyError``; on PostgreSQL a trigger refuses UPDATE and DELETE as well (migration 0002).
    """

    sequence = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    center = models.ForeignKey("centers.Center", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True, db_index=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    # The pending read event this event was folded from (``audit_pending_fold``: genuine or
    # ``audit.pending.tampered``); ``None`` for events appended directly. Part of the hash when set. On
    # PostgreSQL a pending row may be deleted only once an event names it (migration 0006).
    pending_id = models.BigIntegerField(null=True, blank=True, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"audit event #{self.sequence} is append-only: UPDATE refused")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"audit event #{self.sequence} is append-only: DELETE refused")


class PendingAuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("pending audit events are append-only: UPDATE refused")

    def delete(self):
        raise AppendOnlyError("pending audit events leave only by audit_pending_fold: DELETE refused")

    def bulk_update(self, *args, **kwargs):
        raise AppendOnlyError("pending audit events are append-only: UPDATE refused")

    def delete_folded(self) -> int:
        """The fold's own path (``audit_pending_fold``): remove the rows it has just chained, in the same
        transaction. On PostgreSQL the trigger and the row-level-security policy let the DELETE through only
        for rows that a chained event names (``AuditEvent.pending_id``), inside a fold."""
        return super().delete()[0]


class PendingAuditEvent(models.Model):
    """A read event (image data shown or downloaded) waiting to be chained: appended without the chain's
    lock, folded into ``AuditEvent`` (in ``id`` order, ``occurred_at`` kept) by ``audit_pending_fold``.

    Same content fields as ``AuditEvent``, no sequence and no hash yet, but a ``mac`` (HMAC with the chain's
    key over the content, ``occurred_at`` and a random ``nonce``) set by the app at insert and checked by the
    fold, which chains an ``audit.pending.tampered`` event instead of a row that fails it. Append-only like
    the trail:
    ``save()`` of an existing row, ``update()`` and ``delete()`` raise ``AppendOnlyError``; on PostgreSQL a
    trigger refuses UPDATE, TRUNCATE and the DELETE of any row that no chained event names by its
    ``pending_id`` (migrations 0004, 0006).
    """

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    center = models.ForeignKey("centers.Center", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    nonce = models.CharField(max_length=32, blank=True, default="")
    mac = models.CharField(max_length=64, blank=True, default="")

    objects = PendingAuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"pending {self.pk} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("pending audit events are append-only: UPDATE refused")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("pending audit events leave only by audit_pending_fold: DELETE refused")


class AuditChainHead(models.Model):
    """The single row (pk=1) holding the signed head of the chain; appends lock it to serialize.

    ``signature`` is an HMAC (same key as the events) over sequence, hash and summary, so the head cannot
    be moved back to an earlier event by SQL without the key. The same signed head is also written to
    the checkpoint file ``settings.AUDIT_CHECKPOINT_PATH`` after each commit (outside the database).
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    sequence = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)
    summary = models.CharField(max_length=200, blank=True)
    chain_id = models.CharField(max_length=16, blank=True, help_text="First event's hash prefix.")
    signature = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
