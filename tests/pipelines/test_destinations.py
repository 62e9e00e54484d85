"""The destination seam: which warehouse the command line and configuration name."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.destinations import as_warehouse, resolve
from pipelines.destinations.duckdb import DuckDBWarehouse
from pipelines.settings import destination_kind as configured_kind
from sources.common import ConfigurationError


def test_duckdb_is_the_default_and_follows_the_configured_file(tmp_path, monkeypatch):
    monkeypatch.delenv("SOLARSYNC__DESTINATION", raising=False)
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", f"duckdb:///{tmp_path}/bi.duckdb")
    warehouse = resolve()
    assert isinstance(warehouse, DuckDBWarehouse)
    assert warehouse.path == Path(f"{tmp_path}/bi.duckdb")
    assert resolve(None, tmp_path / "x.duckdb").path == tmp_path / "x.duckdb"


def test_the_configured_destination_is_used_and_checked(monkeypatch):
    monkeypatch.setenv("SOLARSYNC__DESTINATION", "postgres")
    assert configured_kind() == "postgres"
    assert configured_kind("duckdb") == "duckdb"  # the command line wins
    monkeypatch.setenv("SOLARSYNC__DESTINATION", "oracle")
    with pytest.raises(ConfigurationError, match="unknown destination 'oracle'"):
        configured_kind()


def test_warehouse_path_only_goes_with_duckdb(tmp_path):
    with pytest.raises(ConfigurationError, match="--warehouse names a DuckDB file"):
        resolve("postgres", tmp_path / "x.duckdb")


def test_paths_are_duckdb_warehouses(tmp_path):
    warehouse = as_warehouse(tmp_path / "w.duckdb")
    assert isinstance(warehouse, DuckDBWarehouse)
    assert as_warehouse(warehouse) is warehouse
    assert not warehouse.exists()
