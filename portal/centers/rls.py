"""PostgreSQL row-level security by center: the second isolation layer, under the access functions.

Every center-owned table carries one policy (``RLS_TABLES``: the table and the SQL expression that
yields its center) that shows and accepts only rows whose center the connection's *scope* names. The
scope lives in three settings of the database session:

- ``app.center_ids``: ``*`` (system work: every center), ``""`` (nothing) or a comma-separated list of
  center ids;
- ``app.audit_all``: ``on`` for readers of the whole audit trail (site auditors);
- ``app.user_id``: the requesting user, so audit events they append (an ``access.refused`` filed under
  another center) can be returned to them by ``INSERT ... RETURNING``.

A connection that never entered a scope sees nothing of a protected table (the settings are unset): the
layer fails closed. Scopes are entered in code, in three ways only:

- ``request_scope(request)`` (``CenterScopeMiddleware``): the centers of ``request.user``'s memberships
  and of the validation studies they take part in (``register_scope_source``), resolved on the first
  query after the user is known, again whenever ``request.user`` changes (DRF token authentication,
  login);
- ``center_scope(ids)``: a Celery task working for one center (``workers.tasks``);
- ``system_scope(reason)``: every center, for the sweeper, management commands (``manage.py`` enters it
  for every command but ``runserver``), and the few reads that must see across centers (the center of
  a refused object, for its audit event). Request code never gets it by default: it has to name it.

The settings are applied lazily with ``set_config(..., false)`` on the session by an execute wrapper on
the first query inside a scope, again after a reconnect or a rolled-back block that set them (or a failed
query they rode on), and reset to nothing before the next query that runs outside any scope. They ride on
that query: its leading statements, in the same round trip (a request's centers are computed by the
database in that same call); only a statement that cannot share an implicit transaction (anything but
SELECT/INSERT/UPDATE/DELETE/WITH), ``executemany`` or a server-side cursor gets a round trip of its own;
savepoint statements read no rows and leave the scope pending.
So a token-authenticated API request pays no round trip for its scope: the reset rides on the token
lookup, the user's scope on the first query after it.
Why not ``SET LOCAL``: Django runs in autocommit between atomic blocks, so a transaction-local setting
would cover a single statement or atomic block and every other query of the request would run unscoped
(and see nothing). Do not put a transaction-pooling proxy (pgbouncer ``pool_mode=transaction``) in front of the
app role (session pooling is fine).

On SQLite (the embedded default) and when ``DATABASE_RLS`` is off, every function here is a no-op.
``DATABASE_SCOPE_ROLE`` (optional) makes each request and center scope also ``SET ROLE`` to a
non-privileged role (system scopes keep the login role: ``migrate`` must work): the test suite uses it to
run requests and tasks under RLS while its fixtures (as the owner) build the data.
"""
from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection as default_connection
from django.db.backends.signals import connection_created

log = logging.getLogger(__name__)

ALL_CENTERS = "*"
POLICY_NAME = "center_isolation"
VISIBLE_FUNCTION = "portal_center_visible"

