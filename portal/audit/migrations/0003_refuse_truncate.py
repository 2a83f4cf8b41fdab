"""PostgreSQL: refuse TRUNCATE of the audit trail too (the row trigger of 0002 never sees a TRUNCATE).

A statement-level BEFORE TRUNCATE trigger raises, always: no session setting lets a TRUNCATE through.
Only whoever owns the table can switch the trigger off (the test suite's database flush does, inside its
own transaction: see conftest.py); ``verify_audit`` then still catches a wipe through the checkpoint
file outside the database. SQLite has no TRUNCATE; the ORM guard covers it there.
"""
from django.db import migrations

TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION audit_event_refuse_truncate() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION USING MESSAGE = 'audit_auditevent is append-only: ' || TG_OP || ' refused';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_event_refuse_truncate ON audit_auditevent;
CREATE TRIGGER audit_event_refuse_truncate BEFORE TRUNCATE ON audit_auditevent
  FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_truncate();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS audit_event_refuse_truncate ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_refuse_truncate();
"""


def add_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER_SQL)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0002_chain_head"),
    ]

    operations = [
        migrations.RunPython(add_trigger, drop_trigger),
    ]
