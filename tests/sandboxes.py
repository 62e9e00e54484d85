"""The HEAT, SolarAssistant and Tesla sandboxes together, with solarsync pointed at them through
the documented env vars (tests that run every source; SolarKnock's is the ``sk_sandbox``
fixture)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@contextlib.contextmanager
def heat_sa_tesla(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    seed: int,
    heat_key: str,
    sa_token: str,
    tesla_password: str,
    heat_sites: int,
    sa_sites: int,
    org_users: int,
    gateway_options: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """``{"heat": ..., "solarassistant": ..., "tesla": ...}``, running until the block ends."""
    from sandbox.heat import HeatSandbox
    from sandbox.solarassistant import SolarAssistantSandbox
    from sandbox.tesla import TeslaGatewaySandbox
    from sources.solarassistant import reset_caches
    from sources.tesla import reset_clients

    with (
        HeatSandbox(seed=seed, api_key=heat_key, sites=heat_sites) as heat,
        SolarAssistantSandbox(
            seed=seed,
            api_token=sa_token,
            sites=sa_sites,
            org_users=org_users,
            cert_dir=str(tmp_path / "sa"),
        ) as sa,
    ):
        gateway = TeslaGatewaySandbox(
            tmp_path / "gw", password=tesla_password, **(gateway_options or {})
        ).start()
        env = {
            "SOURCES__HEAT__BASE_URL": heat.base_url,
            "SOURCES__HEAT__API_KEY": heat_key,
            "SOURCES__SOLARASSISTANT__BASE_URL": sa.base_url,
            "SOURCES__SOLARASSISTANT__API_TOKEN": sa_token,
            "REQUESTS_CA_BUNDLE": sa.ca_bundle,
            "SOURCES__TESLA__HOST": gateway.host,
            "SOURCES__TESLA__PASSWORD": tesla_password,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        reset_caches()
        reset_clients()
        try:
            yield {"heat": heat, "solarassistant": sa, "tesla": gateway}
        finally:
            gateway.stop()
            reset_caches()
            reset_clients()
