"""``manage.py db_app_role ROLE [--create]``: give the app's database role what it needs under row-level
security, and check that it cannot bypass it.

Run as the owner of the tables (the role ``migrate`` ran as) after each ``migrate``. The role must exist
(``--create`` makes a NOLOGIN one; give it LOGIN and a password yourself, see README) and must not be a
superuser, have BYPASSRLS or own any table of the schema.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from portal.centers.rls import app_role_grant_sql


def app_role_problems(role: str) -> list[str]:
    """Why ``role`` could see past the policies (empty: it cannot)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", [role])
        row = cursor.fetchone()
        if row is None:
            return [f"role {role!r} does not exist"]
        problems = [text for flag, text in zip(row, ("is a superuser", "has BYPASSRLS"), strict=True) if flag]
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = %s", [role])
        owned = cursor.fetchone()[0]
    if owned:
        problems.append(f"owns {owned} tables (row-level security is forced, but an owner may switch it off)")
    return problems


def app_role_setup(role: str, *, create: bool = False) -> None:
    """Create ``role`` (NOLOGIN) when asked and missing, grant it data rights, refuse a privileged role."""
    from psycopg import sql

    if connection.vendor != "postgresql":
        raise CommandError("Row-level security needs PostgreSQL (DATABASE_URL=postgres://...).")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None and create:
            cursor.execute(f"CREATE ROLE {sql.Identifier(role).as_string()} NOLOGIN NOSUPERUSER NOBYPASSRLS")
    problems = app_role_problems(role)
    if problems:
        raise CommandError(f"Role {role!r} cannot be the app role: {'; '.join(problems)}.")
    with connection.cursor() as cursor:
        for statement in app_role_grant_sql(role):
            cursor.execute(statement)


class Command(BaseCommand):
    help = "Grant the app's database role its data rights and check it cannot bypass row-level security."

    def add_arguments(self, parser) -> None:
        parser.add_argument("role")
        parser.add_argument("--create", action="store_true", help="Create the role (NOLOGIN) when missing.")

    def handle(self, *args, role: str, create: bool, **options) -> None:
        app_role_setup(role, create=create)
        self.stdout.write(f"{role}: granted; not a superuser, no BYPASSRLS, owns no table.")
