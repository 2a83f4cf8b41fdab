"""System check of row-level security (``manage.py check --deploy``): the role that requests and tasks
run as must not be able to bypass the policies. Web, workers and beat run it before they start
(docker-compose.yml); ``/readyz`` asks the same question (``portal.ops.health``)."""
from __future__ import annotations

from django.core.checks import Error


def check_app_role(app_configs=None, **kwargs) -> list[Error]:
    """An error for each role the app works as (the login role, ``DATABASE_SCOPE_ROLE``) that is a
    superuser, has BYPASSRLS or CREATEROLE or owns tables (PostgreSQL with ``DATABASE_RLS`` on); nothing on
    SQLite or with ``DATABASE_RLS`` off."""
    from django.db import DatabaseError

    from portal.centers.rls import serving_role_problems

    try:
        found = serving_role_problems()
    except DatabaseError as exc:
        return [Error(f"Cannot check the database role for row-level security: {exc}",
                      hint="Check DATABASE_URL; the database must be reachable.", id="centers.E002")]
    return [Error(
        f"The database role {role!r} bypasses row-level security: {'; '.join(problems)}.",
        hint=("Connect web, workers and beat as a role that is not a superuser, has no BYPASSRLS or CREATEROLE "
              "and owns no table: as the owner, run `manage.py db_app_role <role> --create --password-env "
              "DATABASE_APP_PASSWORD` and put that role in DATABASE_URL (README, \"Row-level security\"). "
              "DATABASE_SCOPE_ROLE does not make a privileged login safe: every query outside a request or "
              "task scope still runs as the login role."),
        id="centers.E001",
    ) for role, problems in found.items()]