# Each center-owned table and the SQL expression (over its own columns) that yields its center. Tables
# reached through a parent use a subquery on the parent, which its own policy filters in turn.
RLS_TABLES: dict[str, str] = {
    "centers_membership": "center_id",
    "imaging_patient": "center_id",
    "imaging_imagesession": "center_id",
    "imaging_image": "center_id",
    "imaging_sessionblinding": "(SELECT p.center_id FROM imaging_imagesession p WHERE p.id = session_id)",
    "mlmodels_modelversion": "center_id",
    "mlmodels_activemodel": "center_id",
    "jobs_inferencejob": "center_id",
    "jobs_jobimage": "(SELECT p.center_id FROM jobs_inferencejob p WHERE p.id = job_id)",
    "results_resultset": "center_id",
    "results_detection": "(SELECT p.center_id FROM results_resultset p WHERE p.id = result_set_id)",
    "review_decision": "center_id",
    "review_adjudication": "center_id",
    "review_picklist": "center_id",
    "review_picklistitem": "(SELECT p.center_id FROM review_picklist p WHERE p.id = pick_list_id)",
    "validation_study": "center_id",
    "validation_study_centers": "(SELECT p.center_id FROM validation_study p WHERE p.id = study_id)",
    "validation_study_sessions": "(SELECT p.center_id FROM validation_study p WHERE p.id = study_id)",
    "validation_study_images": "(SELECT p.center_id FROM validation_study p WHERE p.id = study_id)",
    "validation_studyvalidator": "(SELECT p.center_id FROM validation_study p WHERE p.id = study_id)",
    "validation_studyfield": "(SELECT p.center_id FROM validation_study p WHERE p.id = study_id)",
    "validation_pick": "(SELECT p.center_id FROM validation_study p WHERE p.id = study_id)",
    "validation_cell": "center_id",
    "validation_assignment": "(SELECT p.center_id FROM validation_cell p WHERE p.id = cell_id)",
    "validation_stainresult": "(SELECT p.center_id FROM validation_cell p WHERE p.id = cell_id)",
    "validation_signature": "(SELECT p.center_id FROM validation_study p WHERE p.id = study_id)",
    "validation_stainimage": "(SELECT p.center_id FROM validation_study p WHERE p.id = study_id)",
    "review_maskcorrection": "center_id",
    "review_imagereviewdone": "center_id",
    "core_notification": "center_id",
    "datasets_sessiontraininguse": "center_id",
    "datasets_datasetline": "center_id",
    "datasets_datasetversion": "center_id",
    "datasets_datasetversion_sessions":
        "(SELECT p.center_id FROM datasets_datasetversion p WHERE p.id = datasetversion_id)",
    "training_trainingjob": "center_id",
    "training_modelevaluation": "center_id",
    "training_modelpromotion": "center_id",
}
# Tables whose rows may belong to no center, visible to all: site-wide models, the site default model, a
# model's evaluation on a whole (pooled) test split (figures only; reached through its model version) and a
# notification about no center (its recipient is the only reader, by the access layer).
RLS_NULL_CENTER_IS_SITE_WIDE = frozenset({"mlmodels_modelversion", "mlmodels_activemodel",
                                          "training_modelevaluation", "core_notification"})
# The audit trail: readers of the whole trail (site auditors, system work) see every row; anyone may
# append (a refused attempt is filed under the other center); a row is returned to whoever appended it
# (INSERT ... RETURNING needs that). Site events (no center: logins, failed passwords) hold nothing of
# a center and stay visible to the database session; who reads the trail is the access layer's rule.
AUDIT_TABLE = "audit_auditevent"
# Read events waiting to be chained (``portal.audit.services.audit_record_read``): the same reading rule;
# anyone may append. The fold (``audit_pending_fold``) runs in whatever scope triggered it (a request, a
# task) and must see every pending row and get back every event it chains: it sets ``app.audit_folding``
# for its own transaction (``set_config(..., true)``), which the read policies honour. Like every setting
# here that guards against mistakes in the app's queries, not against the app role, which can set it too.
# So a DELETE of a pending row also needs an event of the chain that names it (``pending_id``, set by the
# fold; a forged event breaks the chain): the app role cannot remove a read before it is chained.
AUDIT_PENDING_TABLE = "audit_pendingauditevent"
FOLDING = "current_setting('app.audit_folding', true) = 'on'"
PENDING_CHAINED = (f"EXISTS (SELECT 1 FROM {AUDIT_TABLE} chained "
                   f"WHERE chained.pending_id = {AUDIT_PENDING_TABLE}.id)")
# Tables that link to a center but are not owned by one, each with the reason.
RLS_EXEMPT: dict[str, str] = {
    "centers_center": "the tenants themselves: names and codes, no patient data; memberships are protected",
}


