"""``manage.py db_app_role ROLE [--create] [--password-env NAME]``: give the app's database role what it
needs under row-level security, and check that it cannot bypass it.

Run as the owner of the tables (the role ``migrate`` ran as) after each ``migrate``. The role must exist
(``--create`` makes a NOLOGIN one) and must not be a superuser, have BYPASSRLS or own any table of the
schema. ``--password-env NAME`` gives it LOGIN with the password held in the environment variable ``NAME``
(or the file named by ``NAME_FILE``), so web and workers can connect as it (the password never appears on
a command line).
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from portal.centers.rls import app_role_grant_sql, app_role_problems
from portal.lib.env import env_str


def app_role_setup(role: str, *, create: bool = False, password: str | None = None) -> None:
    """Create ``role`` (NOLOGIN) when asked and missing, grant it data rights, refuse a privileged role;
    with ``password``, let it log in with that password."""
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
        if password:
            cursor.execute(f"ALTER ROLE {sql.Identifier(role).as_string()} LOGIN PASSWORD "
                           f"{sql.Literal(password).as_string(connection.connection)}")


class Command(BaseCommand):
    help = "Grant the app's database role its data rights and check it cannot bypass row-level security."

    def add_arguments(self, parser) -> None:
        parser.add_argument("role")
        parser.add_argument("--create", action="store_true", help="Create the role (NOLOGIN) when missing.")
        parser.add_argument("--password-env", default="", metavar="NAME",
                            help="Give the role LOGIN with the password in this environment variable (or NAME_FILE).")

    def handle(self, *args, role: str, create: bool, password_env: str, **options) -> None:
        password = None
        if password_env:
            password = env_str(password_env)
            if not password:
                raise CommandError(f"--password-env {password_env}: the variable (or {password_env}_FILE) is empty.")
        app_role_setup(role, create=create, password=password)
        login = "; may log in" if password else ""
        self.stdout.write(f"{role}: granted; not a superuser, no BYPASSRLS, owns no table{login}.")
