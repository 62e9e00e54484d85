"""Tesla fixtures: a sandbox gateway (HTTPS, self-signed) with the pipeline pointed at it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

PASSWORD = "Pw-Sandbox-7731"


@pytest.fixture(autouse=True)
def fresh_process() -> Iterator[None]:
    """Every test starts like a new process: no session or pinned client in memory."""
    import sources.tesla

    sources.tesla.reset_clients()
    yield
    sources.tesla.reset_clients()


@pytest.fixture
def make_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Start sandbox gateways; the first one started is the configured single gateway."""
    from sandbox.tesla import TeslaGatewaySandbox

    started: list[TeslaGatewaySandbox] = []

    def make(configure: bool = True, **kwargs: Any) -> TeslaGatewaySandbox:
        kwargs.setdefault("password", PASSWORD)
        gw = TeslaGatewaySandbox(tmp_path / f"gw{len(started)}", **kwargs).start()
        started.append(gw)
        if configure:
            monkeypatch.setenv("SOURCES__TESLA__HOST", gw.host)
            monkeypatch.setenv("SOURCES__TESLA__PASSWORD", kwargs["password"])
            monkeypatch.setenv("SOURCES__TESLA__NAME", "home")
        monkeypatch.setenv("SOURCES__TESLA__BACKOFF_FACTOR", "0.01")
        return gw

    yield make
    for gw in started:
        gw.stop()


@pytest.fixture
def gateway(make_gateway):
    return make_gateway()


@pytest.fixture
def warehouse(isolated_dlt: Path) -> Path:
    return isolated_dlt / "warehouse.duckdb"


@pytest.fixture
def run(warehouse: Path) -> Callable[..., Any]:
    """One ``solarsync run tesla`` (in this process; ``new_process`` drops in-memory sessions)."""
    from pipelines.registry import get
    from pipelines.sync import run_source

    def do(new_process: bool = True):
        import sources.tesla

        if new_process:
            sources.tesla.reset_clients()
        return run_source(get("tesla"), warehouse)

    return do


@pytest.fixture
def query(warehouse: Path) -> Callable[[str], list[tuple]]:
    def do(sql: str) -> list[tuple]:
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    return do


def store_files(isolated_dlt: Path) -> list[Path]:
    return sorted((isolated_dlt / "dlt" / "solarsync" / "tesla").glob("*.json"))


def read_store(isolated_dlt: Path) -> dict[str, Any]:
    (path,) = store_files(isolated_dlt)
    return json.loads(path.read_text())