def rls_sql(existing: Iterable[str] | None = None, *, pending_link: bool = True) -> list[str]:
    """The statements that install (or re-install) every policy; idempotent. With ``existing`` (table
    names), only for those tables: a migration installs what exists at its point of the history, and the
    migration that adds a center-owned table runs ``rls_install`` again. ``pending_link``: whether the
    audit trail has its ``pending_id`` column yet (audit 0006), which the pending rows' DELETE policy
    needs (``pending_delete_policy_sql``)."""
    present = set(existing) if existing is not None else None
    statements = [
        f"""CREATE OR REPLACE FUNCTION {VISIBLE_FUNCTION}(center uuid) RETURNS boolean LANGUAGE sql STABLE AS $$
            SELECT CASE coalesce(current_setting('app.center_ids', true), '')
                WHEN '{ALL_CENTERS}' THEN true
                WHEN '' THEN false
                ELSE center::text = ANY (string_to_array(current_setting('app.center_ids', true), ','))
            END $$""",
    ]
    for table, center in RLS_TABLES.items():
        if present is not None and table not in present:
            continue
        check = f"{VISIBLE_FUNCTION}({center})"
        if table in RLS_NULL_CENTER_IS_SITE_WIDE:
            check = f"({center} IS NULL OR {check})"
        statements += _enable(table) + [
            f"CREATE POLICY {POLICY_NAME} ON {table} USING ({check}) WITH CHECK ({check})",
        ]
    audit_read = f"""current_setting('app.audit_all', true) = 'on'
            OR current_setting('app.center_ids', true) = '{ALL_CENTERS}'
            OR center_id IS NULL OR {VISIBLE_FUNCTION}(center_id)
            OR actor_id::text = current_setting('app.user_id', true)
            OR {FOLDING}"""
    for table in (AUDIT_TABLE, AUDIT_PENDING_TABLE):
        if present is not None and table not in present:
            continue
        statements += _enable(table) + [
            f"CREATE POLICY {POLICY_NAME} ON {table} FOR SELECT USING ({audit_read})",
            f"DROP POLICY IF EXISTS audit_append ON {table}",
            f"CREATE POLICY audit_append ON {table} FOR INSERT WITH CHECK (true)",
        ]
    if present is None or AUDIT_PENDING_TABLE in present:
        statements += pending_delete_policy_sql(chained=pending_link)
    return statements


def pending_delete_policy_sql(*, chained: bool = True) -> list[str]:
    """The DELETE policy of the pending read events: inside a fold (``app.audit_folding``) and, with
    ``chained``, only rows that an event of the chain names (``pending_id``). Without ``chained``: the
    policy as it was before audit 0006 (the setting alone), for migrations back."""
    using = f"{FOLDING} AND {PENDING_CHAINED}" if chained else FOLDING
    return [
        f"DROP POLICY IF EXISTS audit_fold ON {AUDIT_PENDING_TABLE}",
        f"CREATE POLICY audit_fold ON {AUDIT_PENDING_TABLE} FOR DELETE USING ({using})",
    ]


def _enable(table: str) -> list[str]:
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}",
    ]


def rls_install(apps, schema_editor) -> None:
    """Migration step (``RunPython``): install the policies on PostgreSQL; nothing on SQLite."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    existing = connection.introspection.table_names()
    pending_link = False
    if AUDIT_TABLE in existing:
        with connection.cursor() as cursor:
            columns = connection.introspection.get_table_description(cursor, AUDIT_TABLE)
        pending_link = any(column.name == "pending_id" for column in columns)
    for statement in rls_sql(existing, pending_link=pending_link):
        schema_editor.execute(statement)


def rls_uninstall(apps, schema_editor) -> None:
    """Migration step back from the first install (``0002``): remove every policy (PostgreSQL)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in rls_remove_sql(schema_editor.connection.introspection.table_names()):
        schema_editor.execute(statement)


def rls_remove_sql(existing: Iterable[str]) -> list[str]:
    """The statements that remove every policy from the ``existing`` tables, and the visibility function
    (the first install's reverse)."""
    return [*_remove_sql(existing), f"DROP FUNCTION IF EXISTS {VISIBLE_FUNCTION}(uuid)"]


