"""The analytics views on Postgres, published so that BI readers keep their grants and are
never queued behind solarsync's DDL.

:class:`PostgresViews` is the :class:`~pipelines.views.ViewTarget` of
:func:`pipelines.views.publish_views`: after each load, every statement of the source's views
file (DuckDB's dialect, transpiled by :mod:`pipelines.views.transpile`) is compared with what
the database has:

- **Unchanged views are not touched.** Each view solarsync creates carries a comment with the
  sha256 of its rendered SQL; a view whose rendered SQL has the same digest gets no statement
  at all (no lock, so a BI transaction holding it delays nothing). A view without that comment
  (made by an earlier version) whose definition Postgres deparses identically only gets the
  comment (``COMMENT`` does not conflict with readers).
- **Changed views keep their grants and dependents.** Columns only appended: ``CREATE OR
  REPLACE VIEW``. Columns added anywhere else (``s.* EXCLUDE (...), x`` when the API adds a
  field): the same, with the existing columns kept in their order and the new ones appended, so
  it is still a replace in place. Anything else (a column gone, renamed or retyped): the view's
  privileges (``relacl``) and owner, and every plain view depending on it (definition,
  options, owner, privileges, comment) are read from the catalog, then in ONE transaction the
  view is dropped with its dependents, created anew, and all of it re-applied. If a dependent
  cannot be created again (it used a column that is gone, or is a materialized view, a
  function body, ...) nothing is dropped: the view keeps its old definition and the run warns,
  naming the dependents.
- **Short locks.** Each change is its own short transaction under ``lock_timeout``
  (``view_lock_timeout``, default 1 s), tried ``view_lock_attempts`` times (default 3) with a
  pause as long as the timeout between attempts: a reader that started while solarsync
  waited waits at most one ``view_lock_timeout``. When every attempt times out, the view keeps
  its old definition (it still answers, without the new columns), the run says so in a warning
  (naming the sessions holding it) and succeeds; the next run tries again.
- **Readers.** ``[destination.postgres] readers`` roles get USAGE on ``analytics`` and the
  source's schema, SELECT on the source's views and tables and EXECUTE on its functions;
  only what a role lacks is granted (GRANT does not wait for readers either).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2 import sql as pgsql

from pipelines.destinations.postgres.catalog import DIGEST, PROBE, Catalog, Dependent, Relation
from pipelines.destinations.postgres.config import WHERE, PostgresSettings
from pipelines.views import Macro, ViewsOutcome
from pipelines.views.transpile import schema_of
from sources.common import DestinationError, redact

logger = logging.getLogger("solarsync")

#: ``CREATE [OR REPLACE] VIEW <name> AS <select>`` as :func:`pipelines.views.render` writes it
_CREATE_VIEW = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(\S+)\s+AS\s+(.*)$", re.I | re.S
)
_CREATE_SCHEMA = re.compile(r"^\s*CREATE\s+SCHEMA\s+IF\s+NOT\s+EXISTS\s+\"?(\w+)\"?\s*$", re.I)
#: dlt's bookkeeping tables readers do not need (``_dlt_loads`` they may: last load times)
PRIVATE_TABLES = ("_dlt_pipeline_state", "_dlt_version")


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def comment_for(source: str, digest: str, kind: str = "view") -> str:
    return (
        f"analytics {kind} published by solarsync from warehouse/views/{source}.sql "
        f"(solarsync definition sha256:{digest}; do not edit: solarsync replaces it when the "
        "definition changes)"
    )


class PostgresViews:
    """Publishes one source's views file on one psycopg2 connection (see the module doc)."""

    where = WHERE

    def __init__(
        self,
        connection: Any,
        source: str,
        settings: PostgresSettings,
        dialect: str = "postgres",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.connection = connection
        self.source = source
        self.dialect = dialect
        self.timeout_s = settings.lock_timeout_s()
        self.attempts = int(settings.view_lock_attempts)
        self.readers = settings.reader_roles()
        self.sleep = sleep
        self.outcome = ViewsOutcome()
        self.catalog = Catalog(connection)
        #: statements that changed the catalog (CREATE/DROP/COMMENT/GRANT/ALTER)
        self.ddl = 0
        self._schema_dirty = True
        self._schema: Any = None

    # ------------------------------------------------------------------ the target
    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Each change its own short transaction under ``lock_timeout``."""
        autocommit = self.connection.autocommit
        self.connection.autocommit = False
        try:
            self._session(f"SET lock_timeout = '{max(1, int(self.timeout_s * 1000))}ms'")
            yield
        except BaseException:
            self.connection.rollback()
            raise
        finally:
            with contextlib.suppress(psycopg2.Error):
                self._session("RESET lock_timeout")
            self.connection.autocommit = autocommit

    def _session(self, statement: str) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(statement)
        self.connection.commit()

    def create(
        self, name: str | None, statement: str, rendered: str | Macro, outcome: ViewsOutcome
    ) -> None:
        self.outcome = outcome
        if name is None:
            self._other(str(rendered))
        elif isinstance(rendered, Macro):
            self._function(name, rendered)
        else:
            self._view(name, rendered)

    def finish(self, outcome: ViewsOutcome) -> None:
        self.outcome = outcome
        self._grant_readers()
        outcome_probes = self.catalog.probes
        logger.info(
            "%s: views published (%d in place, %d changed, %d kept as they were, %d DDL, "
            "%d probes)",
            self.source,
            len(outcome.views),
            len(outcome.changed),
            len(outcome.kept),
            self.ddl,
            outcome_probes,
        )

    def column_types(self, names: list[str]) -> list[tuple[str, str, str]]:
        wanted = [tuple(n.split(".", 1)) for n in names if "." in n]
        if not wanted:
            return []
        rows = self.catalog.all(
            "select table_schema || '.' || table_name, column_name, upper(data_type) "
            "from information_schema.columns where (table_schema, table_name) in %s "
            "order by 1, ordinal_position",
            tuple(wanted),
        )
        self.connection.commit()
        return [tuple(r) for r in rows]

    def schema(self) -> Any:
        """Columns of every table and view, read again after a view changed."""
        if self._schema_dirty:
            with self.connection.cursor() as cursor:
                cursor.execute(
                    "select table_schema, table_name, column_name, data_type "
                    "from information_schema.columns "
                    "where table_schema not in ('pg_catalog', 'information_schema') "
                    "order by table_schema, table_name, ordinal_position"
                )
                columns = cursor.fetchall()
            self.connection.commit()
            self._schema = schema_of(columns, self.dialect)
            self._schema_dirty = False
        return self._schema

    # ------------------------------------------------------------------ statements
    def _other(self, rendered: str) -> None:
        """``CREATE SCHEMA IF NOT EXISTS`` (run only when missing) or any other statement."""
        match = _CREATE_SCHEMA.match(rendered)
        if match and self.catalog.one(
            "select 1 from pg_namespace where nspname = %s", match.group(1)
        ):
            return
        self._change(None, lambda cursor: self._ddl(cursor, rendered))

    def _view(self, name: str, rendered: str) -> None:
        match = _CREATE_VIEW.match(rendered)
        if not match:
            raise ValueError(f"not a CREATE VIEW statement: {rendered[:80]}")
        qname, select = match.groups()
        digest = digest_of(select)
        current = self.catalog.relation(qname)
        if current is not None and current.digest == digest:
            self.outcome.views.append(name)
            return
        comment = comment_for(self.source, digest)
        if current is not None and current.kind != "v":
            raise DestinationError(
                f"{current.name} exists and is not a view, so the analytics view cannot be "
                "created there",
                source=WHERE,
                hint=f"rename or drop {current.name} (solarsync creates the views of "
                f"warehouse/views/{self.source}.sql in schema analytics)",
            )
        if current is None:
            work = self._create(qname, select, comment)
        else:
            old = self.catalog.columns(current.oid)
            new, same_definition = self.catalog.probe(current.oid, select)
            if same_definition and old == new:  # an earlier version's view: stamp it only
                work = self._comment(qname, comment)
            elif new[: len(old)] == old:
                work = self._replace(qname, select, comment)
            elif set(old) <= set(new):  # columns added in the middle: append them instead
                kept = {column for column, _ in old}
                order = [c for c, _ in old] + [c for c, _ in new if c not in kept]
                wrapped = f"SELECT {', '.join(_q(c) for c in order)} FROM ({select}) AS {PROBE}"
                work = self._replace(qname, wrapped, comment)
            else:
                work = self._rebuild(current, select, comment, old, new)
                if work is None:
                    self._keep(name)
                    return
        if self._change(current, work, name):
            self.outcome.views.append(name)
            self.outcome.changed.append(name)
            self._schema_dirty = True
        else:
            self._keep(name, exists=current is not None)

    def _function(self, name: str, macro: Macro) -> None:
        """A table macro as a SQL function: replaced in place; dropped and created again
        (EXECUTE grants re-applied) only when its result columns changed."""
        digest = digest_of(repr((macro.params, macro.types, macro.defaults, macro.body)))
        signature = macro.signature()
        current = self.catalog.one(
            "select obj_description(p.oid, 'pg_proc'), p.proacl::text[] "
            "from pg_proc p where p.oid = to_regprocedure(%s)",
            signature,
        )
        if current is not None:
            match = DIGEST.search(current[0] or "")
            if match and match.group(1) == digest:
                self.outcome.views.append(name)
                return
        columns, _ = self.catalog.probe(None, macro.probe())
        create = macro.create(columns, "postgres")
        comment = comment_for(self.source, digest, "function")
        grants = self.catalog.function_grants(signature) if current is not None else []

        def work(cursor: Any) -> None:
            cursor.execute("SAVEPOINT solarsync_function")
            try:
                self._ddl(cursor, create.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
            except psycopg2.Error as exc:
                if exc.pgcode != "42P13":  # cannot change the return type: drop, create
                    raise
                cursor.execute("ROLLBACK TO SAVEPOINT solarsync_function")
                self._ddl(cursor, f"DROP FUNCTION {signature}")
                self._ddl(cursor, create)
                for grant in grants:
                    self._ddl(cursor, grant)
            cursor.execute("RELEASE SAVEPOINT solarsync_function")
            self._ddl(cursor, f"COMMENT ON FUNCTION {signature} IS {_literal(comment)}")

        if self._change(None, work, name):
            self.outcome.views.append(name)
            self.outcome.changed.append(name)
        else:
            self._keep(name, exists=current is not None)

    # ------------------------------------------------------------------ changes
    def _create(self, qname: str, select: str, comment: str) -> Callable[[Any], None]:
        def work(cursor: Any) -> None:
            self._ddl(cursor, f"CREATE VIEW {qname} AS {select}")
            self._ddl(cursor, f"COMMENT ON VIEW {qname} IS {_literal(comment)}")
            self._grant_view(cursor, qname)

        return work

    def _replace(self, qname: str, select: str, comment: str) -> Callable[[Any], None]:
        def work(cursor: Any) -> None:
            self._ddl(cursor, f"CREATE OR REPLACE VIEW {qname} AS {select}")
            self._ddl(cursor, f"COMMENT ON VIEW {qname} IS {_literal(comment)}")

        return work

    def _comment(self, qname: str, comment: str) -> Callable[[Any], None]:
        return lambda cursor: self._ddl(cursor, f"COMMENT ON VIEW {qname} IS {_literal(comment)}")

    def _rebuild(
        self,
        current: Relation,
        select: str,
        comment: str,
        old: list[tuple[str, str]],
        new: list[tuple[str, str]],
    ) -> Callable[[Any], None] | None:
        """Drop and create the view, with its privileges, owner and dependents; None (and a
        warning) when a dependent cannot be created again."""
        qname = current.name
        dependents = self.catalog.dependents(current.oid)
        other = [d for d in dependents if d.kind != "v" or d.definition is None]
        gone = ", ".join(f"{c} {t}" for c, t in old if (c, t) not in new)
        if other:
            self.outcome.warnings.append(
                f"{qname} keeps its previous definition: its columns changed ({gone} no longer "
                f"as before) and {_names(other)} depend on it, which solarsync cannot create "
                "again; drop them (or change them not to use the view), and the next run "
                "replaces the view"
            )
            return None
        grants = self.catalog.grants(current.oid, qname)
        me = self.catalog.one("select current_user")[0]

        def work(cursor: Any) -> None:
            self._ddl(cursor, f"DROP VIEW {qname} CASCADE")
            self._ddl(cursor, f"CREATE VIEW {qname} AS {select}")
            if current.owner != me:
                self._ddl(cursor, f"ALTER VIEW {qname} OWNER TO {_q(current.owner)}")
            for grant in grants:
                self._ddl(cursor, grant)
            self._ddl(cursor, f"COMMENT ON VIEW {qname} IS {_literal(comment)}")
            self._grant_view(cursor, qname)
            failed: list[tuple[Dependent, str]] = []
            for dependent in sorted(dependents, key=lambda d: d.depth):
                cursor.execute("SAVEPOINT solarsync_dependent")
                try:
                    self._recreate(cursor, dependent, me)
                except psycopg2.errors.LockNotAvailable:
                    raise
                except psycopg2.Error as exc:
                    cursor.execute("ROLLBACK TO SAVEPOINT solarsync_dependent")
                    failed.append((dependent, _first_line(exc)))
                    continue
                cursor.execute("RELEASE SAVEPOINT solarsync_dependent")
            # solarsync's own views of this file are created again from the file right after
            mine = re.compile(rf"warehouse/views/{re.escape(self.source)}\.sql")
            theirs = [(d, why) for d, why in failed if not mine.search(d.comment or "")]
            if theirs:
                raise _DependentsFailed(theirs)

        def guarded(cursor: Any) -> None:
            try:
                work(cursor)
            except _DependentsFailed as exc:
                raise _KeepOld(
                    f"{qname} keeps its previous definition: its columns changed ({gone} no "
                    f"longer as before) and views depending on it cannot be created again over "
                    f"the new columns: {exc.describe()}. Change or drop them; the next run then "
                    "replaces the view"
                ) from None

        if dependents:
            logger.info(
                "%s: %s changes its columns; recreating it with %s",
                self.source,
                qname,
                _names(dependents),
            )
        return guarded

    def _recreate(self, cursor: Any, dependent: Dependent, me: str) -> None:
        options = f" WITH ({', '.join(dependent.options)})" if dependent.options else ""
        self._ddl(cursor, f"CREATE VIEW {dependent.name}{options} AS {dependent.definition}")
        if dependent.owner != me:
            self._ddl(cursor, f"ALTER VIEW {dependent.name} OWNER TO {_q(dependent.owner)}")
        for grant in dependent.grants:
            self._ddl(cursor, grant)
        if dependent.comment is not None:
            self._ddl(cursor, f"COMMENT ON VIEW {dependent.name} IS {_literal(dependent.comment)}")

    def _change(
        self, current: Relation | None, work: Callable[[Any], None], name: str | None = None
    ) -> bool:
        """``work`` in its own transaction, under ``lock_timeout``, up to ``attempts`` times;
        False (and a warning) when it never got its locks or must not be done."""
        for attempt in range(1, self.attempts + 1):
            try:
                with self.connection.cursor() as cursor:
                    work(cursor)
                self.connection.commit()
                return True
            except psycopg2.errors.LockNotAvailable:
                self.connection.rollback()
                if attempt < self.attempts:
                    self.sleep(self.timeout_s)
            except _KeepOld as exc:
                self.connection.rollback()
                self.outcome.warnings.append(str(exc))
                return False
            except BaseException:
                self.connection.rollback()
                raise
        holders = self.catalog.holders(current.oid) if current is not None else ""
        self.outcome.warnings.append(
            f"{name or 'a statement'} keeps its previous definition: it was held by "
            f"{holders or 'other sessions'} through {self.attempts} attempt(s) of "
            f"{self.timeout_s:g}s (view_lock_timeout); its data is current, the new definition "
            "is applied by the next run"
        )
        return False

    def _keep(self, name: str, exists: bool = True) -> None:
        self.outcome.keep(name, exists=exists)

    def _ddl(self, cursor: Any, statement: str | pgsql.Composable) -> None:
        cursor.execute(statement)
        self.ddl += 1

    # ------------------------------------------------------------------ readers
    def _grant_view(self, cursor: Any, qname: str) -> None:
        for role in self.readers:
            self._ddl(cursor, f"GRANT SELECT ON {qname} TO {_q(role)}")

    def _grant_readers(self) -> None:
        """What the reader roles lack on this source's schemas, views, tables, functions."""
        if not self.readers:
            return
        names = [n for n in self.outcome.views if "." in n]
        missing = self.catalog.missing_grants(self.readers, self.source, names, PRIVATE_TABLES)
        if not missing:
            return

        def work(cursor: Any) -> None:
            for (grant,) in missing:
                self._ddl(cursor, grant)

        self._change(None, work, "granting the readers")
        logger.info("%s: granted %d privilege(s) to %s", self.source, len(missing), self.readers)


class _DependentsFailed(Exception):
    def __init__(self, failed: list[tuple[Dependent, str]]) -> None:
        super().__init__()
        self.failed = failed

    def describe(self) -> str:
        return "; ".join(f"{d.name} ({why})" for d, why in self.failed)


class _KeepOld(Exception):
    """A change that must not be made; the message is the run's warning."""


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _names(dependents: list[Dependent]) -> str:
    return ", ".join(
        d.name if d.kind in ("v", "other") else f"{d.name} ({_KINDS.get(d.kind, d.kind)})"
        for d in dependents
    )


_KINDS = {"m": "materialized view", "r": "table", "f": "foreign table"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[0] if text else type(exc).__name__)
