# ruff: noqa: F811  (sandbox fixtures imported from the per-source conftests)
"""The Delta lake (``--destination filesystem``) beyond what every destination does: the same
history as DuckDB, day partitions, the views file, compaction, exactly-once jobs, S3 secrets
and the errors a bucket can give."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines import cli
from pipelines.destinations.duckdb import DuckDBWarehouse
from pipelines.destinations.lake import LakeWarehouse
from pipelines.registry import get
from pipelines.sync import run_source
from tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY, s3_client
from tests.readback import delta_tables, readable
from tests.sources.heat.conftest import heat_sandbox  # noqa: F401 (fixture)
from tests.sources.solarassistant.conftest import fresh_caches, sa_sandbox  # noqa: F401
from tests.sources.solarassistant.warehouse_check import assert_latest_metrics_equal
from tests.sources.solarknock.warehouse_check import assert_equal_to_truth
from tests.sources.tesla.conftest import fresh_process, gateway, make_gateway  # noqa: F401

REPO = Path(__file__).resolve().parents[2]


def sync(name: str, warehouse, **kwargs):
    result = run_source(get(name), warehouse, **kwargs)
    assert result.ok, result.error
    return result


def lake_rows(lake: LakeWarehouse, dataset: str, table: str) -> list[dict]:
    return lake.delta_table(dataset, table).to_pyarrow_table().to_pylist()


def query(path: Path, sql: str, *params) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------- HEAT history
def heat_history(path: Path) -> list[tuple]:
    """schedule_entries with validity instants as snapshot ordinals (two warehouses loaded
    from the same sandbox states have the same rows and row versions (``entry_hash``), not the
    same instants)."""
    instants = [
        r[0]
        for r in query(path, "select distinct snapshot_at from heat.site_status_history order by 1")
    ]
    at = {v: i for i, v in enumerate(instants)}
    found = query(
        path,
        "select entry_hash, _dlt_valid_from, _dlt_valid_to, site_id, asset, type, start_at, "
        "end_at, value from heat.schedule_entries",
    )
    return sorted((r[0], at[r[1]], None if r[2] is None else at[r[2]], *r[3:]) for r in found)


def test_heat_history_equals_the_duckdb_warehouse(heat_sandbox, tmp_path, monkeypatch):
    """scd2 is not a Delta strategy in dlt: the lake's job computes retirements and new versions
    from the table's active rows. After snapshots that change, clear, drop and bring back
    schedules, its rows (versions, validity) equal the DuckDB warehouse's."""
    sb = heat_sandbox
    duck = DuckDBWarehouse(tmp_path / "w.duckdb")
    lake = LakeWarehouse(tmp_path / "lake")

    def both() -> None:
        for warehouse, data_dir in ((duck, "dlt_duck"), (lake, "dlt_lake")):
            monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / data_dir))
            sync("heat", warehouse)

    a, b, c, _ = sb.site_ids
    both()
    grid = next(s for s in sb.truth()[a]["schedules"] if s["asset"] == "grid")
    sb.set_schedule(a, "grid", grid["type"], [dict(grid["entries"][0], value=99)])
    sb.clear_schedules(b)
    sb.hide_site(c)
    both()
    sb.show_site(c)
    sb.set_schedule(b, "grid", grid["type"], [dict(grid["entries"][0], value=5)])
    both()
    both()  # nothing changed: no new version on either
    lake_db = readable(lake, tmp_path)
    history = heat_history(duck.path)
    assert history == heat_history(lake_db)
    assert len(history) > len({r[0] for r in history if r[2] is None})  # retired versions exist
    # the views file has the same history and the history views
    assert heat_history(lake.views_file) == history
    assert query(lake.views_file, "select count(*) from analytics.heat_schedule_history") == query(
        duck.path, "select count(*) from analytics.heat_schedule_history"
    )


