"""A simulated day of 5-second Tesla polls loaded into the Delta lake, in batches as
``solarsync poll tesla --every 5s --batch <B>`` loads them; then ``lake optimize``.

The rows are synthetic (4 meters, battery, grid, gateway status, sitemaster, site info and
one Powerwall per poll) with the Tesla source's keys and write dispositions, adapted by
``LakeWarehouse`` as the real source is (Delta, day partitions). Prints one JSON line: file
counts of every table before and after compaction and vacuum, and timings: the wall time of
every batch (how the cost of a batch grows with the table's history of small commits) and,
with ``--optimize-every N``, compaction after every N batches inside the loop, as ``poll`` does
(``[solarsync.lake] optimize_every``).

    python -m bench.workers.lake_tesla_day LAKE [--batch-minutes 5] [--hours 24]
        [--optimize-every 0]

LAKE is a directory or a bucket URL (``s3://bucket/path``, credentials from dlt's
``DESTINATION__FILESYSTEM__CREDENTIALS__*``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta

import dlt

EVERY_S = 5
METERS = ("site", "battery", "load", "solar")


def tesla_like(polls: list[datetime]):
    per_poll = {"write_disposition": "merge", "primary_key": ["gateway", "polled_at"]}
    ts = {"polled_at": {"data_type": "timestamp", "nullable": False}}

    def rows(make):
        def gen():
            for i, at in enumerate(polls):
                yield from make(i, at)

        return gen

    meter = rows(
        lambda i, at: [
            {"gateway": "home", "meter": m, "polled_at": at, "instant_power": 100.0 + i,
             "energy_exported": 1e6 + i, "energy_imported": 2e6 + i}
            for m in METERS
        ]
    )  # fmt: skip

    @dlt.source(name="tesla", max_table_nesting=0)
    def source():
        return [
            dlt.resource(meter, name="meter_readings", write_disposition="merge",
                         primary_key=["gateway", "meter", "polled_at"], columns=ts),
            dlt.resource(rows(lambda i, at: [{"gateway": "home", "polled_at": at, "percentage": 50.0}]),
                         name="battery_soe", columns=ts, **per_poll),
            dlt.resource(rows(lambda i, at: [{"gateway": "home", "polled_at": at, "grid_status": "SystemGridConnected"}]),
                         name="grid_status", columns=ts, **per_poll),
            dlt.resource(rows(lambda i, at: [{"gateway": "home", "polled_at": at, "gateway_state": "ok"}]),
                         name="gateway_status", columns=ts, **per_poll),
            dlt.resource(rows(lambda i, at: [{"gateway": "home", "polled_at": at, "running": True}]),
                         name="sitemaster", columns=ts, **per_poll),
            dlt.resource(rows(lambda i, at: [{"gateway": "home", "polled_at": at, "timezone": "UTC"}]),
                         name="site_info", write_disposition="merge", primary_key="gateway",
                         columns={"polled_at": {"dedup_sort": "desc", "data_type": "timestamp"}}),
            dlt.resource(rows(lambda i, at: [{"gateway": "home", "position": 0, "polled_at": at}]),
                         name="powerwalls", write_disposition="merge",
                         primary_key=["gateway", "position"], merge_key="gateway",
                         columns={"polled_at": {"dedup_sort": "desc", "data_type": "timestamp"}}),
        ]  # fmt: skip

    return source()


def files(lake) -> dict[str, dict[str, int]]:
    fs, _ = lake.fs()
    out = {}
    for table in lake.tables("tesla"):
        delta = lake.delta_table("tesla", table)
        url = lake.table_url("tesla", table)
        out[table] = {
            "current": len(delta.file_uris()),
            "on_disk": sum(1 for f in fs.find(url) if f.endswith(".parquet")),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("lake")
    parser.add_argument("--batch-minutes", type=float, default=5)
    parser.add_argument("--hours", type=float, default=24)
    parser.add_argument("--optimize-every", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    from pipelines.destinations.lake import LakeWarehouse
    from pipelines.destinations.lake.maintenance import maybe_optimize, optimize

    lake = LakeWarehouse(args.lake, optimize_every=args.optimize_every, retention_hours=0)
    lake.prepare()
    pipeline = dlt.pipeline("bench_lake_tesla", destination=lake.dlt_destination(),
                            dataset_name="tesla")  # fmt: skip
    start = datetime(2026, 6, 1, tzinfo=UTC)
    total = int(args.hours * 3600 / EVERY_S)
    per_batch = int(args.batch_minutes * 60 / EVERY_S)
    loads, started, batch_s = 0, time.perf_counter(), []
    for first in range(0, total, per_batch):
        batch_started = time.perf_counter()
        polls = [
            start + timedelta(seconds=EVERY_S * i)
            for i in range(first, min(total, first + per_batch))
        ]
        pipeline.run(
            lake.adapt(tesla_like(polls)), loader_file_format="parquet"
        ).raise_on_failed_jobs()
        maybe_optimize(lake, pipeline, "tesla")
        batch_s.append(round(time.perf_counter() - batch_started, 3))
        loads += 1
    load_s = time.perf_counter() - started
    lake.publish(pipeline, "tesla", views="tesla.sql")
    before = files(lake)
    started = time.perf_counter()
    optimize(lake, ["tesla"], vacuum=True)
    optimize_s = time.perf_counter() - started
    after = files(lake)
    rows = lake.delta_table("tesla", "meter_readings").to_pyarrow_table().num_rows
    print(json.dumps({
        "polls": total, "loads": loads, "batch_minutes": args.batch_minutes,
        "hours": args.hours, "meter_rows": rows, "load_s": round(load_s, 1),
        "optimize_s": round(optimize_s, 2), "files_before": before, "files_after": after,
        "optimize_every": args.optimize_every, "batch_s": batch_s,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
