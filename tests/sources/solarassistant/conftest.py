"""SolarAssistant fixtures: a sandbox account with the pipeline pointed at it through the
documented settings (env vars), and the proxy's self-signed certificate trusted through
``REQUESTS_CA_BUNDLE`` (verification stays on)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.solarassistant import SolarAssistantSandbox
from sources.solarassistant import reset_caches

SA_TOKEN = "sa_TESTAPITOKEN_7f3c9d"
ENV = "SOURCES__SOLARASSISTANT__"


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Site tokens and clients live in process memory: no test sees another's."""
    reset_caches()
    yield
    reset_caches()


def point_at(sb: SolarAssistantSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV + "API_TOKEN", SA_TOKEN)
    monkeypatch.setenv(ENV + "BASE_URL", sb.base_url)
    monkeypatch.setenv(ENV + "PAGE_SIZE", "20")
    monkeypatch.setenv(ENV + "MAX_ATTEMPTS", "2")
    monkeypatch.setenv(ENV + "BACKOFF_FACTOR", "0.01")
    monkeypatch.setenv(ENV + "PROXY_TIMEOUT", "0.5")
    monkeypatch.setenv(ENV + "PROXY_BACKOFF_FACTOR", "0.01")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sb.ca_bundle)


@pytest.fixture
def sa_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SolarAssistantSandbox]:
    """Six sites, the last one offline (502), 45 organization users, ``limit`` capped at 50."""
    with SolarAssistantSandbox(
        seed=3,
        api_token=SA_TOKEN,
        sites=6,
        org_users=45,
        offline_sleep=1.0,
        cert_dir=str(tmp_path / "cert"),
    ) as sb:
        sb.set_offline(sb.sites[-1].id, "502")
        point_at(sb, monkeypatch)
        yield sb


@pytest.fixture
def warehouse(isolated_dlt: Path) -> Path:
    return isolated_dlt / "warehouse.duckdb"