def _remove_sql(tables: Iterable[str]) -> list[str]:
    """The statements that take row-level security off ``tables`` (those of ours among them)."""
    tables = set(tables)
    statements = []
    for table in [t for t in [*RLS_TABLES, AUDIT_TABLE, AUDIT_PENDING_TABLE] if t in tables]:
        statements += [f"DROP POLICY IF EXISTS {name} ON {table}" for name in (POLICY_NAME, "audit_append", "audit_fold")]
        statements += [
            f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
        ]
    return statements


def rls_step_back_sql(existing: Iterable[str], added: Iterable[str]) -> list[str]:
    """The reverse of a later install that put policies on ``added``: take them off those tables only and
    re-install the policies of every other existing table (what the earlier installs left)."""
    existing, added = set(existing), set(added)
    return [*_remove_sql(existing & added), *rls_sql(existing - added)]


def rls_step_back(schema_editor, added: Iterable[str]) -> None:
    """Migration step back from a later install (``RunPython``'s reverse, in the migration's own function):
    ``rls_step_back_sql`` on PostgreSQL; nothing on SQLite. Row-level security stays on the older tables."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    for statement in rls_step_back_sql(connection.introspection.table_names(), added):
        schema_editor.execute(statement)


def app_role_grant_sql(role: str) -> list[str]:
    """What the app role needs: data rights on every table and sequence of the schema, no more (not the
    owner, not a superuser, no BYPASSRLS). Run after each ``migrate`` that adds tables."""
    from psycopg import sql

    name = sql.Identifier(role).as_string()
    return [
        f"GRANT USAGE ON SCHEMA public TO {name}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {name}",
        f"GRANT EXECUTE ON FUNCTION {VISIBLE_FUNCTION}(uuid) TO {name}",
    ]


def app_role_problems(role: str, connection=default_connection) -> list[str]:
    """Why ``role`` could see past the policies (empty: it cannot): it is missing, a superuser, has
    BYPASSRLS or CREATEROLE (it may grant itself any role but a superuser, the owner's included), or owns
    tables of the schema, itself or through a role it belongs to (the policies are forced, but an owner may
    switch them off)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = %s", [role])
        row = cursor.fetchone()
        if row is None:
            return [f"role {role!r} does not exist"]
        flags = ("is a superuser", "has BYPASSRLS", "has CREATEROLE (it may grant itself the owner's role)")
        problems = [text for flag, text in zip(row, flags, strict=True) if flag]
        if row[0]:  # a superuser may do anything: the rest goes without saying
            return problems[:1]
        # A member of the owning role may act as the owner (SET ROLE, ALTER TABLE): counted as owning.
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                       "AND pg_has_role(%s, tableowner, 'MEMBER')", [role])
        owned = cursor.fetchone()[0]
    if owned:
        problems.append(f"owns {owned} tables, directly or as a member of their owner (row-level security is "
                        "forced, but an owner may switch it off)")
    return problems


def serving_role_problems(connection=default_connection) -> dict[str, list[str]]:
    """The roles that queries of the running app work as, each with why it could bypass row-level security
    (only those that could; empty when none can, or when row-level security is not in use: SQLite,
    ``DATABASE_RLS`` off). Both count: the login role (``session_user``: every query outside a request or
    center scope, system scopes included, runs as it) and ``DATABASE_SCOPE_ROLE`` when set (requests and
    tasks). Read by ``/readyz`` and the ``manage.py check --deploy`` check."""
    if not rls_active(connection):
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_user")
        login = cursor.fetchone()[0]
    roles = [login]
    scope_role = getattr(settings, "DATABASE_SCOPE_ROLE", "") or ""
    if scope_role and scope_role != login:
        roles.append(scope_role)
    found = {role: app_role_problems(role, connection) for role in roles}
    return {role: problems for role, problems in found.items() if problems}


