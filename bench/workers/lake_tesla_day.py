"""A simulated day of 5-second Tesla polls loaded into the Delta lake, in batches as
``solarsync poll tesla --every 5s --batch <B>`` loads them; then ``lake optimize``.

The rows are synthetic (4 meters, battery, grid, gateway status, sitemaster, site info and
one Powerwall per poll) with the Tesla source's keys and write dispositions, adapted by
``LakeWarehouse`` as the real source is (Delta, day partitions). Prints one JSON line: file
counts of every table before and after compaction and vacuum, and timings.

    python -m bench.workers.lake_tesla_day LAKE_DIR [--batch-minutes 5] [--hours 24]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
    out = {}
    for table in lake.tables("tesla"):
        delta = lake.delta_table("tesla", table)
        root = Path(lake.bucket_url) / "tesla" / table
        out[table] = {
            "current": len(delta.file_uris()),
            "on_disk": sum(1 for _ in root.rglob("*.parquet")),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("lake", type=Path)
    parser.add_argument("--batch-minutes", type=float, default=5)
    parser.add_argument("--hours", type=float, default=24)
    args = parser.parse_args()
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    from pipelines.destinations.lake import LakeWarehouse
    from pipelines.destinations.lake.maintenance import optimize

    lake = LakeWarehouse(args.lake, optimize_every=0, retention_hours=0)
    lake.prepare()
    pipeline = dlt.pipeline("bench_lake_tesla", destination=lake.dlt_destination(),
                            dataset_name="tesla")  # fmt: skip
    start = datetime(2026, 6, 1, tzinfo=UTC)
    total = int(args.hours * 3600 / EVERY_S)
    per_batch = int(args.batch_minutes * 60 / EVERY_S)
    loads, started = 0, time.perf_counter()
    for first in range(0, total, per_batch):
        polls = [
            start + timedelta(seconds=EVERY_S * i)
            for i in range(first, min(total, first + per_batch))
        ]
        pipeline.run(
            lake.adapt(tesla_like(polls)), loader_file_format="parquet"
        ).raise_on_failed_jobs()
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
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
