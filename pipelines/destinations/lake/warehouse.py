"""``--destination filesystem``: every table a Delta table in a bucket (local path, s3://, gs://,
az://), plus a small DuckDB file of views for BI tools.

Configuration follows dlt's filesystem destination (``DESTINATION__FILESYSTEM__BUCKET_URL``,
``[destination.filesystem.credentials]``) and ``[solarsync.lake]`` for what solarsync adds
(:mod:`pipelines.destinations.lake.settings`). The views file of a local lake is
``<bucket>/_views.duckdb``, relocatable with the lake; a remote lake keeps a views script in the
bucket (``<bucket>/_views/``) with a local copy (``$DLT_DATA_DIR/solarsync/lake_views/``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import dlt
import duckdb

import pipelines.destinations.lake.maintenance as maintenance
import pipelines.destinations.lake.publish as publish
from pipelines.destinations.base import Publication, Reader, Warehouse
from pipelines.destinations.lake.bucket import (
    bucket_error,
    is_local,
    keep_credentials_out_of_traces,
    local_path,
    looks_secret,
    register_credentials,
    without_userinfo,
)
from pipelines.destinations.lake.delta import DAY_OF_HINT, DELTA_LOCK, filesystem, q
from pipelines.destinations.lake.settings import (
    DEFAULT_OPTIMIZE_EVERY,
    DEFAULT_RETENTION_HOURS,
    LakeSettings,
    settings,
)
from sources.common import DestinationError, redact, register_secret
from sources.common.blobstore import BlobRoot

logger = logging.getLogger("solarsync")

DEFAULT_BUCKET = Path("warehouse") / "lake"
#: under dlt's data dir: the local copy of a remote lake's views script, one per bucket
REMOTE_VIEWS_DIR = Path("solarsync") / "lake_views"
#: the folder of the bucket where sources keep files (lead attachments) by default
BLOB_FOLDER = "_blobs"
DESTINATION = "destination filesystem"
#: under dlt's data dir: the lock files of the datasets loading (:meth:`LakeWarehouse.writing`)
LOCK_DIR = Path("solarsync") / "lake_locks"
#: primary-key columns that make a table a time series, partitioned by their UTC day
TIME_COLUMNS = ("polled_at", "snapshot_at")
DAY_COLUMN = "day"


class LakeWarehouse(Warehouse):
    """A Delta lake written by dlt's filesystem destination (see the module docstring)."""

    kind: ClassVar[str] = "filesystem"

    def __init__(
        self,
        bucket_url: str | os.PathLike[str] = DEFAULT_BUCKET,
        *,
        views_file: str | os.PathLike[str] | None = None,
        optimize_every: int = DEFAULT_OPTIMIZE_EVERY,
        retention_hours: int = DEFAULT_RETENTION_HOURS,
    ) -> None:
        url = str(bucket_url)
        if is_local(url):
            url = str(local_path(url).resolve())
        self.bucket_url = url.rstrip("/")
        self.local = is_local(self.bucket_url)
        if views_file:
            self.views_file = Path(views_file)
        elif self.local:
            self.views_file = Path(self.bucket_url) / "_views.duckdb"
        else:
            self.views_file = default_script_copy(self.bucket_url)
        self.optimize_every = int(optimize_every)
        self.retention_hours = int(retention_hours)
        self._config: Any = None
        keep_credentials_out_of_traces()

    @classmethod
    def from_config(cls, config: LakeSettings | None = None) -> LakeWarehouse:
        """dlt's ``destination.filesystem.bucket_url`` (default ``warehouse/lake``) and
        ``[solarsync.lake]``."""
        config = config or settings()
        try:
            bucket = dlt.config.get("destination.filesystem.bucket_url")
        except Exception:
            bucket = None
        return cls(
            bucket or DEFAULT_BUCKET,
            views_file=config.views_file,
            optimize_every=config.optimize_every,
            retention_hours=config.vacuum_retention_hours,
        )

    def __repr__(self) -> str:
        return f"LakeWarehouse({self.describe()!r})"

    # -- what dlt loads into ---------------------------------------------------------------
    def dlt_destination(self) -> Any:
        # credentials are resolved by dlt from [destination.filesystem.credentials]: never
        # passed here, so they are in no state (nor in dlt's trace: see __init__)
        return filesystem(bucket_url=self.bucket_url)

    def describe(self) -> str:
        bucket = redact(without_userinfo(self.bucket_url))
        if self.local:
            return f"Delta lake {bucket} (views: {self.views_file})"
        return f"Delta lake {bucket} (views script: {bucket}/_views/, copy: {self.views_file})"

    def exists(self) -> bool:
        """Read from the lake itself (any host, any working dir sees the same answer)."""
        if self.local:
            return Path(self.bucket_url).exists() and any(Path(self.bucket_url).iterdir())
        try:
            return bool(self.datasets())
        except Exception:  # unreachable now: status says why the counts are missing
            return True

    def blob_root(self) -> BlobRoot:
        """``<bucket>/_blobs``: in the lake itself (a local one moves with it; every host
        loading an S3 lake shares the files), reached with the lake's credentials."""
        if self.local:
            return BlobRoot(str(Path(self.bucket_url) / BLOB_FOLDER))
        from dlt.common.storages.fsspec_filesystem import prepare_fsspec_args

        options = prepare_fsspec_args(self.client_config())
        return BlobRoot(f"{self.bucket_url}/{BLOB_FOLDER}", options)

    def prepare(self) -> None:
        if self.local:
            Path(self.bucket_url).mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def writing(self, source: str) -> Iterator[None]:
        """A lock file of the dataset on this host (``$DLT_DATA_DIR/solarsync/lake_locks``)
        while it loads: two accounts of a source never write its Delta tables and dlt's state
        files at once. Hosts sharing a remote lake must not load one dataset at the same time
        (docs/destinations/lake.md)."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", without_userinfo(self.bucket_url)).strip("-.")
        path = Path(dlt.current.run_context().data_dir) / LOCK_DIR / slug / f"{source}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        timeout = settings().load_lock_timeout_s()
        with open(path, "a+") as handle:
            deadline, pause, told = time.monotonic() + timeout, 0.05, False
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise DestinationError(
                            f"{source}: another load of this dataset has run for longer than "
                            f"this one waits ({timeout:.0f}s)",
                            source=DESTINATION,
                            hint="nothing was lost: the next run loads what this one "
                            "extracted; or raise [solarsync.lake] load_lock_timeout",
                        ) from None
                    if not told:
                        logger.info("%s: waiting for another load of the dataset", source)
                        told = True
                    time.sleep(pause)
                    pause = min(pause * 2, 1.0)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def fill_columns(self, pipeline: Any, table: str, values: Mapping[str, str]) -> int | None:
        """The Delta table's missing columns added (nullable strings), then one update of
        the rows where they are NULL (see :meth:`Warehouse.fill_columns`)."""
        import pyarrow.dataset as ds
        from deltalake import Field

        with DELTA_LOCK:
            delta = self.delta_table(pipeline.dataset_name, table)
            if delta is None:
                return None
            present = {field.name for field in delta.schema().fields}
            missing = [name for name in values if name not in present]
            if missing:
                delta.alter.add_columns([Field(name, "string", nullable=True) for name in missing])
                delta = self.delta_table(pipeline.dataset_name, table)
            empty = None
            for name in values:
                condition = ds.field(name).is_null()
                empty = condition if empty is None else empty | condition
            count = delta.to_pyarrow_dataset().count_rows(filter=empty)
            if missing and not count and delta.file_uris():
                # no row to fill, yet files without the new columns (e.g. empty ones): the
                # views read the files, so rewrite them once with the table's schema
                from deltalake import write_deltalake

                write_deltalake(
                    delta,
                    delta.to_pyarrow_table(),
                    mode="overwrite",
                    schema_mode="merge",
                )
                updates = {}
                for name, value in values.items():
                    text = str(value).replace("'", "''")
                    updates[name] = f"COALESCE({q(name)}, '{text}')"
                delta.update(
                    updates=updates, predicate=" OR ".join(f"{q(name)} IS NULL" for name in values)
                )
            return int(count)

    def legacy_values(self, pipeline: Any, table: str, column: str, marker: str) -> list[str]:
        """See :meth:`Warehouse.legacy_values`: read from the Delta table's current version."""
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        with DELTA_LOCK:
            delta = self.delta_table(pipeline.dataset_name, table)
            if delta is None:
                return []
            present = {field.name for field in delta.schema().fields}
            if column not in present:
                return []
            dataset = delta.to_pyarrow_dataset()
            where = ds.field(marker).is_null() if marker in present else None
            values = dataset.to_table(columns=[column], filter=where).column(column)
        return sorted({str(v) for v in pc.unique(values).to_pylist() if v is not None})

    @contextlib.contextmanager
    def lock(self, source: str) -> Iterator[None]:
        """Before a source loads: the bucket answers and takes a write (a clear error now,
        not a half-finished load later). Two hosts must not load one source into one bucket at
        once: the lock that keeps runs apart is the local one (see docs/destinations/lake.md)."""
        self.preflight()
        yield

    # -- configuration and file access -----------------------------------------------------
    def client_config(self) -> Any:
        """dlt's resolved filesystem configuration (bucket and credentials)."""
        if self._config is None:
            from dlt.common.configuration import resolve_configuration
            from dlt.common.configuration.exceptions import ConfigFieldMissingException
            from dlt.destinations.impl.filesystem.configuration import (
                FilesystemDestinationClientConfiguration,
            )

            try:
                config = resolve_configuration(
                    FilesystemDestinationClientConfiguration()._bind_dataset_name("lake"),
                    sections=("destination", "filesystem"),
                    explicit_value={"bucket_url": self.bucket_url},
                )
            except ConfigFieldMissingException as exc:
                missing = ", ".join(exc.fields)
                if "credentials" in exc.fields:
                    raise DestinationError(
                        f"{redact(without_userinfo(self.bucket_url))}: the credentials are missing",
                        source=DESTINATION,
                        hint="set [destination.filesystem.credentials] in .dlt/secrets.toml "
                        "(S3: aws_access_key_id, aws_secret_access_key, and endpoint_url for an "
                        "S3-compatible server) or DESTINATION__FILESYSTEM__CREDENTIALS__...; "
                        "nothing was loaded",
                    ) from None
                raise DestinationError(
                    f"missing setting(s) {missing}",
                    source=DESTINATION,
                    hint="check [destination.filesystem] in .dlt/config.toml",
                ) from None
            except Exception as exc:
                raise DestinationError(
                    f"the filesystem settings do not resolve: {redact(exc)}",
                    source=DESTINATION,
                    hint="check [destination.filesystem] and [destination.filesystem.credentials] "
                    "in .dlt/secrets.toml (or DESTINATION__FILESYSTEM__CREDENTIALS__...)",
                ) from None
            register_credentials(config.credentials)
            self._config = config
        return self._config

    def storage_options(self) -> dict[str, str]:
        from dlt.common.libs.deltalake import deltalake_storage_options

        config = self.client_config()
        options = deltalake_storage_options(config.credentials, config.deltalake_storage_options)
        for value in options.values():
            register_secret(value) if looks_secret(value) else None
        return options

    def fs(self) -> tuple[Any, str]:
        from dlt.common.storages.fsspec_filesystem import fsspec_from_config

        return fsspec_from_config(self.client_config())

    def table_url(self, dataset: str, table: str) -> str:
        return f"{self.bucket_url}/{dataset}/{table}"

    def delta_table(self, dataset: str, table: str) -> Any:
        """The current version of a Delta table, or None."""
        from deltalake import DeltaTable

        url = self.table_url(dataset, table)
        options = {} if self.local else self.storage_options()
        if not DeltaTable.is_deltatable(url, options):
            return None
        return DeltaTable(url, storage_options=options)

    def preflight(self) -> None:
        """List the bucket and write then delete one small object: unreachable endpoints,
        missing credentials, unknown buckets and missing write permission fail here."""
        if self.local:
            self.prepare()
            probe = Path(self.bucket_url) / f".solarsync_probe_{uuid.uuid4().hex}"
            try:
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                raise DestinationError(
                    f"cannot write to {self.bucket_url}: {exc.strerror or exc}",
                    source=DESTINATION,
                    hint="check the path and its permissions (DESTINATION__FILESYSTEM__BUCKET_URL)",
                ) from None
            return
        fs, path = self.fs()
        where = redact(without_userinfo(self.bucket_url))
        probe = f"{path.rstrip('/')}/_solarsync_probe/{uuid.uuid4().hex}"
        step = "list"
        try:
            fs.ls(path.split("/", 1)[0] if "/" in path else path, detail=False)
            step = "write"
            fs.pipe_file(probe, b"")
            step = "delete"
            fs.rm_file(probe)
        except Exception as exc:
            raise bucket_error(exc, where, step) from None
        finally:
            fs.invalidate_cache()

    # -- dlt hooks -------------------------------------------------------------------------
    def adapt(self, source: Any) -> Any:
        """Every table a Delta table; time series (a primary key with ``polled_at`` or
        ``snapshot_at``) get a ``day`` column (UTC date of that timestamp), partitioned by it."""
        for resource in source.resources.values():
            hints = resource._hints  # dlt keeps resource hints there
            resource.apply_hints(table_format="delta")
            keys = hints.get("primary_key") or ()
            keys = [keys] if isinstance(keys, str) else list(keys)
            origin = next((c for c in TIME_COLUMNS if c in keys), None)
            if origin is not None and DAY_COLUMN not in (hints.get("columns") or {}):
                resource.apply_hints(
                    columns={
                        DAY_COLUMN: {
                            "name": DAY_COLUMN,
                            "data_type": "date",
                            "nullable": True,
                            "partition": True,
                            DAY_OF_HINT: origin,
                        }
                    }
                )
        return source

    def publish(
        self, pipeline: Any, source: str, *, views: str | None, batch: bool = False
    ) -> Publication:
        maintenance.maybe_optimize(self, pipeline, source)
        outcome = publish.publish_dataset(self, pipeline, source, views)
        return Publication(outcome.views, outcome.warnings)

    @contextlib.contextmanager
    def reader(self) -> Iterator[Reader | None]:
        if self.local:
            if not self.views_file.exists():
                yield None
                return
            connection = duckdb.connect(str(self.views_file), read_only=True)
        else:
            connection = publish.remote_reader_connection(self)
            if connection is None:
                yield None
                return
        try:
            yield Reader(connection)
        finally:
            connection.close()

    # -- maintenance -----------------------------------------------------------------------
    def datasets(self) -> list[str]:
        """Datasets (top-level folders) of the bucket that hold Delta tables: the sources'
        and the run history's (``solarsync``)."""
        if self.local:
            root = Path(self.bucket_url)
            found = {p.parent.parent.name for p in root.glob("*/*/_delta_log")}
        else:
            fs, path = self.fs()
            try:
                found = {
                    p.rstrip("/").split("/")[-3]
                    for p in fs.glob(f"{path.rstrip('/')}/*/*/_delta_log")
                }
            except FileNotFoundError:
                found = set()
            finally:
                fs.invalidate_cache()
        return sorted(name for name in found if not name.startswith("_"))

    def tables(self, dataset: str) -> list[str]:
        """The Delta tables of a dataset (folders with a ``_delta_log``)."""
        if self.local:
            root = Path(self.bucket_url) / dataset
            if not root.is_dir():
                return []
            return sorted(p.parent.name for p in root.glob("*/_delta_log"))
        fs, path = self.fs()
        try:
            found = fs.glob(f"{path.rstrip('/')}/{dataset}/*/_delta_log")
        except FileNotFoundError:
            return []
        return sorted(p.rstrip("/").split("/")[-2] for p in found)


def default_script_copy(bucket_url: str) -> Path:
    """``$DLT_DATA_DIR/solarsync/lake_views/<bucket>.sql``: per host, not per working dir."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", without_userinfo(bucket_url)).strip("-.")
    return Path(dlt.current.run_context().data_dir) / REMOTE_VIEWS_DIR / f"{slug}.sql"
