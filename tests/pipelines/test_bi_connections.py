"""BI connections to the published file, each tool a process of its own, as
docs/destinations/duckdb.md tells users to open them (read-only) and as DBeaver opens them by default (read-write).

- Read-only connections share the file: one held by a dashboard does not stop another one
  opened through SQLAlchemy with ``connect_args={"read_only": True}`` or ``?access_mode=
  READ_ONLY`` in the URL.
- A read-write connection locks everyone else out of that file, read-only connections
  included, until the next publish puts a new file in its place; the holder keeps reading its
  old snapshot. (DuckDB's locking: one writer process, or any number of readers.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.pipelines.test_publish import BI_TOOL, ask, child, run, stop

COUNT = "select count(*) from analytics.knocks"


def sqlalchemy_count(path: Path, how: str) -> int:
    """A new connection through SQLAlchemy (duckdb_engine), in a process of its own (DuckDB
    shares one database instance between the connections of a process)."""
    code = (
        "import sqlalchemy as sa, sys\n"
        "path, how = sys.argv[1], sys.argv[2]\n"
        "engine = (sa.create_engine(f'duckdb:///{path}?access_mode=READ_ONLY') if how == 'url'\n"
        "          else sa.create_engine(f'duckdb:///{path}', connect_args={'read_only': True}))\n"
        "with engine.connect() as conn:\n"
        f"    print(conn.execute(sa.text({COUNT!r})).scalar())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path), how], capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "Error" in line]
        raise ConnectionRefusedError("\n".join(errors[-3:]) or result.stderr[-2000:])
    return int(result.stdout.strip())


def count_now(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(COUNT).fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("how", ["connect_args", "url"])
def test_read_only_connections_share_the_published_file(sk_sandbox, isolated_dlt, how):
    published = isolated_dlt / "warehouse.duckdb"
    assert run("run", "solarknock") == 0
    live = count_now(published)
    dashboard = child(BI_TOOL, str(published), "ro")
    try:
        assert dashboard.stdout.readline().strip() == "held"
        assert sqlalchemy_count(published, how) == live  # while the dashboard holds it
        assert ask(dashboard, COUNT) == f"[({live},)]"
    finally:
        stop(dashboard)


def test_a_read_write_connection_locks_others_out_until_the_next_publish(
    sk_sandbox, isolated_dlt, capsys
):
    published = isolated_dlt / "warehouse.duckdb"
    assert run("run", "solarknock") == 0
    before = count_now(published)
    dbeaver = child(BI_TOOL, str(published), "rw")  # DBeaver's default: read-write
    try:
        assert dbeaver.stdout.readline().strip() == "held"
        for how in ("connect_args", "url"):
            with pytest.raises(ConnectionRefusedError, match="lock"):
                sqlalchemy_count(published, how)
        with pytest.raises(duckdb.IOException, match="lock"):
            count_now(published)
        capsys.readouterr()
        run("status", "solarknock")
        assert "warehouse not readable now" in capsys.readouterr().out
        sk_sandbox.insert("knocks", n=4)
        assert run("run", "solarknock") == 0  # publishes a new file in the old one's place
        after = sqlalchemy_count(published, "connect_args")  # new connections get in again
        assert after == before + 4 == count_now(published)
        assert ask(dbeaver, COUNT) == f"[({before},)]"  # the holder reads its old snapshot
    finally:
        stop(dbeaver)
