"""Row-level security by center on every center-owned table (PostgreSQL; nothing on SQLite).

The tables and their center expressions are data: ``portal.centers.rls.RLS_TABLES``. A later migration
that adds a center-owned table adds it there and runs ``rls_install`` again (it is idempotent);
``tests/test_row_level_security.py`` fails while a table with a center link has no policy.
"""
from django.db import migrations

from portal.centers.rls import rls_install, rls_uninstall


class Migration(migrations.Migration):
    dependencies = [
        ("centers", "0001_initial"),
        ("audit", "0003_refuse_truncate"),
        ("imaging", "0004_session_frozen"),
        ("jobs", "0002_inferencejob_enqueue_count_and_more"),
        ("mlmodels", "0001_initial"),
        ("results", "0002_result_set_scale"),
        ("review", "0001_initial"),
        ("validation", "0002_session_blinding_rows"),
    ]

    operations = [migrations.RunPython(rls_install, rls_uninstall, elidable=False)]
