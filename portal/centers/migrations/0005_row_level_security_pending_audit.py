"""Row-level security on the pending read events (``audit_pendingauditevent``), and the fold's right to
return the chained events it appends (``app.audit_folding`` in the audit trail's read policy).
``rls_install`` is idempotent: it re-installs every policy of ``rls_sql``."""
from django.db import migrations

from portal.centers.rls import rls_install, rls_uninstall


class Migration(migrations.Migration):
    dependencies = [
        ("centers", "0004_center_time_zone"),
        ("audit", "0004_pending_read_events"),
    ]

    operations = [migrations.RunPython(rls_install, rls_uninstall, elidable=False)]