def rls_active(connection=default_connection) -> bool:
    """Whether scopes are applied on this connection (PostgreSQL and ``DATABASE_RLS`` on)."""
    return connection.vendor == "postgresql" and getattr(settings, "DATABASE_RLS", True)


# --- scopes ---------------------------------------------------------------------------------------------

@dataclass
class Scope:
    """What one request, task or system job may see. ``resolve`` (a request's) fills ``center_ids``
    lazily from the current user; ``None`` means not resolved yet."""

    center_ids: str | None
    audit_all: bool = False
    user_id: str = ""
    resolve: Callable[[Scope], bool] | None = None  # returns True when it changed the scope
    center_sql: str = ""  # a user's centers, computed by the database when the scope is written
    system: bool = False  # system work keeps the login role (DATABASE_SCOPE_ROLE is for users' work)
    applied_to: int | None = field(default=None, compare=False)  # id() of the raw connection
    applied_in: tuple | None = field(default=None, compare=False)  # its transaction and savepoints


_current: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("portal_rls_scope", default=None)
_applying: contextvars.ContextVar[bool] = contextvars.ContextVar("portal_rls_applying", default=False)
_UNSCOPED = Scope(center_ids="")
_transaction_serials = itertools.count(1)

# Extra centers a user works with besides their memberships (validation studies of several centers):
# SQL returning center ids, with ``%(user_id)d`` for the user. Higher apps register theirs in ready().
_scope_sources: list[str] = [
    "SELECT center_id FROM centers_membership WHERE user_id = %(user_id)d",
]


def register_scope_source(sql_text: str) -> None:
    """Add a query (``SELECT <center id> ... %(user_id)d ...``) of centers a user works in."""
    if sql_text not in _scope_sources:
        _scope_sources.append(sql_text)


def current_scope() -> Scope | None:
    """The scope in force (``None`` outside any)."""
    return _current.get()


def _scope_statements(connection, scope: Scope) -> list[str]:
    """The statements that write ``scope`` into the session settings (no parameters). A user's centers
    are computed by the database in the same call (``center_sql``, read in a system scope that the next
    statement of the same call replaces)."""
    from psycopg import sql

    def literal(value: str) -> str:
        return sql.Literal(value).as_string(connection.connection)

    role = getattr(settings, "DATABASE_SCOPE_ROLE", "") or ""
    statements = []
    if scope.center_sql:
        statements.append(f"SELECT set_config('app.center_ids', '{ALL_CENTERS}', false)")
        centers = (f"coalesce((SELECT string_agg(DISTINCT c::text, ',') FROM ({scope.center_sql}) AS u(c) "
                   f"WHERE c IS NOT NULL), '')")
    else:
        centers = literal(scope.center_ids or "")
    settings_sql = (f"SELECT set_config('app.center_ids', {centers}, false), "
                    f"set_config('app.audit_all', {literal('on' if scope.audit_all else 'off')}, false), "
                    f"set_config('app.user_id', {literal(scope.user_id)}, false)")
    if role:
        switch = scope is not _UNSCOPED and not scope.system
        settings_sql += f", set_config('role', {literal(role if switch else 'none')}, false)"
    return [*statements, settings_sql]


def _mark_applied(connection, scope: Scope, applied_in: tuple | None) -> None:
    scope.applied_to = id(connection.connection)
    scope.applied_in = applied_in
    connection.rls_dirty = scope is not _UNSCOPED


def _raw_apply(connection, scope: Scope) -> None:
    """Write ``scope`` into the session settings in one round trip of its own, on the raw connection (not
    logged, not wrapped)."""
    applied_in = _transaction_state(connection) if connection.in_atomic_block else None
    with connection.connection.cursor() as cursor:
        # No parameters: one simple-protocol round trip.
        cursor.execute("; ".join(_scope_statements(connection, scope)).encode())
    _mark_applied(connection, scope, applied_in)


