"""A poll in which no site could be read because of an error on our side (TLS, authorization,
configuration) is a failed poll: ``run`` and ``poll`` exit 1, and every site's outcome is still
loaded in ``metric_polls``. Offline sites stay normal."""

from __future__ import annotations

import pytest

from pipelines.cli import main
from tests.sources.solarassistant.conftest import ENV
from tests.sources.solarassistant.warehouse_check import latest_poll, rows


def run() -> int:
    return main(["--no-progress", "run", "solarassistant"])


@pytest.mark.parametrize(
    ("scenario", "exit_code", "statuses"),
    [
        ("every site offline", 0, {"offline"}),
        ("one site answers, the others fail with an error", 0, {"ok", "error"}),
        ("errors and offline sites, none answers", 1, {"offline", "error"}),
        ("every site's authorization refused", 1, {"error"}),
    ],
)
def test_exit_code_says_whether_any_site_could_be_read(
    sa_sandbox, warehouse, capsys, scenario, exit_code, statuses
):
    sites = [s.id for s in sa_sandbox.sites]
    sa_sandbox.set_offline(sites[-1], None)
    if scenario == "every site offline":
        for site in sites:
            sa_sandbox.set_offline(site, "502")
    elif scenario == "one site answers, the others fail with an error":
        for site in sites[1:]:
            sa_sandbox.fail("cloud", rf"^/api/v1/sites/{site}/authorize$", 403, times=-1)
    elif scenario == "errors and offline sites, none answers":
        for site in sites[:3]:
            sa_sandbox.set_offline(site, "504")
        for site in sites[3:]:
            sa_sandbox.fail("cloud", rf"^/api/v1/sites/{site}/authorize$", 403, times=-1)
    else:
        sa_sandbox.fail("cloud", r"^/api/v1/sites/\d+/authorize$", 403, times=-1)
    assert run() == exit_code
    out = capsys.readouterr().out
    polls = latest_poll(warehouse)
    assert [r["site_id"] for r in polls] == sorted(sites)  # every outcome loaded
    assert {r["status"] for r in polls} == statuses
    if exit_code:
        assert "solarassistant: FAILED" in out
        assert "no site could be read" in out and "[403]" in out
    else:
        assert "solarassistant: ok" in out


def test_a_sites_setting_that_names_no_site_fails_the_run(
    sa_sandbox, warehouse, monkeypatch, capsys
):
    monkeypatch.setenv(ENV + "SITES", "no-such-site, 1")
    assert run() == 1
    out = capsys.readouterr().out
    assert "solarassistant: FAILED" in out
    assert "sources.solarassistant.sites names ['no-such-site', '1']" in out
    assert sa_sandbox.count("proxy") == 0
    # the cloud tables are loaded all the same
    assert rows(warehouse, "select count(*) n from solarassistant.sites") == [
        {"n": len(sa_sandbox.sites)}
    ]


def test_poll_counts_every_poll_no_site_could_be_read_as_failed(sa_sandbox, warehouse, monkeypatch):
    """The first poll runs through dlt, the later ones outside it (journal): both count, and
    all their rows are loaded."""
    import threading

    import sources.solarassistant as source
    from pipelines.poll import poll_source
    from pipelines.registry import get

    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    stop, taken, now = threading.Event(), [], source._now

    def third_poll_is_the_last():
        taken.append(1)
        if len(taken) == 3:
            stop.set()
        return now()

    monkeypatch.setattr(source, "_now", third_poll_is_the_last)
    result = poll_source(
        get("solarassistant"), warehouse, every=0.01, duration=None, batch=3600, stop=stop
    )
    assert (result.polls, result.failed_polls, result.ok, result.exit_code) == (3, 3, False, 1)
    assert len(result.poll_errors) == 3
    assert all("no site could be read: 6 of 6 failed" in e for e in result.poll_errors)
    assert all("REQUESTS_CA_BUNDLE" in e for e in result.poll_errors)
    polls = rows(
        warehouse,
        "select polled_at, count(*) n, count(*) filter (where status = 'error') errors "
        "from solarassistant.metric_polls group by 1 order by 1",
    )
    assert [(p["n"], p["errors"]) for p in polls] == [(6, 6)] * 3
