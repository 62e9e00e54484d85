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


def expected_counts(log, times):
    """Per (meter, day): intervals (readings that end one, each once), exported intervals,
    imported intervals, from the sandbox's true counters."""
    by_counter = defaultdict(list)
    for reading in log:
        if reading.served > 0:
            by_counter[(reading.meter, reading.field)].append(reading)
    ends: dict[tuple[str, object], set[int]] = defaultdict(set)
    per_field: dict[tuple[str, object, str], int] = defaultdict(int)
    for (meter, field), readings in by_counter.items():
        for before, after in zip(readings, readings[1:], strict=False):
            if before.epoch != after.epoch:
                continue
            day = times[after.tick - 1].date()
            ends[(meter, day)].add(after.tick)
            per_field[(meter, day, field)] += 1
    return {
        key: (
            len(ticks),
            per_field[(*key, "energy_exported")],
            per_field[(*key, "energy_imported")],
        )
        for key, ticks in ends.items()
    }


def test_daily_energy_matches_the_counters(make_gateway, warehouse, query, monkeypatch):
    import sources.tesla
    from pipelines.poll import poll_source
    from pipelines.registry import get

    gw = make_gateway(variant="21.44", zero_at=ZERO_AT, reset_at=RESET_AT)
    times = [START + i * STEP for i in range(POLLS)]
    gw.meters.clock = lambda: times[gw.meters.tick - 1]  # the gateway's clock agrees
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


def test_days_follow_the_gateways_clock_not_the_poll_clock(make_gateway, run, query):
    """Separate cron runs seconds apart (solarsync's real clock) while the gateway's meters
    report times across a UTC and a local midnight: each interval counts for the day of the
    meter's last_communication_time, so energy per day matches the gateway's counters."""
    gw = make_gateway(variant="21.44", zero_at=ZERO_AT, reset_at=RESET_AT)
    times = [START + i * STEP for i in range(POLLS)]
    gw.meters.clock = lambda: times[gw.meters.tick - 1]
    for _ in range(POLLS):
        result = run()
        assert result.ok, result.error
    assert len(query("select distinct cast(polled_at as date) from tesla.meter_readings")) <= 2

    expected, intervals = expected_energy(gw.meters.log, times)
    assert len({day for _, day in expected}) == 3
    daily = query(
        "select meter, day, exported_wh, imported_wh from analytics.tesla_energy_daily "
        "where gateway = 'home'"
    )
    assert {(m, d): (e, i) for m, d, e, i in daily} == expected
    assert query("select count(*) from analytics.tesla_energy_intervals") == [(intervals,)]
    local, _ = expected_energy(gw.meters.log, times, ZoneInfo("America/Los_Angeles"))
    rows = query(
        "select meter, day, exported_wh, imported_wh, exported_kwh from "
        "analytics.tesla_energy_daily_local"
    )
    assert {(m, d): (e, i) for m, d, e, i, _ in rows} == local
    assert all(kwh == e / 1000 for _, _, e, _, kwh in rows)


def _warehouse_with(tmp_path, readings, zones=()):
    """A warehouse holding only the tables the views read, then the views applied."""
    import duckdb

    from pipelines.destinations.duckdb.views import apply_views

    db = tmp_path / "views.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create schema tesla")
    con.execute(
        "create table tesla.meter_readings (gateway text, meter text, polled_at timestamptz, "
        "last_communication_time timestamptz, energy_exported double, energy_imported double)"
    )
    con.execute(
        "create table tesla.gateway_status (gateway text, polled_at timestamptz, "
        "gateway_state text, timezone text, _dlt_load_id text, _dlt_id text)"
    )
    con.executemany("insert into tesla.meter_readings values (?, ?, ?, ?, ?, ?)", readings)
    for zone in zones:
        con.execute("insert into tesla.gateway_status values (?, ?, 'ok', ?, 'l', 'i')", zone)
    con.close()
    created = apply_views(db, "tesla").views
    assert "analytics.tesla_energy_daily_local" in created
    con = duckdb.connect(str(db), read_only=True)
    return con


def test_a_frozen_meter_clock_falls_back_to_the_poll_time(tmp_path):
    """A gateway (or a replayed capture) whose last_communication_time never moves: the
    readings are dated by polled_at, not all piled on that one stale instant."""
    stale = datetime(2021, 5, 21, 23, 51, tzinfo=UTC)
    polls = [datetime(2026, 3, 1, 22, 0, tzinfo=UTC) + i * timedelta(hours=1) for i in range(4)]
    readings = [("gw", "solar", at, stale, 1000.0 + 10 * i, 5.0) for i, at in enumerate(polls)]
    con = _warehouse_with(tmp_path, readings)
    rows = con.execute(
        "select day, exported_wh, imported_wh from analytics.tesla_energy_daily order by day"
    ).fetchall()
    assert rows == [(polls[1].date(), 10.0, 0.0), (polls[2].date(), 20.0, 0.0)]
    # no time zone known (a firmware without site_info): local days are UTC days
    local = con.execute(
        "select timezone, sum(exported_wh) from analytics.tesla_energy_daily_local group by 1"
    )
    assert local.fetchall() == [("UTC", 30.0)]


