"""Row-level security on the pending read events (``audit_pendingauditevent``), and the fold's right to
return the chained events it appends (``app.audit_folding`` in the audit trail's read policy).
``rls_install`` is idempotent: it re-installs every policy of ``rls_sql``. Back: off the pending read events
only (the audit trail keeps its policy, with the fold's clause, which nothing sets before this point)."""
from django.db import migrations

from portal.centers.rls import rls_install, rls_step_back


def step_back(apps, schema_editor) -> None:
    rls_step_back(schema_editor, ["audit_pendingauditevent"])


class Migration(migrations.Migration):
    dependencies = [
        ("centers", "0004_center_time_zone"),
        ("audit", "0004_pending_read_events"),
    ]

    operations = [migrations.RunPython(rls_install, step_back, elidable=False)]
