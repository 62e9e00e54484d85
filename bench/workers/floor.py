"""The floor: the least work any tool must do to land the same pages in DuckDB.

    python -m bench.workers.floor fetch BASE_URL          # bare requests loop, bodies discarded
    python -m bench.workers.floor save BASE_URL DIR       # the same pages written to DIR (untimed prep)
    python -m bench.workers.floor load DIR DUCKDB_PATH    # DuckDB read_json of the saved pages

``fetch`` reads the cursor with a byte search instead of parsing the body (no JSON decode);
``load`` lets DuckDB parse and type the pages (one table per endpoint, nested lists kept as
DuckDB LISTs). The floor's time is fetch + load. The key is read from BENCH_API_KEY.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from sandbox.solarknock.data import ENDPOINTS  # the API's endpoints, as the sandbox serves them

_NEXT = b'"next_cursor":'


def next_cursor(body: bytes) -> str | None:
    at = body.rfind(_NEXT)
    if at < 0:
        return None
    rest = body[at + len(_NEXT) :].lstrip()
    if not rest.startswith(b'"'):
        return None  # null
    return rest[1 : rest.index(b'"', 1)].decode()


def pages(base_url: str):
    import requests

    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + os.environ["BENCH_API_KEY"]
    for endpoint in ENDPOINTS:
        cursor, page = None, 0
        while True:
            params: dict[str, object] = {"limit": 1000, "include_deleted": "true"}
            if cursor:
                params["cursor"] = cursor
            response = session.get(f"{base_url}/{endpoint}", params=params, timeout=60)
            response.raise_for_status()
            body = response.content
            yield endpoint, page, body
            page += 1
            cursor = None if endpoint == "org" else next_cursor(body)
            if not cursor:
                break


def fetch(base_url: str) -> dict:
    n = size = 0
    for _, _, body in pages(base_url):
        n += 1
        size += len(body)
    return {"requests": n, "bytes": size}


def save(base_url: str, out: str) -> dict:
    root = Path(out)
    n = 0
    for endpoint, page, body in pages(base_url):
        folder = root / endpoint.replace("-", "_")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{page:06d}.json").write_bytes(body)
        n += 1
    return {"requests": n}


def load(folder: str, duckdb_path: str) -> dict:
    import duckdb

    con = duckdb.connect(duckdb_path)
    rows = {}
    for sub in sorted(Path(folder).iterdir()):
        glob = str(sub / "*.json")
        select = (
            f"SELECT unnest(data) FROM read_json('{glob}', maximum_object_size=268435456)"
            if sub.name == "org"
            else f"SELECT unnest(d) FROM (SELECT unnest(data) AS d FROM read_json('{glob}', "
            "maximum_object_size=268435456))"
        )
        con.execute(f'CREATE TABLE "{sub.name}" AS {select}')
        rows[sub.name] = con.execute(f'SELECT count(*) FROM "{sub.name}"').fetchone()[0]
    con.close()
    return {"rows": rows}


def main(argv: list[str]) -> int:
    started = time.perf_counter()
    mode, *args = argv
    result = {"fetch": fetch, "save": save, "load": load}[mode](*args)
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
