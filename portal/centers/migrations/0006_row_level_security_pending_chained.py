"""The pending read events' DELETE policy also needs an event of the chain that names the row
(``AuditEvent.pending_id``, audit 0006), not only the session setting ``app.audit_folding`` that any session
can set. Reverse: the policy as ``centers/0005`` installed it (the setting alone)."""
from django.db import migrations

from portal.centers.rls import AUDIT_PENDING_TABLE, pending_delete_policy_sql


def _install(schema_editor, *, chained: bool) -> None:
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or AUDIT_PENDING_TABLE not in connection.introspection.table_names():
        return
    for statement in pending_delete_policy_sql(chained=chained):
        schema_editor.execute(statement)


def policy_chained(apps, schema_editor):
    _install(schema_editor, chained=True)


def policy_previous(apps, schema_editor):
    _install(schema_editor, chained=False)


class Migration(migrations.Migration):
    dependencies = [
        ("centers", "0005_row_level_security_pending_audit"),
        ("audit", "0006_pending_link"),
    ]

    operations = [migrations.RunPython(policy_chained, policy_previous, elidable=False)]
