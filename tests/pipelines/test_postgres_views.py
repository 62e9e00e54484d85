"""Postgres for a BI team (issue 19, section 4): the analytics views as other roles read them.

The loader is a non-superuser role (``PASSWORD_USER``, CREATE on the database). BI roles are
real login roles of the test server: one in ``[destination.postgres] readers``, one a DBA
granted by hand, an analyst with views of their own on top of ``analytics``. A BI session
holding a view in an open transaction is a real second connection; what waits for what is read
from ``pg_locks``, never from the clock.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

import pipelines.views
from pipelines import cli
from pipelines.destinations.postgres.views import PROBE
from tests import postgres_server as pg
from tests.postgres_server import PASSWORD, PASSWORD_USER
from tests.sources.heat.conftest import heat_sandbox

assert heat_sandbox  # the HEAT sandbox fixture, shared with tests/sources/heat


def run(*args: str) -> int:
    return cli.main(["--no-progress", "--destination", "postgres", *args])


@pytest.fixture
def bi(postgres_server: pg.TestPostgres, postgres_warehouse, monkeypatch):
    """The loader (non-superuser) and three BI roles: ``reader`` (in ``readers``), ``dba``
    (granted by hand), ``analyst`` (in ``readers``, owns schema ``bi`` and views there)."""
    database = postgres_warehouse.database_name
    tag = uuid.uuid4().hex[:6]
    roles = {kind: f"solarsync_{kind}_{tag}" for kind in ("reader", "dba", "analyst")}
    for name in roles.values():
        postgres_server.create_role(name)
    postgres_server.execute(f"GRANT CREATE ON DATABASE {database} TO {PASSWORD_USER}")
    postgres_server.execute(f"GRANT CREATE ON DATABASE {database} TO {roles['analyst']}")
    monkeypatch.setenv(
        "DESTINATION__POSTGRES__CREDENTIALS",
        postgres_server.dsn(database, PASSWORD_USER, PASSWORD),
    )
    monkeypatch.setenv(
        "DESTINATION__POSTGRES__READERS", json.dumps([roles["reader"], roles["analyst"]])
    )
    try:
        yield BI(postgres_server, database, roles)
    finally:
        with contextlib.suppress(Exception):
            postgres_server.execute(f"REVOKE {roles['analyst']} FROM {PASSWORD_USER}")
        for name in roles.values():
            postgres_server.drop_role(name, database)


class BI:
    def __init__(self, server: pg.TestPostgres, database: str, roles: dict[str, str]) -> None:
        self.server, self.database, self.roles = server, database, roles

    def connect(self, kind: str | None = None, autocommit: bool = True):
        user = self.roles[kind] if kind else None
        connection = psycopg2.connect(self.server.dsn(self.database, user, "unused"))
        connection.autocommit = autocommit
        return connection

    def query(self, kind: str | None, sql: str) -> list[tuple]:
        connection = self.connect(kind)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def admin(self, sql: str) -> list[tuple]:
        return self.server.execute(sql, self.database)

    def views(self) -> list[str]:
        return [
            f"analytics.{name}"
            for (name,) in self.admin(
                "select table_name from information_schema.views "
                "where table_schema = 'analytics' order by 1"
            )
        ]

    def read_all(self, kind: str) -> dict[str, int | str]:
        """Every analytics view as role ``kind``: its row count, or the error."""
        out: dict[str, int | str] = {}
        for view in self.views():
            try:
                out[view] = self.query(kind, f"select count(*) from {view}")[0][0]
            except psycopg2.Error as exc:
                out[view] = str(exc).strip().splitlines()[0]
        return out

    def columns(self, relation: str) -> list[str]:
        schema, name = relation.split(".")
        return [
            c
            for (c,) in self.admin(
                "select column_name from information_schema.columns "
                f"where table_schema = '{schema}' and table_name = '{name}' "
                "order by ordinal_position"
            )
        ]

    def oid(self, relation: str) -> int | None:
        return self.admin(f"select to_regclass('{relation}')::oid")[0][0]


def patch_view(monkeypatch, tmp_path: Path, source: str, view: str, rewrite) -> None:
    """A copy of ``warehouse/views`` in which ``view``'s statement is ``rewrite(select)``
    (as a new version of solarsync would ship it)."""
    from pipelines.views import VIEWS_DIR, statements

    target = tmp_path / "views"
    if not target.exists():
        target.mkdir()
        for path in VIEWS_DIR.rglob("*.sql"):
            (target / path.relative_to(VIEWS_DIR)).parent.mkdir(parents=True, exist_ok=True)
            (target / path.relative_to(VIEWS_DIR)).write_text(path.read_text())
    file = target / f"{source}.sql"
    out = []
    for statement in statements(file.read_text()):
        match = re.match(rf"CREATE OR REPLACE VIEW {re.escape(view)} AS\s+(.*)$", statement, re.S)
        if match:
            statement = f"CREATE OR REPLACE VIEW {view} AS {rewrite(match.group(1))}"
        out.append(statement + ";\n")
    file.write_text("".join(out))
    monkeypatch.setattr(pipelines.views, "VIEWS_DIR", target)


# --------------------------------------------------------------------------- grants survive
def test_an_api_field_added_keeps_every_grant_and_dependent_view(
    heat_sandbox, bi, postgres_warehouse, tmp_path, monkeypatch, capsys
):
    """The issue's night: HEAT starts sending a new site field. The views list their columns,
    so ``analytics.heat_sites`` does not change (no DDL, nothing to lose) and the field is in
    the raw table; then a new solarsync version appends it to the view (in the middle of its
    select list): the readers role, the DBA's hand-made grant and the analyst's views on top
    all survive, the view replaced in place."""
    assert run("run", "heat") == 0
    before = bi.read_all("reader")
    assert before and all(isinstance(n, int) for n in before.values()), before
    assert "analytics.heat_sites" in before and "analytics.sync_runs" in before
    assert bi.query("reader", "select count(*) from heat.sites")[0][0] == 4
    assert bi.query(
        "reader", "select count(*) from analytics.heat_schedule_at('2026-06-01 09:00+00')"
    )
    bi.admin(f"GRANT USAGE ON SCHEMA analytics TO {bi.roles['dba']}")
    bi.admin(f"GRANT SELECT ON analytics.heat_sites TO {bi.roles['dba']}")
    bi.query(
        "analyst",
        "CREATE SCHEMA bi; CREATE VIEW bi.site_names AS "
        "SELECT site_id, site_name FROM analytics.heat_sites; "
        "CREATE VIEW bi.site_count AS SELECT count(*) AS n FROM bi.site_names",
    )
    oids = {r: bi.oid(r) for r in ("analytics.heat_sites", "bi.site_names", "bi.site_count")}
    columns = bi.columns("analytics.heat_sites")

    for site in heat_sandbox.site_ids:
        heat_sandbox.set_site_field(site, "installerName", f"installer of {site}")
    capsys.readouterr()
    assert run("run", "heat") == 0
    out = capsys.readouterr().out
    assert "warning" not in out, out
    assert bi.columns("analytics.heat_sites") == columns  # the view lists its columns
    assert bi.query("reader", "select count(installer_name) from heat.sites") == [(4,)]
    assert {r: bi.oid(r) for r in oids} == oids

    # a new version's view reads the field, placed before the last column
    last = columns[-1]
    patch_view(
        monkeypatch,
        tmp_path,
        "heat",
        "analytics.heat_sites",
        lambda select: (
            f"SELECT v.* EXCLUDE ({last}), s.installer_name, v.{last} FROM ({select}) AS v "
            "LEFT JOIN (SELECT DISTINCT ON (site_id) site_id, installer_name FROM heat.sites "
            "ORDER BY site_id, installer_name) AS s USING (site_id)"
        ),
    )
    assert run("run", "heat") == 0
    out = capsys.readouterr().out
    assert "warning" not in out, out
    assert bi.columns("analytics.heat_sites")[-1] == "installer_name"  # appended
    after = bi.read_all("reader")
    assert set(after) == set(before)
    assert all(isinstance(n, int) for n in after.values()), after
    assert bi.query("reader", "select count(installer_name) from analytics.heat_sites") == [(4,)]
    assert bi.query("dba", "select count(*) from analytics.heat_sites") == [(4,)]
    assert bi.query("analyst", "select n from bi.site_count") == [(4,)]
    assert {r: bi.oid(r) for r in oids} == oids  # replaced in place: nothing dropped


@pytest.mark.parametrize("case", ["loader may recreate", "loader may not", "uses a gone column"])
def test_a_view_whose_columns_change_is_rebuilt_with_its_grants_and_dependents(
    case, heat_sandbox, bi, tmp_path, monkeypatch, capsys
):
    """A new version of a view drops a column: Postgres cannot replace it in place. solarsync
    drops and creates it with its privileges, and the analyst's views on it, when it can create
    those again (its role is a member of the analyst's); otherwise it keeps the old view and
    says which views stand in the way. Never a dependent silently lost."""
    assert run("run", "heat") == 0
    gone = bi.columns("analytics.heat_sites")[-1]
    used = gone if case == "uses a gone column" else "site_name"
    bi.admin(f"GRANT USAGE ON SCHEMA analytics TO {bi.roles['dba']}")
    bi.admin(f"GRANT SELECT ON analytics.heat_sites TO {bi.roles['dba']}")
    bi.query(
        "analyst",
        f"CREATE SCHEMA bi; GRANT USAGE ON SCHEMA bi TO {bi.roles['dba']}; "
        f"CREATE VIEW bi.site_names AS SELECT site_id, {used} FROM analytics.heat_sites; "
        "CREATE VIEW bi.site_count AS SELECT count(*) AS n FROM bi.site_names; "
        f"GRANT SELECT ON bi.site_names TO {bi.roles['dba']}; "
        "COMMENT ON VIEW bi.site_names IS 'sites for the weekly deck'",
    )
    if case != "loader may not":
        bi.admin(f"GRANT {bi.roles['analyst']} TO {PASSWORD_USER}")
    patch_view(
        monkeypatch,
        tmp_path,
        "heat",
        "analytics.heat_sites",
        lambda select: f"SELECT v.* EXCLUDE ({gone}) FROM ({select}) AS v",
    )
    capsys.readouterr()
    assert run("run", "heat") == 0
    out = capsys.readouterr().out

    assert all(isinstance(n, int) for n in bi.read_all("reader").values())
    assert bi.query("dba", "select count(*) from analytics.heat_sites") == [(4,)]
    assert bi.query("analyst", "select n from bi.site_count") == [(4,)]
    if case == "loader may recreate":
        assert "warning" not in out, out
        assert gone not in bi.columns("analytics.heat_sites")
        owner, comment = bi.admin(
            "select pg_get_userbyid(relowner), obj_description(oid, 'pg_class') "
            "from pg_class where oid = 'bi.site_names'::regclass"
        )[0]
        assert (owner, comment) == (bi.roles["analyst"], "sites for the weekly deck")
        assert bi.query("dba", "select count(*) from bi.site_names") == [(4,)]
        return
    # the old view stays, and the run says why and what to do
    assert gone in bi.columns("analytics.heat_sites")
    warning = next(line for line in out.splitlines() if "warning:" in line)
    assert "analytics.heat_sites keeps its previous definition" in warning, out
    assert "bi.site_names" in warning and "next run" in warning, out
    (warnings,) = bi.admin(
        "select warnings from solarsync.sync_runs where source = 'heat' "
        "order by started_at desc limit 1"
    )[0]
    assert "analytics.heat_sites keeps its previous definition" in warnings

    bi.query("analyst", "DROP VIEW bi.site_count, bi.site_names")
    assert run("run", "heat") == 0
    assert "warning" not in capsys.readouterr().out
    assert gone not in bi.columns("analytics.heat_sites")
    assert bi.query("dba", "select count(*) from analytics.heat_sites") == [(4,)]


# --------------------------------------------------------------------------- locks
@contextlib.contextmanager
def bi_transaction(bi: BI, view: str) -> Iterator[dict]:
    """A BI session (the reader role) in an open transaction that has read ``view``, and a
    watcher: whenever solarsync waits for a lock on ``view`` (an ungranted AccessExclusiveLock
    in ``pg_locks``), it starts a new reader of ``view`` (one at a time) and records, from
    ``pg_locks``, whether that reader queued behind solarsync, and whether it got its rows while
    the BI transaction was still open."""
    holder = bi.connect("reader", autocommit=False)
    with holder.cursor() as cursor:
        cursor.execute(f"select count(*) from {view}")
        cursor.execute("select pg_backend_pid()")
        (holder_pid,) = cursor.fetchone()
    state: dict = {"holder_pid": holder_pid, "solarsync_waited": False, "readers": {}}
    held, stop = threading.Event(), threading.Event()
    held.set()
    watcher_db = bi.connect()

    def read() -> None:
        connection = bi.connect("reader")
        try:
            with connection.cursor() as cursor:
                cursor.execute("select pg_backend_pid()")
                pid = cursor.fetchone()[0]
                state["readers"][pid] = {"queued": False, "done_while_held": None}
                cursor.execute(f"select count(*) from {view}")
            state["readers"][pid]["done_while_held"] = held.is_set()
        finally:
            connection.close()

    def watch() -> None:
        reader: threading.Thread | None = None
        with watcher_db.cursor() as cursor:
            while not stop.wait(0.02):
                cursor.execute(
                    "select l.pid, l.mode from pg_locks l "
                    f"where l.relation = to_regclass('{view}') and not l.granted"
                )
                waiting = cursor.fetchall()
                if any(mode == "AccessExclusiveLock" for _, mode in waiting):
                    state["solarsync_waited"] = True
                    if reader is None or not reader.is_alive():
                        reader = threading.Thread(target=read, daemon=True)
                        reader.start()
                for pid, _ in waiting:
                    if pid in state["readers"]:
                        state["readers"][pid]["queued"] = True
        if reader is not None:
            reader.join(60)

    # a run that waited for the BI session forever (the old behaviour) ends the test, not CI
    timer = threading.Timer(240, lambda: (state.update(released_by_timer=True), holder.rollback()))
    timer.start()
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        held.clear()
        timer.cancel()
        with contextlib.suppress(Exception):
            holder.rollback()
        holder.close()
        stop.set()
        thread.join(60)
        watcher_db.close()


def test_a_reader_holding_views_never_stalls_the_run_nor_queues_other_readers(
    sk_sandbox, bi, postgres_server, monkeypatch, tmp_path, capsys
):
    """A dashboard's transaction holds ``analytics.knocks`` through the nightly run.

    1. Nothing in the views changed: the run touches no view (no DDL on ``analytics``, as the
       server's event trigger saw it) and finishes while the transaction is still open.
    2. ``knocks`` must change: solarsync waits at most ``view_lock_timeout`` per attempt; a
       reader that arrives meanwhile queues behind solarsync only until that attempt gives up
       (it gets its rows while the dashboard's transaction is still open); after the attempts
       the old view stays, the run succeeds and warns, naming the session.
    3. The transaction ended: the next run replaces the view (a column appended), grants kept.
    """
    monkeypatch.setenv("DESTINATION__POSTGRES__VIEW_LOCK_TIMEOUT", "1s")
    monkeypatch.setenv("DESTINATION__POSTGRES__VIEW_LOCK_ATTEMPTS", "3")
    assert run("run", "solarknock") == 0
    postgres_server.log_ddl(bi.database)

    sk_sandbox.update("knocks", 5)
    mark = postgres_server.ddl_count(bi.database)
    with bi_transaction(bi, "analytics.knocks") as state:
        capsys.readouterr()
        assert run("run", "solarknock") == 0
        out = capsys.readouterr().out
    assert not state.get("released_by_timer")
    assert "warning" not in out, out
    touched = [
        d for d in postgres_server.ddl(bi.database, mark) if "analytics" in d[1] or PROBE in d[1]
    ]
    assert touched == [], touched
    assert not state["solarsync_waited"]

    patch_view(
        monkeypatch,
        tmp_path,
        "solarknock",
        "analytics.knocks",
        lambda select: f"SELECT k.*, 'unreviewed' AS review_state FROM ({select}) AS k",
    )
    sk_sandbox.update("knocks", 5)
    with bi_transaction(bi, "analytics.knocks") as state:
        capsys.readouterr()
        assert run("run", "solarknock") == 0
        out = capsys.readouterr().out
        waiting = bi.admin("select count(*) from pg_locks where not granted")[0][0]
    assert not state.get("released_by_timer")
    assert waiting == 0  # solarsync left no lock request behind
    readers = state["readers"].values()
    assert state["solarsync_waited"] and any(r["queued"] for r in readers), state
    assert all(r["done_while_held"] is True for r in readers), state
    warning = next(line for line in out.splitlines() if "warning:" in line)
    assert "analytics.knocks keeps its previous definition" in warning, out
    assert f"pid {state['holder_pid']}" in warning and "view_lock_timeout" in warning, out
    assert "review_state" not in bi.columns("analytics.knocks")
    live = sum(1 for r in sk_sandbox.truth("knocks") if r["deleted_at"] is None)
    assert bi.query("reader", "select count(*) from analytics.knocks") == [(live,)]

    capsys.readouterr()
    assert run("run", "solarknock") == 0
    assert "warning" not in capsys.readouterr().out
    assert bi.columns("analytics.knocks")[-1] == "review_state"
    assert bi.query("reader", "select count(review_state) from analytics.knocks") == [(live,)]


def test_views_of_an_earlier_version_are_adopted_without_a_lock(
    sk_sandbox, bi, postgres_server, capsys
):
    """Views an earlier solarsync created (no definition digest in their comment) whose
    definition Postgres deparses identically are not replaced: they only get the comment, which
    does not wait for a BI transaction holding them."""
    assert run("run", "solarknock") == 0
    for view in bi.views():
        bi.admin(f"COMMENT ON VIEW {view} IS NULL")
    postgres_server.log_ddl(bi.database)
    mark = postgres_server.ddl_count(bi.database)
    sk_sandbox.update("knocks", n=1)  # a run that loads (one that changes nothing and
    # has this version's views does not look at them: tests/pipelines/test_nothing_changed.py)
    with bi_transaction(bi, "analytics.knocks") as state:
        capsys.readouterr()
        assert run("run", "solarknock") == 0
        out = capsys.readouterr().out
    assert "warning" not in out, out
    assert not state["solarsync_waited"]
    tags = {tag for tag, name in postgres_server.ddl(bi.database, mark) if "analytics" in name}
    assert tags == {"COMMENT"}, tags
    comments = bi.admin(
        "select obj_description(c.oid, 'pg_class') from pg_class c "
        "join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'analytics' and c.relkind = 'v'"
    )
    assert comments and all("solarsync definition sha256:" in c for (c,) in comments), comments


# --------------------------------------------------------------------------- settings
def test_readers_that_are_not_roles_stop_the_run_before_any_request(
    sk_sandbox, bi, monkeypatch, capsys
):
    monkeypatch.setenv("DESTINATION__POSTGRES__READERS", '["solarsync_nobody_here"]')
    assert run("run", "solarknock") == 1
    out = capsys.readouterr().out
    assert "destination postgres: readers: role(s) solarsync_nobody_here do not exist" in out
    assert "CREATE ROLE solarsync_nobody_here" in out
    assert sk_sandbox.count_requests() == 0

    monkeypatch.setenv("DESTINATION__POSTGRES__READERS", "bi_reader")  # not a list
    assert run("run", "solarknock") == 2  # a usage error: before any run
    assert "readers is a list of role names" in capsys.readouterr().err
    assert sk_sandbox.count_requests() == 0