def _transaction_state(connection) -> tuple:
    """Where a setting made now lives: the transaction (``_note_transaction``) and its open savepoints
    (whose names never repeat on a connection). A setting made inside either is undone if it rolls back.
    Not the atomic blocks themselves: the same ``Atomic`` object is entered again by every call of a
    function decorated with ``transaction.atomic``, and a new one may land at a freed one's address."""
    return (getattr(connection, "rls_transaction", 0), *(sid for sid in connection.savepoint_ids if sid))


def _note_transaction(connection) -> None:
    """Before each statement: a new serial when none is open on the server (this statement starts one, or
    runs on its own in autocommit). Every statement passes through ``_execute_wrapper``, which calls this
    first, so the end of a transaction (commit or rollback) cannot go unnoticed, however much the next
    atomic block looks like the last."""
    from psycopg.pq import TransactionStatus

    if connection.connection.info.transaction_status == TransactionStatus.IDLE:
        connection.rls_transaction = next(_transaction_serials)


def _stale(connection, scope: Scope) -> bool:
    if scope.applied_to != id(connection.connection):
        return True
    if scope.applied_in is None:
        return False
    state = _transaction_state(connection)
    return state[:len(scope.applied_in)] != scope.applied_in


def _pending(connection) -> Scope | None:
    """The scope to write before this connection's next query, if any: the scope in force (resolved
    first, for a request) when the connection does not hold it; outside any scope, nothing
    (``_UNSCOPED``) when a finished scope left its settings behind."""
    if _applying.get():
        return None
    scope = _current.get()
    if scope is None:
        if getattr(connection, "rls_dirty", False) and connection.connection is not None:
            return _UNSCOPED
        return None
    token = _applying.set(True)
    try:
        changed = scope.resolve(scope) if scope.resolve else False
    finally:
        _applying.reset(token)
    return scope if changed or _stale(connection, scope) else None


# Statements that may run in the implicit transaction of a multi-statement query (no VACUUM, no
# CREATE INDEX CONCURRENTLY, no transaction control): the scope's settings ride on these.
_RIDES = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")
_TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE", "ROLLBACK")


def _rides(connection, sql_text, many: bool, raw_cursor) -> bool:
    from psycopg import ClientCursor

    return (not many and isinstance(sql_text, str) and sql_text.lstrip()[:6].upper().startswith(_RIDES)
            and type(raw_cursor) is connection.connection.cursor_factory
            and issubclass(type(raw_cursor), ClientCursor))


def _execute_wrapper(execute, sql_text, params, many, context):
    """Write the pending scope (see ``_pending``) before the query: in the same round trip, as leading
    statements of one simple-protocol query (client-side binding, Django's default), else in its own.

    Riding: the settings and the query run in one implicit transaction (or in the open one); if the query
    fails they are undone with it, so the scope is then marked unwritten and written again before the
    next query. After success the cursor is moved past the settings' results to the query's own."""
    connection = context["connection"]
    _note_transaction(connection)
    if isinstance(sql_text, str) and sql_text.lstrip()[:9].upper().startswith(_TRANSACTION_CONTROL):
        # Reads no rows: the scope waits for the next query. (A failed query the scope rode on leaves the
        # transaction aborted until ROLLBACK TO SAVEPOINT: nothing may be written before that.)
        return execute(sql_text, params, many, context)
    scope = _pending(connection)
    if scope is None:
        return execute(sql_text, params, many, context)
    raw_cursor = getattr(context.get("cursor"), "cursor", None)
    if not _rides(connection, sql_text, many, raw_cursor):
        _raw_apply(connection, scope)
        return execute(sql_text, params, many, context)
    statements = _scope_statements(connection, scope)
    prefix = "; ".join(statements) + "; "
    if params is not None:
        prefix = prefix.replace("%", "%%")  # the query's placeholders are merged by psycopg
    applied_in = _transaction_state(connection) if connection.in_atomic_block else None
    try:
        result = execute(prefix + sql_text, params, many, context)
    except BaseException:
        scope.applied_to = None  # undone with the failed query (``_UNSCOPED``: the connection stays dirty)
        raise
    for _ in statements:
        raw_cursor.nextset()
    _mark_applied(connection, scope, applied_in)
    return result


