"""Shared pytest fixtures for the whole suite."""
from __future__ import annotations

import shutil

import pytest

MD5_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def cast(db):
    """Two centers with one user per role each, a site auditor and a superuser (see portal.testing.cast)."""
    from portal.testing.cast import build_cast

    return build_cast()


@pytest.fixture(scope="module")
def module_transaction(django_db_setup, django_db_blocker):
    """An atomic block around a whole test module, rolled back at its end (Django's ``setUpTestData``,
    for pytest): data made in it once is seen by every test of the module, and each test's own
    transaction (the ``db`` fixture) nests inside it as a savepoint, so a test's writes are still undone
    after the test. Yields the blocker: make the shared data under ``module_transaction.unblock()``."""
    from django.db import transaction

    with django_db_blocker.unblock():
        block = transaction.atomic()
        block._from_testcase = True  # as TestCase's class-wide block: a durable atomic may nest in it
        block.__enter__()
    try:
        yield django_db_blocker
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            block.__exit__(None, None, None)


@pytest.fixture(scope="module")
def module_media(tmp_path_factory):
    """For a whole module: MEDIA_ROOT in a temporary folder (files of objects made once stay readable by
    every test) and no API throttling."""
    from django.conf import settings
    from django.test import override_settings

    rest = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
    with override_settings(MEDIA_ROOT=tmp_path_factory.mktemp("media"), REST_FRAMEWORK=rest):
        yield


@pytest.fixture(scope="module")
def module_cast(module_transaction, module_media):
    """The cast of ``cast``, built once per module (with ``module_media``); a test using it also
    requests ``db`` (see ``module_transaction``)."""
    from django.test import override_settings

    from portal.testing.cast import build_cast

    with module_transaction.unblock(), override_settings(PASSWORD_HASHERS=MD5_HASHER):
        return build_cast()


@pytest.fixture
def api_client():
    """A DRF test client."""
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture(autouse=True)
def _test_logins_are_otp_verified(monkeypatch):
    """``client.force_login``/``client.login`` give a session that has passed the second factor too
    (portal.testing.cast.otp_verify_session), so tests of other features need not enrol every user.
    Tests of two-factor authentication itself log in through the login page instead."""
    from django.test.client import ClientMixin

    from portal.testing.cast import otp_verify_session

    original = ClientMixin._login

    def _login(self, user, backend=None):
        original(self, user, backend)
        otp_verify_session(self, user)

    monkeypatch.setattr(ClientMixin, "_login", _login)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 makes every test user cost ~0.5 s on these cores; tests do not need slow hashes."""
    settings.PASSWORD_HASHERS = MD5_HASHER


@pytest.fixture(autouse=True)
def _reads_fold_at_once(settings):
    """Every audited read tries to chain its pending event at once (production: every
    ``AUDIT_READ_FOLD_EVERY``-th), so tests that look for a read's event find it in the chain; the
    batched behaviour has its own tests (portal/audit/tests/test_pending_reads.py)."""
    settings.AUDIT_READ_FOLD_EVERY = 1


@pytest.fixture
def storage(settings, tmp_path):
    """MEDIA_ROOT and the model store in a temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_CACHE_DIR = tmp_path / "media-cache"
    yield tmp_path
    shutil.rmtree(tmp_path / "media", ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory):
    """The tiny model bundle (see portal.testing.jobs), written once per test session."""
    from portal.testing.jobs import tiny_bundle

    return tiny_bundle(tmp_path_factory.mktemp("bundles") / "tiny")


@pytest.fixture
def tiny_model(db, storage, tiny_bundle_dir):
    """The tiny bundle registered as the site default."""
    from portal.jobs.inference import predictor_cache_clear
    from portal.mlmodels.services import model_register_bundle

    predictor_cache_clear()
    yield model_register_bundle(path=tiny_bundle_dir, user=None, activate=True)
    predictor_cache_clear()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A SeaweedFS S3 server with a private bucket for the session (portal.testing.s3): skipped where
    ``weed`` is absent, a failure in CI."""
    from portal.testing.s3 import seaweed_server

    yield from seaweed_server(tmp_path_factory.mktemp("seaweedfs"))


@pytest.fixture
def s3_storage(settings, s3_server, tmp_path):
    """Media in the S3 bucket (under a folder of this test's own); MEDIA_ROOT an empty folder no code
    may need, the media cache in tmp."""
    import uuid

    settings.STORAGES = s3_server.storages(location=f"t-{uuid.uuid4().hex[:12]}")
    settings.MEDIA_ROOT = tmp_path / "unused-media-root"
    settings.MEDIA_CACHE_DIR = tmp_path / "media-cache"
    yield s3_server
    assert not settings.MEDIA_ROOT.exists(), "something wrote media to local disk instead of S3"


@pytest.fixture(scope="session")
def shared_fixtures():
    """``../shared/fixtures`` beside the repository (see portal.testing.shared): skipped where absent,
    a failure in CI."""
    from portal.testing.shared import shared_fixtures_dir

    return shared_fixtures_dir()


@pytest.fixture(scope="session", autouse=True)
def _flush_may_truncate_the_audit_trail():
    """Transactional tests end with a database flush (TRUNCATE of every table); on PostgreSQL the audit
    trail and its pending read events refuse TRUNCATE (portal/audit/migrations/0003, 0004): the flush, as
    the tables' owner, switches those triggers off and on again inside its own transaction."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush
    triggers = {"audit_auditevent": "audit_event_refuse_truncate",
                "audit_pendingauditevent": "audit_pending_refuse_truncate"}

    def execute_sql_flush(self, sql_list):
        tables = [table for table in triggers if any(table in sql for sql in sql_list)]
        if not tables:
            return original(self, sql_list)
        return original(self, [*(f"ALTER TABLE {t} DISABLE TRIGGER {triggers[t]}" for t in tables), *sql_list,
                               *(f"ALTER TABLE {t} ENABLE TRIGGER {triggers[t]}" for t in tables)])

    DatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    DatabaseOperations.execute_sql_flush = original


@pytest.fixture(scope="session", autouse=True)
def _row_level_security_role(request):
    """With ``DATABASE_SCOPE_ROLE`` set on PostgreSQL, every request and task scope of the test run works
    as that role (not owner, not superuser), so the whole suite runs under row-level security; fixtures
    build data as the owner, outside any scope. The role is created (NOLOGIN) and granted here."""
    from django.conf import settings

    if not settings.DATABASE_SCOPE_ROLE or "postgres" not in settings.DATABASES["default"]["ENGINE"]:
        return
    request.getfixturevalue("django_db_setup")
    from portal.centers.management.commands.db_app_role import app_role_setup

    with request.getfixturevalue("django_db_blocker").unblock():
        app_role_setup(settings.DATABASE_SCOPE_ROLE, create=True)
