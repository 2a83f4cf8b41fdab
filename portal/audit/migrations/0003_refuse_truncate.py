"""PostgreSQL: refuse TRUNCATE of the audit trail too (the row trigger of 0002 never sees a TRUNCATE).

A statement-level BEFORE TRUNCATE trigger raises, unless the transaction has set
``portal.audit_truncate = 'allowed'`` (only the test suite's database flush does: see conftest.py).
Whoever owns the table can still switch triggers off; ``verify_audit`` then catches the wipe through
the checkpoint file outside the database. SQLite has no TRUNCATE; the ORM guard covers it there.
"""
from django.db import migrations

TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION audit_event_refuse_truncate() RETURNS trigger AS $$
BEGIN
  IF coalesce(current_setting('portal.audit_truncate', true), '') = 'allowed' THEN
    RETURN NULL;
  END IF;
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