def test_local_days_use_the_latest_zone_the_gateway_reported(tmp_path):
    at = datetime(2026, 3, 1, 6, 30, tzinfo=UTC)  # + 1 h: 2026-02-28 23:30 in Los Angeles
    readings = [
        ("gw", "site", at, at, 100.0, 0.0),
        ("gw", "site", at + timedelta(hours=1), at + timedelta(hours=1), 150.0, 0.0),
    ]
    zones = [("gw", at, "Europe/Berlin"), ("gw", at + timedelta(hours=1), "America/Los_Angeles")]
    con = _warehouse_with(tmp_path, readings, zones)
    rows = con.execute(
        "select day, timezone, exported_wh from analytics.tesla_energy_daily_local"
    ).fetchall()
    assert rows == [(datetime(2026, 2, 28).date(), "America/Los_Angeles", 50.0)]


def test_local_view_exists_for_a_firmware_without_site_info(make_gateway, run, query):
    """The 2018 firmware has no /api/site_info: analytics.tesla_energy_daily_local is still
    created (UTC days) instead of being skipped for a missing table."""
    make_gateway(variant="2018")
    for _ in range(3):
        result = run()
        assert result.ok, result.error
        assert "analytics.tesla_energy_daily_local" in result.views
    rows = query("select distinct timezone from analytics.tesla_energy_daily_local")
    assert rows == [("UTC",)]
    assert query("select count(*) from tesla.gateway_status where timezone is null") == [(3,)]


def test_a_skewed_gateway_clock_never_runs_an_interval_backwards(
    make_gateway, run, query, monkeypatch
):
    """The gateway's clock 20 h behind solarsync's (more than the 8 h between polls): both
    ends of every interval are dated by the meter's clock, none runs backwards, and the daily
    counts match the readings (each reading that ends an interval counted once)."""
    import sources.tesla

    gw = make_gateway(variant="21.44", zero_at=ZERO_AT, reset_at=RESET_AT)
    times = [START + i * STEP for i in range(POLLS)]
    skew = timedelta(hours=-20)
    meter_times = [t + skew for t in times]
    gw.meters.clock = lambda: meter_times[gw.meters.tick - 1]
    stamps = iter(times)
    monkeypatch.setattr(sources.tesla, "utcnow", lambda: next(stamps))
    for _ in range(POLLS):
        result = run()
        assert result.ok, result.error

    rows = query(
        "select interval_start, interval_end, clock, polled_from, polled_to "
        "from analytics.tesla_energy_intervals"
    )
    expected, intervals = expected_energy(gw.meters.log, meter_times)
    assert len(rows) == intervals
    assert [r for r in rows if not r[0] < r[1]] == []  # none runs backwards
    assert {(start - pf, end - pt, clock) for start, end, clock, pf, pt in rows} == {
        (skew, skew, "meter")
    }
    daily = query(
        "select meter, day, exported_wh, imported_wh, intervals, exported_intervals, "
        "imported_intervals from analytics.tesla_energy_daily"
    )
    assert {(m, d): (e, i) for m, d, e, i, *_ in daily} == expected
    counts = expected_counts(gw.meters.log, meter_times)
    assert {(m, d): tuple(c) for m, d, _, _, *c in daily} == counts
    # the load meter never exports: its intervals are its imported ones, not half of a double
    assert {c[0] == c[2] and c[1] == 0 for (m, _), c in counts.items() if m == "load"} == {True}
    local = query(
        "select meter, day, intervals, exported_intervals, imported_intervals "
        "from analytics.tesla_energy_daily_local"
    )
    assert sum(r[2] for r in local) == sum(c[0] for c in counts.values())
    assert sum(r[3] + r[4] for r in local) == intervals


def test_an_interval_is_dated_by_one_clock_when_the_meter_clock_starts_moving(tmp_path):
    """A meter clock frozen (far in the past) for two readings, then advancing: the first
    interval is dated by the polls, the second by the meter's clock; neither mixes the two."""
    stale = datetime(2021, 5, 21, 23, 51, tzinfo=UTC)
    polls = [datetime(2026, 3, 1, 22, 0, tzinfo=UTC) + i * timedelta(hours=1) for i in range(3)]
    meter = [stale, stale, stale + timedelta(hours=1)]
    readings = [
        ("gw", "solar", at, meter[i], 1000.0 + 10 * i, 5.0 + i) for i, at in enumerate(polls)
    ]
    con = _warehouse_with(tmp_path, readings)
    rows = con.execute(
        "select direction, interval_start, interval_end, clock, energy_wh "
        "from analytics.tesla_energy_intervals order by direction, polled_to"
    ).fetchall()
    assert rows == [
        ("exported", polls[0], polls[1], "poll", 10.0),
        ("exported", meter[1], meter[2], "meter", 10.0),
        ("imported", polls[0], polls[1], "poll", 1.0),
        ("imported", meter[1], meter[2], "meter", 1.0),
    ]
    daily = con.execute(
        "select day, intervals, exported_intervals, imported_intervals "
        "from analytics.tesla_energy_daily order by day"
    ).fetchall()
    assert daily == [(meter[2].date(), 1, 1, 1), (polls[1].date(), 1, 1, 1)]