# --------------------------------------------------------------------------- partitions
def test_time_series_are_partitioned_by_utc_day(gateway, tmp_path, monkeypatch):
    import sources.tesla

    lake = LakeWarehouse(tmp_path / "lake")
    instants = [
        datetime(2026, 3, 1, 23, 59, 58, tzinfo=UTC),
        datetime(2026, 3, 2, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 3, 0, 30, 0, tzinfo=UTC),
    ]
    for at in instants:
        monkeypatch.setattr(sources.tesla, "utcnow", lambda at=at: at)
        sources.tesla.reset_clients()
        sync("tesla", lake)
    readings = lake.delta_table("tesla", "meter_readings")
    assert readings.metadata().partition_columns == ["day"]
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]
    for day in days:
        files = readings.file_uris(file_pruning_predicate=[("day", "=", day)])
        assert files and all(f"/day={day}/" in f for f in files)
        stamps = set(duckdb.sql(f"select polled_at from read_parquet({files!r})").fetchall())
        assert {s[0].date().isoformat() for s in stamps} == {day}
    rows = readings.to_pyarrow_table().to_pylist()
    assert len(rows) == 4 * len(instants)
    assert all(r["day"] == r["polled_at"].astimezone(UTC).date() for r in rows)
    # a current-state table is not partitioned
    assert lake.delta_table("tesla", "site_info").metadata().partition_columns == []
    # the views file reads the partition value back
    assert query(
        lake.views_file,
        "select day, count(*) from tesla.meter_readings group by day order by day",
    ) == [
        (datetime(2026, 3, 1).date(), 4),
        (datetime(2026, 3, 2).date(), 8),
        (datetime(2026, 3, 3).date(), 4),
    ]


# --------------------------------------------------------------------------- views file
def test_the_views_file_answers_analytics_queries_like_duckdb(sk_sandbox, tmp_path, monkeypatch):
    duck = DuckDBWarehouse(tmp_path / "w.duckdb")
    lake = LakeWarehouse(tmp_path / "lake")
    created = {}
    for warehouse, data_dir in ((duck, "dlt_duck"), (lake, "dlt_lake")):
        monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / data_dir))
        created[warehouse.kind] = sync("solarknock", warehouse).views
    assert created["filesystem"] == created["duckdb"] and created["duckdb"]
    for view in created["duckdb"]:
        columns = [
            r[0]
            for r in query(
                duck.path,
                "select column_name from information_schema.columns where table_schema || '.' "
                "|| table_name = ? and column_name not in ('_dlt_load_id', '_dlt_id', "
                "'blob_path', 'downloaded_at')",
                view,
            )
        ]
        sql = f"select {', '.join(columns)} from {view} order by all"
        expected = query(duck.path, sql)
        assert expected, view
        assert query(lake.views_file, sql) == expected, view


def test_a_reader_of_the_views_file_never_blocks_a_load(sk_sandbox, tmp_path):
    lake = LakeWarehouse(tmp_path / "lake")
    sync("solarknock", lake)
    before = len(sk_sandbox.truth("knocks"))
    reader = duckdb.connect(str(lake.views_file), read_only=True)
    try:
        sk_sandbox.insert("knocks", n=5)
        sync("solarknock", lake)  # publishes while the file is open
        # the open connection keeps its version (and its Parquet files are still there)
        assert reader.execute("select count(*) from solarknock.knocks").fetchall() == [(before,)]
    finally:
        reader.close()
    assert query(lake.views_file, "select count(*) from solarknock.knocks") == [(before + 5,)]
    assert not list(lake.views_file.parent.glob("*.tmp"))


COUNT_EVERY_VIEW = """
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
views = con.execute(
    "select schema_name, view_name from duckdb_views() "
    "where not internal and database_name = current_database() order by all"
).fetchall()
out = {}
for schema, view in views:
    try:
        out[f"{schema}.{view}"] = con.execute(f'select count(*) from "{schema}"."{view}"').fetchone()[0]
    except duckdb.Error as exc:
        out[f"{schema}.{view}"] = str(exc).splitlines()[0]
print(json.dumps(out))
"""


