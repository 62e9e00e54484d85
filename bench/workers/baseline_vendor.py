"""Baseline B: the vendor's own recipe.

"Page every endpoint with ``limit=1000`` until ``next_cursor`` is null ... upsert each row":
``requests`` + a loop that upserts every row of a page into DuckDB with ``INSERT OR REPLACE``
(one ``executemany`` per page) into one table per endpoint keyed like the API (PRIMARY KEY),
nested lists and objects stored as JSON text, every other value as the API sends it
(timestamps stay ISO text).

Upserting row by row runs at a few hundred rows/s, so the harness gives it a time budget
(``BENCH_BUDGET_S``): it stops after the page that crosses the budget and prints how far it got.

    python -m bench.workers.baseline_vendor BASE_URL DUCKDB_PATH   (key in BENCH_API_KEY)
"""

from __future__ import annotations

import json
import os
import sys
import time

import duckdb
import requests

from sandbox.solarknock.data import KEY_FIELDS, LIST_ENDPOINTS

# the vendor recipe upserts on each endpoint's natural key
KEYS = {endpoint: KEY_FIELDS[endpoint] for endpoint in LIST_ENDPOINTS}


def sql_type(value: object) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, list | dict):
        return "JSON"
    return "VARCHAR"


def main(base_url: str, duckdb_path: str) -> int:
    started = time.perf_counter()
    budget = float(os.environ.get("BENCH_BUDGET_S") or "inf")
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + os.environ["BENCH_API_KEY"]
    con = duckdb.connect(duckdb_path)
    rows_done = requests_made = 0
    complete = True
    for endpoint, key in KEYS.items():
        table = endpoint.replace("-", "_")
        columns: list[str] = []
        cursor = None
        while True:
            if time.perf_counter() - started > budget:
                complete = False
                break
            params: dict[str, object] = {"limit": 1000, "include_deleted": "true"}
            if cursor:
                params["cursor"] = cursor
            response = session.get(f"{base_url}/{endpoint}", params=params, timeout=60)
            requests_made += 1
            response.raise_for_status()
            body = response.json()
            rows = body["data"]
            if rows:
                new = list(dict.fromkeys(c for r in rows for c in r if c not in columns))
                types = {
                    c: sql_type(next((r[c] for r in rows if r.get(c) is not None), None))
                    for c in new
                }
                if not columns:  # first page: create the table, keyed like the API
                    defs = ", ".join(f'"{c}" {types[c]}' for c in new)
                    pk = ", ".join(f'"{k}"' for k in key)
                    con.execute(f'CREATE TABLE "{table}" ({defs}, PRIMARY KEY ({pk}))')
                else:
                    for c in new:
                        con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{c}" {types[c]}')
                columns.extend(new)
                placeholders = ", ".join("?" for _ in columns)
                names = ", ".join(f'"{c}"' for c in columns)
                con.executemany(
                    f'INSERT OR REPLACE INTO "{table}" ({names}) VALUES ({placeholders})',
                    [
                        [
                            json.dumps(v) if isinstance(v, list | dict) else v
                            for v in (r.get(c) for c in columns)
                        ]
                        for r in rows
                    ],
                )
                rows_done += len(rows)
            cursor = (body.get("pagination") or {}).get("next_cursor")
            if not cursor:
                break
        if not complete:
            break
    con.close()
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {"rows": rows_done, "requests": requests_made, "seconds": elapsed, "complete": complete}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