def _install(connection) -> None:
    """One execute wrapper per connection, for its whole life (not per scope): it applies the scope in
    force and resets what a finished scope left, lazily, on the next query."""
    if _execute_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.append(_execute_wrapper)


@contextlib.contextmanager
def _entered(scope: Scope, connection=default_connection) -> Iterator[Scope]:
    if not rls_active(connection):
        yield scope
        return
    _install(connection)
    outer = _current.get()
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)
        if outer is not None and scope.applied_to is not None:
            outer.applied_to = None  # the connection holds the inner scope: the outer one is written again
        # Leaving the last scope: the connection is reset before its next query outside any scope (a new
        # scope overwrites it anyway), so a request pays no extra round trip for the reset.


def center_scope(center_ids: Iterable) -> contextlib.AbstractContextManager[Scope]:
    """Work for these centers only (a task working for one center's job)."""
    return _entered(Scope(center_ids=",".join(sorted(str(c) for c in center_ids))))


def system_scope(reason: str) -> contextlib.AbstractContextManager[Scope]:
    """Work across every center: system work only (sweeper, management commands, the center of a refused
    object for its audit event). ``reason`` says which, for the reader and the debug log."""
    log.debug("system scope: %s", reason)
    return _entered(Scope(center_ids=ALL_CENTERS, audit_all=True, system=True))


def user_centers_sql(user_id: int) -> str:
    """SQL yielding the centers ``user_id`` works in (memberships and ``register_scope_source`` queries)."""
    return " UNION ".join(f"({source % {'user_id': int(user_id)}})" for source in _scope_sources)


def _scope_for_user(scope: Scope, user) -> None:
    scope.center_sql = ""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        scope.center_ids, scope.audit_all, scope.user_id = "", False, ""
        return
    scope.user_id = str(user.pk)
    scope.audit_all = bool(getattr(user, "is_auditor", False) or user.is_superuser)
    if user.is_superuser:
        scope.center_ids = ALL_CENTERS
    else:
        scope.center_ids, scope.center_sql = None, user_centers_sql(user.pk)


def request_scope(request, connection=default_connection) -> contextlib.AbstractContextManager[Scope]:
    """The scope of one request: the centers of whoever ``request.user`` is when a query runs (resolved
    again when it changes: DRF token authentication, login, logout). Before the user is known: nothing."""
    seen: dict = {"user": object()}  # nobody yet: the first query resolves the scope

    def resolve(scope: Scope) -> bool:
        user = request.__dict__.get("user")
        if user is not None and getattr(user, "_wrapped", True) is _lazy_empty():
            user = None  # the lazy session user is not loaded yet: do not load it here
        if user is seen["user"]:
            # Resolved for this user (``center_ids`` stays None when the database computes a user's
            # centers: it is not a sign of "unresolved", or every query would write the scope again).
            return False
        seen["user"] = user
        _scope_for_user(scope, user)
        return True

    return _entered(Scope(center_ids=None, resolve=resolve), connection)


def _lazy_empty():
    from django.utils.functional import empty

    return empty


class CenterScopeMiddleware:
    """Every request runs in ``request_scope`` (after the authentication middleware), and reads each
    user's memberships once (``portal.centers.selectors.memberships_cached``; on SQLite too)."""

    def __init__(self, get_response):
        from portal.centers.selectors import memberships_cached

        self.get_response = get_response
        self.memberships_cached = memberships_cached

    def __call__(self, request):
        with request_scope(request), self.memberships_cached():
            return self.get_response(request)


def _on_connection_created(sender, connection, **kwargs) -> None:
    """A new connection starts with nothing set; the scope in force is written on its first query."""
    connection.rls_dirty = False
    scope = _current.get()
    if scope is not None:
        scope.applied_to = None
    if rls_active(connection):
        _install(connection)


connection_created.connect(_on_connection_created)
