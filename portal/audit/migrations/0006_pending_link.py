"""Each chained event names the pending read event it was folded from (``AuditEvent.pending_id``), and a
pending row may be deleted only once such an event exists.

Before this, the DELETE trigger of 0004 (and the policy of ``centers/0005``) let a DELETE through whenever
the session setting ``app.audit_folding`` was ``on``, which any session of the app role can set: SQL injected
as the app role could remove pending reads before their fold, and nothing would show it. Now the row must be
named by an event in the chain (which needs the HMAC key to be genuine: a forged event breaks the chain, and
``verify_audit`` reports it). Reverse: the previous trigger function, then the column goes.
"""
from django.db import migrations, models

GUARD_SQL = """
CREATE OR REPLACE FUNCTION audit_pending_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('app.audit_folding', true) = 'on'
     AND EXISTS (SELECT 1 FROM audit_auditevent WHERE pending_id = OLD.id) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION USING MESSAGE = 'audit_pendingauditevent is append-only (rows leave only by audit_pending_fold, '
    || 'once chained): ' || TG_OP || ' refused';
END;
$$ LANGUAGE plpgsql;
"""
PREVIOUS_GUARD_SQL = """
CREATE OR REPLACE FUNCTION audit_pending_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('app.audit_folding', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION USING MESSAGE = 'audit_pendingauditevent is append-only (rows leave only by audit_pending_fold): '
    || TG_OP || ' refused';
END;
$$ LANGUAGE plpgsql;
"""


def guard_chained(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD_SQL)


def guard_previous(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PREVIOUS_GUARD_SQL)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0005_pending_mac"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="pending_id",
            field=models.BigIntegerField(blank=True, null=True, unique=True),
        ),
        migrations.RunPython(guard_chained, guard_previous),
    ]