def every_view(views_file: Path) -> dict[str, int | str]:
    """Every view of a views file and its row count (or its error), as a reader that opens
    only that file sees it: its own process, read-only, its working dir elsewhere."""
    import json

    from tests.readers import run_reader

    done = run_reader(Path(sys.executable), COUNT_EVERY_VIEW, str(views_file))
    return json.loads(done.stdout)


def test_a_copied_lake_answers_every_view_from_where_it_now_is(
    sk_sandbox, heat_sandbox, filesystem_warehouse, tmp_path
):
    """The lake folder copied elsewhere (another disk, a mount, a colleague's laptop) and the
    original deleted: its views file, opened read-only from any working dir, answers every view
    with the same counts (the views name their files relative to the views file)."""
    import shutil

    lake = filesystem_warehouse
    assert cli.main(["--no-progress", "run", "solarknock", "heat"]) == 0
    before = every_view(lake.views_file)
    assert {"solarknock.knocks", "heat.sites", "analytics.knocks", "analytics.heat_sites"} <= set(
        before
    )
    assert all(isinstance(n, int) for n in before.values()), before
    assert before["solarknock.knocks"] == len(sk_sandbox.truth("knocks"))
    assert before["solarknock._dlt_loads"] == 1 and before["analytics.sync_runs"] >= 2

    moved = tmp_path / "mounted" / "lake copy"  # a space in the path, too
    shutil.copytree(lake.bucket_url, moved)
    shutil.rmtree(lake.bucket_url)
    assert every_view(moved / "_views.duckdb") == before


