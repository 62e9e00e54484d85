"""Baseline A: what a dlt user configures instead of solarsync.

dlt's generic ``rest_api`` source with its defaults for the same endpoints: the cursor
paginator on ``pagination.next_cursor``, a ``since`` incremental on ``updated_at``, merge on the
key, and the destination's default loader file format (``insert_values`` for DuckDB).
Only the page size (``limit=1000``, the vendor's recipe) and ``include_deleted`` are set, so it
reads exactly the pages solarsync reads.

    python -m bench.workers.baseline_rest_api BASE_URL DUCKDB_PATH   (key in BENCH_API_KEY)
"""

from __future__ import annotations

import os
import sys


def main(base_url: str, duckdb_path: str) -> int:
    import dlt
    from dlt.sources.rest_api import rest_api_source

    keys = {
        "users": "id",
        "knocks": "id",
        "leads": "id",
        "appointments": "id",
        "daily-stats": ["user_id", "date"],
        "app-opens": ["user_id", "date"],
        "counties": "county_fips",
    }
    resources: list[dict] = [
        {
            "name": "org",
            "write_disposition": "replace",
            "primary_key": "id",
            "endpoint": {"path": "org", "data_selector": "data", "paginator": "single_page"},
        }
    ]
    for path, key in keys.items():
        resources.append(
            {
                "name": path.replace("-", "_"),
                "primary_key": key,
                "write_disposition": "merge",
                "endpoint": {
                    "path": path,
                    "data_selector": "data",
                    "params": {"limit": 1000, "include_deleted": "true"},
                    "incremental": {
                        "start_param": "since",
                        "cursor_path": "updated_at",
                        "initial_value": "1970-01-01T00:00:00.000Z",
                    },
                },
            }
        )
    source = rest_api_source(
        {
            "client": {
                "base_url": base_url,
                "auth": {"type": "bearer", "token": os.environ["BENCH_API_KEY"]},
                "paginator": {
                    "type": "cursor",
                    "cursor_path": "pagination.next_cursor",
                    "cursor_param": "cursor",
                },
            },
            "resources": resources,
        },
        name="solarknock",
    )
    pipeline = dlt.pipeline(
        pipeline_name="bench_rest_api",
        destination=dlt.destinations.duckdb(credentials=duckdb_path),
        dataset_name="solarknock",
    )
    info = pipeline.run(source)
    info.raise_on_failed_jobs()
    counts = pipeline.last_trace.last_normalize_info.row_counts
    print({k: v for k, v in counts.items() if not k.startswith("_dlt")})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
