"""Shared pytest fixtures for the whole suite."""
from __future__ import annotations

import pytest


@pytest.fixture
def cast(db):
    """Two centers with one user per role each, a site auditor and a superuser (see portal.core.testing)."""
    from portal.core.testing import build_cast

    return build_cast()


@pytest.fixture
def api_client():
    """A DRF test client."""
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture(autouse=True)
def _test_logins_are_otp_verified(monkeypatch):
    """``client.force_login``/``client.login`` give a session that has passed the second factor too
    (portal.core.testing.otp_verify_session), so tests of other features need not enrol every user.
    Tests of two-factor authentication itself log in through the login page instead."""
    from django.test.client import ClientMixin

    from portal.core.testing import otp_verify_session

    original = ClientMixin._login

    def _login(self, user, backend=None):
        original(self, user, backend)
        otp_verify_session(self, user)

    monkeypatch.setattr(ClientMixin, "_login", _login)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 makes every test user cost ~0.5 s on these cores; tests do not need slow hashes."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _flush_may_truncate_the_audit_trail():
    """Transactional tests end with a database flush (TRUNCATE of every table); on PostgreSQL the audit
    trail refuses TRUNCATE (portal/audit/migrations/0003) unless the flush's transaction allows it."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        return original(self, ["SET LOCAL portal.audit_truncate = 'allowed'", *sql_list])

    DatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    DatabaseOperations.execute_sql_flush = original
