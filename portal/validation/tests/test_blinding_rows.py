"""Blinding rows (``imaging.SessionBlinding``) written by studies, and by the data migration for studies
that existed before the table."""
from __future__ import annotations

import importlib

from django.apps import apps as django_apps

from portal.imaging.models import SessionBlinding
from portal.testing import validation as vt


def _rows():
    return set(SessionBlinding.objects.values_list("user_id", "session_id", "source"))


def test_the_data_migration_writes_the_rows_the_services_write_for_existing_studies(cast):
    open_study = vt.make_open_study(cast, cast.a)
    vt.make_unblinded_study(cast, cast.b)
    written = _rows()
    assert written and {u for u, _, _ in written} == {cast.a.validator.pk, cast.a.validator2.pk, cast.a.stain.pk}
    assert {s for _, s, _ in written} == set(open_study.sessions.values_list("id", flat=True))
    SessionBlinding.objects.all().delete()
    migration = importlib.import_module("portal.validation.migrations.0002_session_blinding_rows")
    migration.forwards(django_apps, None)
    assert _rows() == written  # unblinded studies blind nobody
    migration.backwards(django_apps, None)
    assert _rows() == set()
