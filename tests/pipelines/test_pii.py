"""Personal data never lands raw (docs/pii.md): known values planted in a SolarKnock stand-in
that differs from the sandbox's shapes (a nested homeowner object, fields the API adds under
names no declaration lists, emails inside lists and JSON text, PII in attachment file names)
are looked for in every byte solarsync wrote (warehouse files, lake objects in S3, every table
read back, dlt's pipelines and working dirs, the run history, logs, the report) on every
destination, under the shipped default, ``hash`` and ``drop``, after a run killed with
SIGKILL, its rerun and a backfill. Hashes are equal for the same homeowner across rows and
spellings; the analytics views keep their counts."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main
from sources.common.pii import Hasher, normalize
from tests.conftest import TEST_HASH_KEY

REPO = Path(__file__).resolve().parents[2]
SK_KEY = "sk_PIITESTKEY7"
COUNTS = {"users": 6, "knocks": 80, "leads": 40, "appointments": 20, "daily-stats": 20,
          "app-opens": 10, "counties": 5}  # fmt: skip

# --------------------------------------------------------------------------- the planted people
ZEB_NAME = "Zebulon Quixotepants"
ZEB_EMAIL = "Zeb.Quixote@Planted-Example.com"
ZEB_PHONE = "(555) 867-5309"
ZEB_STREET = "4417 Wisteria Lane"
OPH_NAME = "Ophelia Plantagenet"
OPH_MOBILE = "555-201-7788"
OPH_EMAIL = "ophelia.plantagenet@planted-example.org"
OPH_STREET = "77 Marigold Crescent"
REF_EMAIL = "referrer.hidden@planted-example.net"
NOTE = "Gate code 8842, dog named Biscuit, call Zebulon after six"
SECRET_WORD = "Biscuit"
LAT, LNG = 34.0522345, -118.2436849
REP_NAME = "Repworth Knockington"
REP_EMAIL = "repworth.knockington@planted-example.com"
ID_FILE = "Quixotepants_drivers_license.jpg"
BILL_FILE = "Quixotepants power bill march.pdf"

#: what must appear nowhere (compared case-insensitively; spellings solarsync normalizes to
#: included: a lower-cased name is still the name)
RAW = [
    ZEB_NAME, "Quixotepants", ZEB_EMAIL, "zeb.quixote@planted-example.com", "867-5309",
    "8675309", ZEB_STREET, "Wisteria", OPH_NAME, "Plantagenet", OPH_MOBILE, "2017788",
    OPH_EMAIL, OPH_STREET, "Marigold", REF_EMAIL, NOTE, SECRET_WORD, "0522345", "2436849",
    REP_EMAIL,
]  # fmt: skip


def plant_lead(row: dict[str, Any], n: int) -> dict[str, Any]:
    """Two leads of Zebulon (two spellings), one of Ophelia in fields the sandbox never
    sends."""
    if n == 0:
        row.update(
            name=ZEB_NAME,
            email=ZEB_EMAIL,
            phone=ZEB_PHONE,
            address=f"{ZEB_STREET}, Apt 9, Fairview, CA 90210",
            notes=NOTE,
            attachments=[
                {**row["attachments"][0], "fileName": ID_FILE, "mimeType": "image/jpeg"},
                {**row["attachments"][0], "id": row["attachments"][0]["id"] + "b",
                 "fileName": BILL_FILE, "mimeType": "application/pdf"},
            ] if row["attachments"] else [],
        )  # fmt: skip
    elif n == 1:
        row.update(
            name="  ZEBULON   quixotepants ",
            email=f" {ZEB_EMAIL.lower()} ",
            phone="+1 555.867.5309",
            address=f"{ZEB_STREET}, Apt 9, Fairview, CA 90210",
        )
    elif n == 2:
        # fields the API adds: a nested homeowner object, an email in a list and in JSON text
        row["homeowner"] = {
            "fullName": OPH_NAME,
            "contact": {"mobile": OPH_MOBILE, "emailAddress": OPH_EMAIL},
            "mailingAddress": {"line1": OPH_STREET, "city": "Fairview", "zip": "90210"},
        }
        row["secondaryContacts"] = [REF_EMAIL, {"label": "spouse", "value": OPH_MOBILE}]
        row["crmBlob"] = f'{{"owner": "{OPH_NAME}", "reach": "{OPH_EMAIL}"}}'
    return row


def plant(sb) -> None:
    counters = {"leads": 0, "knocks": 0, "appointments": 0, "users": 0}

    def each(endpoint: str, fn):
        def apply(row: dict[str, Any]) -> dict[str, Any]:
            n = counters[endpoint]
            counters[endpoint] += 1
            if row.get("deleted_at") is None or endpoint == "users":
                return fn(row, n)
            counters[endpoint] -= 1
            return row

        sb.rewrite(endpoint, apply)

    def lead(row: dict[str, Any], n: int) -> dict[str, Any]:
        return plant_lead(row, n)

    def knock(row: dict[str, Any], n: int) -> dict[str, Any]:
        if n == 0:
            row.update(homeowner_name=ZEB_NAME.upper(), address=f"{ZEB_STREET}, Fairview, CA 90210",
                       lat=LAT, lng=LNG, notes=NOTE)  # fmt: skip
        return row

    def appointment(row: dict[str, Any], n: int) -> dict[str, Any]:
        if n == 0:
            row["notes"] = NOTE
        return row

    def user(row: dict[str, Any], n: int) -> dict[str, Any]:
        if n == 1:
            row.update(name=REP_NAME, email=REP_EMAIL)
        return row

    each("leads", lead)
    each("knocks", knock)
    each("appointments", appointment)
    each("users", user)


POLICIES: dict[str, dict[str, str]] = {
    "default": {},  # .dlt/config.toml as shipped: contact/address hash, notes drop
    "hash": {"SOLARSYNC__PII__CONTACT": "hash", "SOLARSYNC__PII__ADDRESS": "hash",
             "SOLARSYNC__PII__NOTES": "hash", "SOLARSYNC__PII__LOCATION": "round",
             "SOLARSYNC__PII__STAFF": "hash"},
    "drop": {"SOLARSYNC__PII__CONTACT": "drop", "SOLARSYNC__PII__ADDRESS": "drop",
             "SOLARSYNC__PII__NOTES": "drop", "SOLARSYNC__PII__LOCATION": "drop",
             "SOLARSYNC__PII__STAFF": "drop"},
}  # fmt: skip


def run(*args: str) -> int:
    time.sleep(1.05 - (time.time() % 1.0))  # the API clock has whole seconds
    return main(["--no-progress", *args])


# --------------------------------------------------------------------------- looking everywhere
def found_in_files(root: Path, needles: list[str]) -> list[str]:
    hits = []
    lowered = [n.lower().encode() for n in needles]
    for path in [root] if root.is_file() else root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes().lower()
        hits += [f"{path}: {n.decode()}" for n in lowered if n in data]
    return hits


def found_in_s3(needles: list[str], *, written: bool = False) -> list[str]:
    from tests.conftest import s3_client

    endpoint = os.environ.get("DESTINATION__FILESYSTEM__CREDENTIALS__ENDPOINT_URL")
    bucket_url = os.environ.get("DESTINATION__FILESYSTEM__BUCKET_URL", "")
    if not endpoint or not bucket_url.startswith("s3://"):
        return []
    bucket = bucket_url[len("s3://") :].split("/", 1)[0]
    client = s3_client(endpoint)
    hits, lowered = [], [n.lower().encode() for n in needles]
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            data = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().lower()
            hits += [f"s3://{bucket}/{obj['Key']}: {n.decode()}" for n in lowered if n in data]
    if written:  # it looked where the lake and the blobs are
        assert client.list_objects_v2(Bucket=bucket)["KeyCount"] > 0
    return hits


def found_in_tables(warehouse, needles: list[str]) -> tuple[list[str], int]:
    """Every row of every table and view, read back as text (DuckDB compresses strings on
    disk and Postgres may: a byte grep alone could miss them)."""
    hits, rows = [], 0
    with warehouse.reader() as reader:
        assert reader is not None
        names = reader.rows(
            "select table_schema, table_name from information_schema.tables where "
            "table_schema not in ('information_schema', 'pg_catalog', 'main')"
        )
        for schema, table in names:
            try:
                records = reader.records(f'select * from "{schema}"."{table}"')
            except Exception as exc:  # a view of a table the run did not create
                if "does not exist" in str(exc) or "not exist" in str(exc):
                    continue
                raise
            rows += len(records)
            text = repr(records).lower()
            hits += [f"{schema}.{table}: {n}" for n in needles if n.lower() in text]
    return hits, rows


def look_everywhere(warehouse, root: Path, output: str) -> tuple[list[str], int]:
    hits = found_in_files(root, RAW) + found_in_s3(RAW, written=True)
    hits += [f"output: {n}" for n in RAW if n.lower() in output.lower()]
    table_hits, rows = found_in_tables(warehouse, RAW)
    return hits + table_hits, rows


# --------------------------------------------------------------------------- the test
@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from sandbox.solarknock import SolarKnockSandbox

    with SolarKnockSandbox(seed=24, api_key=SK_KEY, counts=COUNTS) as sb:
        monkeypatch.setenv("SOURCES__SOLARKNOCK__API_KEY", SK_KEY)
        monkeypatch.setenv("SOURCES__SOLARKNOCK__BASE_URL", sb.base_url)
        monkeypatch.setenv("SOURCES__SOLARKNOCK__PAGE_SIZE", "10")
        monkeypatch.setenv("SOURCES__SOLARKNOCK__BACKOFF_FACTOR", "0.05")
        monkeypatch.setenv("SOURCES__SOLARKNOCK__ATTACHMENTS__ENABLED", "true")
        plant(sb)
        yield sb


def killed_run(tmp_path: Path, sb) -> None:
    """``solarsync run solarknock`` in a process of its own, killed with SIGKILL while it
    extracts (the API slowed down so it is mid-way)."""
    sb.slow(0.15)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "--no-progress", "run", "solarknock"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(sb.requests) >= 6:  # some pages read and handed to dlt
                break
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        sb.slow(0)


@pytest.mark.parametrize("policy", list(POLICIES))
def test_no_raw_value_anywhere_on_any_destination(
    policy, any_warehouse, stand_in, tmp_path, monkeypatch, capsys
):
    for name, value in POLICIES[policy].items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    destination = (
        "filesystem" if any_warehouse.kind.startswith("filesystem") else any_warehouse.kind
    )
    monkeypatch.setenv("SOLARSYNC__DESTINATION", destination)
    sb = stand_in

    # 1. a run killed mid-way: what it left holds no raw value either
    sb.clear_requests()
    killed_run(tmp_path, sb)
    hits = found_in_files(tmp_path, RAW) + found_in_s3(RAW)
    assert not hits, hits

    # 2. the rerun completes it; 3. a backfill re-reads everything
    assert run("run", "solarknock") == 0
    assert run("backfill", "solarknock", "--since", "2000-01-01") == 0
    report = tmp_path / "report.html"
    run("report", "--output", str(report))
    output = "".join(capsys.readouterr())
    assert "not a declared column" in output  # the fields the API added are named in a warning

    hits, rows = look_everywhere(any_warehouse, tmp_path, output)
    assert rows > 200 and not hits, hits

    with any_warehouse.reader() as reader:
        leads = reader.records("select * from solarknock.leads")
        knocks = reader.records("select * from analytics.knocks")
        counted = reader.rows("select count(*) from analytics.leads")[0][0]
        files = reader.records("select * from solarknock.lead_attachments")
    live_knocks = [r for r in sb.truth("knocks") if r["deleted_at"] is None]
    live_leads = [r for r in sb.truth("leads") if r["deleted_at"] is None]
    assert len(knocks) == len(live_knocks) and counted == len(live_leads)  # the views' counts
    assert_actions(policy, leads, knocks, files)


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def hashed(kind: str, value: str) -> str:
    return Hasher(TEST_HASH_KEY)(normalize(kind, value))


def assert_actions(policy: str, leads, knocks, files) -> None:
    zeb = hashed("name", ZEB_NAME)
    by_file = {(r["file_name"], r["status"], r["file_category"]) for r in files}
    if policy in ("default", "hash"):
        # the same homeowner, spelled three ways in three rows of two tables: one hash
        assert sum(r["name"] == zeb for r in leads) == 2
        assert sum(r["email"] == hashed("email", ZEB_EMAIL) for r in leads) == 2
        assert sum(r["phone"] == hashed("phone", "5558675309") for r in leads) == 2
        assert sum(r["homeowner_name"] == zeb for r in knocks) == 1
        # the area parts of the address stay for counts by city and zip
        assert {(r["address_city"], r["address_zip"]) for r in leads if r["name"] == zeb} == {
            ("Fairview", "90210")
        }
        # the nested homeowner object, a field no declaration names: hashed too
        oph = [as_json(r["homeowner"]) for r in leads if r.get("homeowner")]
        assert oph and oph[0]["fullName"] == hashed("name", OPH_NAME)
        assert oph[0]["contact"]["emailAddress"] == hashed("email", OPH_EMAIL)
        assert oph[0]["contact"]["mobile"] == hashed("phone", OPH_MOBILE)
        assert oph[0]["mailingAddress"]["city"] == "Fairview"  # an area: address_keep
        assert (round(knocks[0]["lat"], 2) == knocks[0]["lat"]) or knocks[0]["lat"] is None
        # the ID document is never downloaded; the bill is
        assert any(s == "skipped" and c == "id_document" for _, s, c in by_file)
        assert any(s == "stored" and c == "bill" for _, s, c in by_file)
    if policy == "default":
        assert all(r["notes"] is None for r in leads + knocks)  # notes = "drop"
    if policy == "drop":
        for column in ("name", "email", "phone", "address", "notes"):
            assert all(r.get(column) is None for r in leads), column
        assert all(r["homeowner_name"] is None and r["lat"] is None for r in knocks)
        assert all(r.get("homeowner") is None for r in leads)
        # contact data dropped: no file of the homeowner is kept, and none has a name
        assert all(s != "stored" for _, s, _ in by_file)
        assert all(n is None for n, _, _ in by_file)


def test_one_homeowner_one_hash_across_sources(tmp_path, monkeypatch, stand_in):
    """The same email in SolarKnock (a lead) and SolarAssistant (a site member), spelled
    differently: the same hash, so the two tables join."""
    from sandbox.solarassistant import SolarAssistantSandbox
    from tests.sources.solarassistant.conftest import point_at

    with SolarAssistantSandbox(seed=3, api_token="sa-token-pii", sites=2, org_users=4,
                               cert_dir=str(tmp_path / "cert")) as sa:  # fmt: skip
        point_at(sa, monkeypatch)
        monkeypatch.setenv("SOURCES__SOLARASSISTANT__API_TOKEN", "sa-token-pii")
        member = copy.deepcopy(sa.truth("org_users")[0])
        people = [
            row[key]
            for table in ("users", "org_users", "site_members")
            for row in sa.truth(table)
            for key in ("email", "phone_number")
            if row.get(key)
        ]
        assert run("run", "solarknock") == 0
        assert run("run", "solarassistant") == 0
    from pipelines.destinations.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    with warehouse.reader() as reader:
        got = reader.records("select * from solarassistant.org_users")
        leads = reader.records("select email from solarknock.leads")
    email = {r["id"]: r["email"] for r in got}[member["id"]]
    assert email == hashed("email", member["email"].upper())
    assert hashed("email", f"  {ZEB_EMAIL.upper()}") in {r["email"] for r in leads}
    assert len(people) > 5
    hits = found_in_tables(warehouse, people)[0] + found_in_files(tmp_path / "dlt", people)
    hits += found_in_files(tmp_path / "warehouse.duckdb", people)
    assert not hits, hits


def test_a_policy_change_is_refused_then_pii_apply_rewrites_what_is_stored(
    any_warehouse, stand_in, tmp_path, monkeypatch, capsys
):
    """Loaded raw (keep), then the shipped policy: the next run refuses to mix the two;
    `solarsync pii apply` rewrites every stored value (the lake's older versions vacuumed,
    DuckDB compacted, Postgres VACUUM FULL); the hashes equal what a run computes."""
    from tests.conftest import KEEP_ALL

    monkeypatch.chdir(tmp_path)
    destination = (
        "filesystem" if any_warehouse.kind.startswith("filesystem") else any_warehouse.kind
    )
    monkeypatch.setenv("SOLARSYNC__DESTINATION", destination)
    for name, value in KEEP_ALL.items():
        monkeypatch.setenv(name, value)
    assert run("run", "solarknock") == 0
    with any_warehouse.reader() as reader:
        raw = reader.rows("select count(*) from solarknock.leads where name = ?", [ZEB_NAME])
    assert raw == [(1,)]  # kept as sent

    for name in KEEP_ALL:
        monkeypatch.delenv(name)
    capsys.readouterr()
    assert run("run", "solarknock") == 1
    said = "".join(capsys.readouterr())
    assert "another personal-data policy" in said and "solarsync pii apply" in said

    assert run("pii", "apply", "solarknock") == 0
    said = "".join(capsys.readouterr())
    assert "values rewritten" in said, said
    assert run("run", "solarknock") == 0  # the stamp is the configured policy now
    output = "".join(capsys.readouterr())
    raw_values = [ZEB_NAME, ZEB_EMAIL, ZEB_STREET, NOTE, OPH_EMAIL, REF_EMAIL]
    hits = found_in_files(tmp_path, raw_values) + found_in_s3(raw_values, written=True)
    hits += found_in_tables(any_warehouse, raw_values)[0]
    hits += [n for n in raw_values if n.lower() in output.lower()]
    assert not hits, hits
    with any_warehouse.reader() as reader:
        leads = reader.records("select name, email, notes, address_city from solarknock.leads")
        stored_ids = reader.rows(
            "select count(*) from solarknock.lead_attachments where status = 'stored'"
            " and file_category = 'id_document'"
        )
    assert sum(r["name"] == hashed("name", ZEB_NAME) for r in leads) == 2
    assert sum(r["email"] == hashed("email", ZEB_EMAIL) for r in leads) == 2
    assert all(r["notes"] is None for r in leads)
    assert stored_ids == [(0,)]  # ID documents downloaded under the old policy: deleted
    assert "stored file(s) of skipped categories deleted" in said

    # a backfill re-reads every lead: still no ID document
    assert run("backfill", "solarknock", "--since", "2000-01-01") == 0
    with any_warehouse.reader() as reader:
        files = reader.records("select * from solarknock.lead_attachments")
    ids = [f for f in files if f["file_category"] == "id_document"]
    assert ids and all(f["status"] == "skipped" for f in ids)
    stored = {str(f["blob_path"]) for f in files if f["status"] == "stored"}
    if any_warehouse.kind == "duckdb" or getattr(any_warehouse, "local", False):
        root = tmp_path / ("blobs" if any_warehouse.kind == "duckdb" else "lake/_blobs")
        blobs = {str(p) for p in root.rglob("*") if p.is_file() and ".incoming" not in str(p)}
        assert blobs == stored
    elif any_warehouse.kind == "filesystem":  # S3: the objects under _blobs
        from tests.conftest import s3_client

        bucket = any_warehouse.bucket_url[len("s3://") :].split("/", 1)[0]
        client = s3_client(os.environ["DESTINATION__FILESYSTEM__CREDENTIALS__ENDPOINT_URL"])
        keys = {
            f"s3://{bucket}/{o['Key']}"
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])
            if "/_blobs/" in o["Key"] and "/.incoming/" not in o["Key"]
        }
        assert keys == stored
