"""Pending read events (``PendingAuditEvent``): appended without the chain's lock, folded into the chain.

PostgreSQL: a row trigger refuses UPDATE always and DELETE unless the transaction is a fold (the session
setting ``app.audit_folding`` is ``on``: ``audit_pending_fold`` sets it with ``set_config(..., true)``, so it
ends with the fold's transaction); a statement trigger refuses TRUNCATE. This is a guard against mistakes
(a stray ``UPDATE`` or ``DELETE``), not against the database's owner, who can set the setting or drop the
triggers: the chain's HMAC and the checkpoint file protect what has been folded. Row-level security of
the table is installed by ``centers/0005``.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION audit_pending_guard() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('app.audit_folding', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION USING MESSAGE = 'audit_pendingauditevent is append-only (rows leave only by audit_pending_fold): '
    || TG_OP || ' refused';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_pending_guard ON audit_pendingauditevent;
CREATE TRIGGER audit_pending_guard BEFORE UPDATE OR DELETE ON audit_pendingauditevent
  FOR EACH ROW EXECUTE FUNCTION audit_pending_guard();
DROP TRIGGER IF EXISTS audit_pending_refuse_truncate ON audit_pendingauditevent;
CREATE TRIGGER audit_pending_refuse_truncate BEFORE TRUNCATE ON audit_pendingauditevent
  FOR EACH STATEMENT EXECUTE FUNCTION audit_pending_guard();
"""
DROP_SQL = """
DROP TRIGGER IF EXISTS audit_pending_refuse_truncate ON audit_pendingauditevent;
DROP TRIGGER IF EXISTS audit_pending_guard ON audit_pendingauditevent;
DROP FUNCTION IF EXISTS audit_pending_guard();
"""


def add_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGER_SQL)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_refuse_truncate'),
        ('centers', '0004_center_time_zone'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='PendingAuditEvent',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('occurred_at', models.DateTimeField()),
                ('actor_username', models.CharField(blank=True, max_length=150)),
                ('action', models.CharField(max_length=64)),
                ('object_type', models.CharField(blank=True, max_length=64)),
                ('object_id', models.CharField(blank=True, max_length=64)),
                ('before', models.JSONField(blank=True, null=True)),
                ('after', models.JSONField(blank=True, null=True)),
                ('ip_address', models.GenericIPAddressField(blank=True, null=True)),
                ('request_id', models.CharField(blank=True, max_length=64)),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('center', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='centers.center')),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.RunPython(add_trigger, drop_trigger),
    ]