def _host(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``solarsync`` as another host runs it: its own working dir and dlt data dir."""
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "pipelines", "--no-progress", *args],
        cwd=workdir,
        env={**env, "DLT_DATA_DIR": str(workdir / "dlt"), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_second_host_sees_the_s3_lake_and_its_views_script(
    sk_sandbox, heat_sandbox, filesystem_s3_warehouse, s3_server, s3_bucket, tmp_path, monkeypatch
):
    """Two hosts (working dirs, dlt data dirs) and one S3 lake, with the shipped defaults: what
    one loaded, the other's ``status`` counts, and the views script is the bucket's (each
    dataset's part written by its loads), whichever host asks and wherever it runs."""
    monkeypatch.delenv("SOLARSYNC__LAKE__VIEWS_FILE")
    env = dict(os.environ)
    a, b = tmp_path / "host-a", tmp_path / "host-b"
    done = _host(a, env, "run", "solarknock")
    assert done.returncode == 0, done.stdout + done.stderr

    status = _host(b, env, "status", "solarknock")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "(not created yet)" not in status.stdout, status.stdout
    assert f"views script: s3://{s3_bucket}/lake/_views/" in status.stdout
    knocks = next(line for line in status.stdout.splitlines() if line.strip().startswith("knocks"))
    assert knocks.split()[1] == str(len(sk_sandbox.truth("knocks"))), knocks

    done = _host(b, env, "run", "heat")
    assert done.returncode == 0, done.stdout + done.stderr
    copies = list((b / "dlt" / "solarsync" / "lake_views").glob("*.sql"))
    assert len(copies) == 1  # host B's local copy, under its dlt data dir
    for host in (a, b):
        script = tmp_path / f"{host.name}.sql"
        done = _host(host, env, "lake", "views", "-o", str(script))
        assert done.returncode == 0, done.stdout + done.stderr
        text = script.read_text()
        for dataset in ("solarknock", "heat"):
            assert f"-- dataset {dataset}\n" in text
            assert f"read_parquet(['s3://{s3_bucket}/lake/{dataset}/" in text
        assert "CREATE OR REPLACE VIEW analytics.knocks" in text
        assert "CREATE OR REPLACE VIEW analytics.heat_sites" in text
        assert S3_SECRET_KEY not in text
        assert text == copies[0].read_text()
    keys = {o["Key"] for o in s3_client(s3_server).list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert {"lake/_views/solarknock.sql", "lake/_views/heat.sql"} <= keys
    assert not (a / "warehouse").exists() and not (b / "warehouse").exists()


# --------------------------------------------------------------------------- small files
def tesla_runs(lake: LakeWarehouse, n: int, monkeypatch, start: datetime) -> None:
    import sources.tesla

    for i in range(n):
        at = start + timedelta(seconds=5 * i)
        monkeypatch.setattr(sources.tesla, "utcnow", lambda at=at: at)
        sources.tesla.reset_clients()
        sync("tesla", lake)


def test_lake_optimize_compacts_vacuums_and_keeps_every_row(
    gateway,
    filesystem_warehouse,
    tmp_path,
    monkeypatch,
    capsys,
):
    lake = filesystem_warehouse
    lake.optimize_every = 0
    tesla_runs(lake, 5, monkeypatch, datetime(2026, 3, 1, 12, tzinfo=UTC))
    readings = lake.delta_table("tesla", "meter_readings")
    before = sorted(r["_dlt_id"] for r in readings.to_pyarrow_table().to_pylist())
    assert len(readings.file_uris()) >= 5
    capsys.readouterr()
    assert cli.main(["--no-progress", "lake", "optimize", "tesla", "--retention-hours", "0"]) == 0
    out = capsys.readouterr().out
    assert "tesla.meter_readings" in out and "views republished for tesla" in out
    readings = lake.delta_table("tesla", "meter_readings")
    assert len(readings.file_uris()) == 1  # one partition (one day), one file
    assert sorted(r["_dlt_id"] for r in readings.to_pyarrow_table().to_pylist()) == before
    table_dir = tmp_path / "lake" / "tesla" / "meter_readings"
    on_disk = [p for p in table_dir.rglob("*.parquet") if "_delta_log" not in p.parts]
    assert len(on_disk) == 1  # vacuumed (retention 0)
    # and the log has a checkpoint: readers replay only the commits after it
    assert list((table_dir / "_delta_log").glob("*.checkpoint.parquet"))
    assert query(lake.views_file, "select count(*) from tesla.meter_readings") == [(20,)]


def test_compaction_runs_by_itself_every_n_loads(gateway, tmp_path, monkeypatch):
    lake = LakeWarehouse(tmp_path / "lake", optimize_every=3)
    tesla_runs(lake, 3, monkeypatch, datetime(2026, 3, 1, 12, tzinfo=UTC))
    assert len(lake.delta_table("tesla", "meter_readings").file_uris()) == 1
    tesla_runs(lake, 1, monkeypatch, datetime(2026, 3, 1, 13, tzinfo=UTC))
    assert len(lake.delta_table("tesla", "meter_readings").file_uris()) == 2
    assert query(lake.views_file, "select count(*) from tesla.meter_readings") == [(16,)]


# --------------------------------------------------------------------------- exactly once
def test_a_job_run_again_after_its_commit_is_not_applied_twice(sa_sandbox, tmp_path, monkeypatch):
    """A kill between Delta's commit and dlt marking the job done makes dlt run the job again:
    the Delta app transaction of the load says it is done, so an append (SolarAssistant's
    metrics) is not doubled."""
    from pipelines.destinations.lake import delta

    lake = LakeWarehouse(tmp_path / "lake")
    runs: dict[str, int] = {}
    original = delta.LakeDeltaJob.run

    def commit_then_fail(self):
        original(self)
        runs[self.load_table_name] = runs.get(self.load_table_name, 0) + 1
        if runs[self.load_table_name] == 1:
            raise OSError("killed after the commit")  # dlt retries the job

    monkeypatch.setattr(delta.LakeDeltaJob, "run", commit_then_fail)
    result = run_source(get("solarassistant"), lake)
    monkeypatch.setattr(delta.LakeDeltaJob, "run", original)
    if not result.ok:  # jobs still to retry are loaded by the next run, before anything else
        sync("solarassistant", lake, resources=["users"])
    assert runs["metrics"] >= 2 and runs["metric_polls"] >= 2
    polls = lake_rows(lake, "solarassistant", "metric_polls")
    assert len(polls) == len(sa_sandbox.sites)  # one poll, each site once
    metrics = lake_rows(lake, "solarassistant", "metrics")
    keys = [(m["site_id"], m["topic"], m["polled_at"]) for m in metrics]
    assert len(keys) == len(set(keys))
    assert_latest_metrics_equal(sa_sandbox, readable(lake, tmp_path))


def test_sigkill_mid_load_then_rerun(sk_sandbox, tmp_path, monkeypatch):
    lake = LakeWarehouse(tmp_path / "lake")
    monkeypatch.setenv("SOLARSYNC__DESTINATION", "filesystem")
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", str(lake.bucket_url))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "--no-progress", "run", "solarknock"],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # the extraction is over once every list was read: kill while normalizing or loading
    deadline = time.monotonic() + 60
    while sk_sandbox.count_requests() < 16 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sk_sandbox.update("knocks", n=5)
    assert cli.main(["--no-progress", "run", "solarknock"]) == 0
    assert_equal_to_truth(sk_sandbox, readable(lake, tmp_path))


# --------------------------------------------------------------------------- S3
def test_s3_credentials_never_reach_logs_state_or_the_lake(
    sk_sandbox, filesystem_s3_warehouse, s3_server, s3_bucket, isolated_dlt, capfd
):
    lake = filesystem_s3_warehouse
    assert cli.main(["-v", "--no-progress", "run", "solarknock"]) == 0
    assert cli.main(["-v", "--no-progress", "status"]) == 0
    assert cli.main(["-v", "--no-progress", "lake", "optimize"]) == 0
    output = "".join(capfd.readouterr())
    assert "solarknock: ok" in output
    secrets = (S3_SECRET_KEY, S3_ACCESS_KEY)
    for secret in secrets:
        assert secret not in output
    for path in isolated_dlt.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets), path
    client = s3_client(s3_server)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert any(k.endswith(".parquet") for k in keys) and any("_delta_log" in k for k in keys)
    for key in keys:
        body = client.get_object(Bucket=s3_bucket, Key=key)["Body"].read()
        assert not any(s.encode() in body for s in secrets), key
    assert "_solarsync_probe" not in " ".join(keys)  # the write probe cleaned up after itself
    script = Path(lake.views_file).read_text()
    assert "read_parquet(['s3://" in script and not any(s in script for s in secrets)


@pytest.mark.parametrize("fault", ["unreachable", "no credentials", "no bucket"])
def test_a_bucket_that_cannot_be_used_fails_clearly_and_a_rerun_repairs(
    sk_sandbox, filesystem_s3_warehouse, s3_server, monkeypatch, capsys, fault, tmp_path
):
    prefix = "DESTINATION__FILESYSTEM__CREDENTIALS__"
    good = dict(os.environ)
    if fault == "unreachable":
        monkeypatch.setenv(prefix + "ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens
    elif fault == "no credentials":
        monkeypatch.delenv(prefix + "AWS_ACCESS_KEY_ID")
        monkeypatch.delenv(prefix + "AWS_SECRET_ACCESS_KEY")
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    else:
        monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", "s3://no-such-bucket-here/lake")
    started = time.monotonic()
    assert cli.main(["--no-progress", "run", "solarknock"]) == 1
    assert time.monotonic() - started < 60
    out = capsys.readouterr().out
    assert "destination filesystem" in out
    expected = {
        "unreachable": "cannot be reached",
        "no credentials": "the credentials are missing",
        "no bucket": "the bucket does not exist",
    }[fault]
    assert expected in out, out
    assert S3_SECRET_KEY not in out
    for name, value in good.items():  # fixed: the rerun loads everything, once
        monkeypatch.setenv(name, value)
    assert cli.main(["--no-progress", "run", "solarknock"]) == 0
    assert_equal_to_truth(sk_sandbox, readable(filesystem_s3_warehouse, tmp_path))


def test_delta_tables_read_back_with_deltalake_on_s3(sk_sandbox, filesystem_s3_warehouse):
    lake = filesystem_s3_warehouse
    sync("solarknock", lake)
    tables = delta_tables(lake, "solarknock")
    assert set(tables) >= {"org", "users", "knocks", "leads", "appointments", "daily_stats",
                           "app_opens", "counties", "lead_attachments"}  # fmt: skip
    assert tables["knocks"].num_rows == len(sk_sandbox.truth("knocks"))


@pytest.fixture(scope="module")
def enforcing_s3():
    """A second moto server that checks signatures and IAM policies (moto's
    ``INITIAL_NO_AUTH_ACTION_COUNT``: the first 7 calls set it up unauthenticated): a bucket, a
    read-only user and a read-write user. Yields (endpoint, bucket, read-only keys, rw keys)."""
    import json
    import socket

    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="7"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "moto did not start"
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        setup = dict(endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id=S3_ACCESS_KEY, aws_secret_access_key=S3_SECRET_KEY)  # fmt: skip
        boto3.client("s3", **setup).create_bucket(Bucket="enforced")
        iam = boto3.client("iam", **setup)
        keys = {}
        for user, actions in (("reader", ["s3:Get*", "s3:List*"]), ("writer", ["s3:*"])):
            iam.create_user(UserName=user)
            policy = {"Version": "2012-10-17",
                      "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}  # fmt: skip
            iam.put_user_policy(UserName=user, PolicyName=user, PolicyDocument=json.dumps(policy))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        yield endpoint, "enforced", keys["reader"], keys["writer"]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("fault", ["wrong secret", "unknown key", "read-only keys"])
def test_refused_credentials_fail_clearly_and_a_rerun_repairs(
    sk_sandbox, enforcing_s3, isolated_dlt, monkeypatch, capsys, fault, tmp_path
):
    endpoint, bucket, reader, writer = enforcing_s3
    prefix = "DESTINATION__FILESYSTEM__CREDENTIALS__"
    url = f"s3://{bucket}/{fault.replace(' ', '-')}"
    monkeypatch.setenv("SOLARSYNC__DESTINATION", "filesystem")
    monkeypatch.setenv("DESTINATION__FILESYSTEM__BUCKET_URL", url)
    monkeypatch.setenv("SOLARSYNC__LAKE__VIEWS_FILE", str(tmp_path / "lake_views.sql"))
    monkeypatch.setenv(prefix + "ENDPOINT_URL", endpoint)
    monkeypatch.setenv(prefix + "REGION_NAME", "us-east-1")
    bad = {
        "wrong secret": (writer[0], "wrong" + writer[1][5:]),
        "unknown key": ("AKIANOSUCHKEY0000000", "NoSuchSecret/0123456789abcdefghijklmnopq"),
        "read-only keys": reader,
    }[fault]
    monkeypatch.setenv(prefix + "AWS_ACCESS_KEY_ID", bad[0])
    monkeypatch.setenv(prefix + "AWS_SECRET_ACCESS_KEY", bad[1])
    assert cli.main(["--no-progress", "run", "solarknock"]) == 1
    out = capsys.readouterr().out
    assert "destination filesystem" in out
    refused = "the credentials are missing or refused"
    expected = {"wrong secret": refused, "unknown key": refused,
                "read-only keys": "permission denied (write)"}[fault]  # fmt: skip
    assert expected in out, out
    assert bad[1] not in out and writer[1] not in out
    assert sk_sandbox.count_requests() == 0  # failed before anything was read
    monkeypatch.setenv(prefix + "AWS_ACCESS_KEY_ID", writer[0])
    monkeypatch.setenv(prefix + "AWS_SECRET_ACCESS_KEY", writer[1])
    assert cli.main(["--no-progress", "run", "solarknock"]) == 0
    assert_equal_to_truth(sk_sandbox, readable(LakeWarehouse.from_config(), tmp_path))
