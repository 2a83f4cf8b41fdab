"""Pending read events carry a MAC (``nonce``, ``mac``: set by ``audit_record_read``, checked by the fold),
and ``audit_pending_any()`` (PostgreSQL): whether any read event is pending, whatever the session's
row-level-security scope, in one statement, so a write with nothing to fold pays one cheap query.

Rows pending when this is applied have no MAC and are chained as ``audit.pending.tampered`` events: run
``manage.py audit_fold`` before migrating (0004 was never released, so no release has such rows).
"""
from django.db import migrations, models

FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION audit_pending_any() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  prior text := coalesce(current_setting('app.audit_folding', true), '');
  found boolean;
BEGIN
  PERFORM set_config('app.audit_folding', 'on', true);
  SELECT EXISTS (SELECT 1 FROM audit_pendingauditevent) INTO found;
  PERFORM set_config('app.audit_folding', prior, true);
  RETURN found;
END;
$$;
"""


def add_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION_SQL)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS audit_pending_any()")


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0004_pending_read_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="pendingauditevent",
            name="nonce",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AddField(
            model_name="pendingauditevent",
            name="mac",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(add_function, drop_function),
    ]
