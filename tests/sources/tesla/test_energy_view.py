"""The energy views against the sandbox's true counters: zero readings (a glitch) skipped,
counter resets dropped, intervals summed per day, exactly."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

ZERO_AT = {
    3: [("solar", "energy_exported"), ("site", "energy_imported")],
    4: [("solar", "energy_exported")],  # two glitches in a row
    7: [("battery", "energy_exported")],
}
RESET_AT = {5: ["site"]}
START = datetime(2026, 3, 1, 1, 30, tzinfo=UTC)
STEP = timedelta(hours=8)  # 9 polls over three UTC days
POLLS = 9


def expected_energy(log, times, zone=None):
    """Per (meter, day): exported and imported Wh from the sandbox's true counters."""
    by_counter = defaultdict(list)
    for reading in log:
        if reading.served > 0:  # what a usable reading is
            by_counter[(reading.meter, reading.field)].append(reading)
    out: dict[tuple[str, object], dict[str, float]] = defaultdict(
        lambda: {"energy_exported": 0.0, "energy_imported": 0.0}
    )
    intervals = 0
    for (meter, field), readings in by_counter.items():
        for before, after in zip(readings, readings[1:], strict=False):
            if before.epoch != after.epoch:
                continue  # a reset in between: the energy is unknown
            at = times[after.tick - 1]
            day = (at.astimezone(zone) if zone else at).date()
            out[(meter, day)][field] += after.true - before.true
            intervals += 1
    return {k: (v["energy_exported"], v["energy_imported"]) for k, v in out.items()}, intervals


def test_daily_energy_matches_the_counters(make_gateway, warehouse, query, monkeypatch):
    import sources.tesla
    from pipelines.poll import poll_source
    from pipelines.registry import get

    gw = make_gateway(variant="21.44", zero_at=ZERO_AT, reset_at=RESET_AT)
    times = [START + i * STEP for i in range(POLLS)]
    stamps = iter(times)
    monkeypatch.setattr(sources.tesla, "utcnow", lambda: next(stamps))
    ticks = iter(range(100_000))
    result = poll_source(
        get("tesla"), warehouse, every=0.1, duration=100.0, batch=1000.0,
        clock=lambda: next(ticks) / 10, stop=_StopAfter(sources.tesla, POLLS),
    )  # fmt: skip
    assert result.ok, result.error
    assert result.polls == POLLS and gw.requests_to("/api/meters/aggregates") == POLLS
    assert len(gw.meters.log) == POLLS * 4 * 2

    expected, intervals = expected_energy(gw.meters.log, times)
    daily = query(
        "select meter, day, exported_wh, imported_wh from analytics.tesla_energy_daily "
        "where gateway = 'home'"
    )
    assert {(m, d): (e, i) for m, d, e, i in daily} == expected
    assert query("select count(*) from analytics.tesla_energy_intervals") == [(intervals,)]
    assert query("select min(energy_wh) >= 0 from analytics.tesla_energy_intervals") == [(True,)]

    zone = ZoneInfo("America/Los_Angeles")  # the 21.44 capture's site_info.timezone
    local, _ = expected_energy(gw.meters.log, times, zone)
    rows = query(
        "select meter, day, exported_wh, imported_wh, timezone "
        "from analytics.tesla_energy_daily_local"
    )
    assert {(m, d): (e, i) for m, d, e, i, _ in rows} == local
    assert {r[4] for r in rows} == {"America/Los_Angeles"}
    assert local != expected  # the day boundaries differ: the time zone is applied


class _StopAfter:
    """A ``threading.Event`` stand-in for poll_source: set once ``n`` snapshots were taken."""

    def __init__(self, module, n: int) -> None:
        self.module, self.n, self.taken = module, n, 0
        original = module.utcnow

        def counting():
            self.taken += 1
            return original()

        module.utcnow = counting

    def is_set(self) -> bool:
        return self.taken >= self.n

    def wait(self, timeout: float | None = None) -> bool:
        return self.is_set()

    def set(self) -> None:
        self.taken = self.n
