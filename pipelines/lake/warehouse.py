"""``--destination filesystem``: every table a Delta table in a bucket (local path, s3://, gs://,
az://), plus a small DuckDB file of views for BI tools.

Configuration follows dlt's filesystem destination (``DESTINATION__FILESYSTEM__BUCKET_URL``,
``[destination.filesystem.credentials]``) and ``[solarsync.lake]`` for what solarsync adds:

- ``views_file``: the published DuckDB file of views (default ``<bucket>/_views.duckdb`` for a
  local bucket, relocatable with the lake); for a remote bucket, where the local copy of the
  views script goes (the script itself is kept in the bucket, ``<bucket>/_views/``; default copy
  ``$DLT_DATA_DIR/solarsync/lake_views/<bucket>.sql``, the same whatever the working dir);
- ``optimize_every``: compact and vacuum a source's tables after this many loads (default 50,
  0: never);
- ``vacuum_retention_hours``: how long files no longer in a table's current version stay
  (default 168 = 7 days: a views file or a reader that old still finds its files).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import dlt

from pipelines.destinations import Reader, Warehouse
from sources.common import DestinationError, redact, register_secret
from sources.common.blobstore import BlobRoot

logger = logging.getLogger("solarsync")

DEFAULT_BUCKET = Path("warehouse") / "lake"
#: under dlt's data dir: the local copy of a remote lake's views script, one per bucket
REMOTE_VIEWS_DIR = Path("solarsync") / "lake_views"
#: the folder of the bucket where sources keep files (lead attachments) by default
BLOB_FOLDER = "_blobs"
DEFAULT_OPTIMIZE_EVERY = 50
DEFAULT_RETENTION_HOURS = 168
DESTINATION = "destination filesystem"
#: primary-key columns that make a table a time series, partitioned by their UTC day
TIME_COLUMNS = ("polled_at", "snapshot_at")
DAY_COLUMN = "day"


def _config(key: str) -> Any:
    try:
        return dlt.config.get(key)
    except Exception:
        return None


def is_local(url: str) -> bool:
    scheme = urlsplit(url).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def local_path(url: str) -> Path:
    return Path(url[len("file://") :] if url.startswith("file://") else url)


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
    def from_config(cls) -> LakeWarehouse:
        """dlt's ``destination.filesystem.bucket_url`` (default ``warehouse/lake``) and
        ``[solarsync.lake]``."""
        bucket = _config("destination.filesystem.bucket_url") or DEFAULT_BUCKET
        every = _config("solarsync.lake.optimize_every")
        hours = _config("solarsync.lake.vacuum_retention_hours")
        return cls(
            bucket,
            views_file=_config("solarsync.lake.views_file"),
            optimize_every=DEFAULT_OPTIMIZE_EVERY if every is None else int(every),
            retention_hours=DEFAULT_RETENTION_HOURS if hours is None else int(hours),
        )

    def __repr__(self) -> str:
        return f"LakeWarehouse({self.describe()!r})"

    # -- what dlt loads into ---------------------------------------------------------------
    def dlt_destination(self) -> Any:
        from pipelines.lake.delta import filesystem

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
    def lock(self, source: str) -> Iterator[None]:
        """Before a source loads: the bucket answers and takes a write (a clear error now,
        not a half-finished load later). Two hosts must not load one source into one bucket at
        once: the lock that keeps runs apart is the local one (see README)."""
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
            _register_credentials(config.credentials)
            self._config = config
        return self._config

    def storage_options(self) -> dict[str, str]:
        from dlt.common.libs.deltalake import deltalake_storage_options

        config = self.client_config()
        options = deltalake_storage_options(config.credentials, config.deltalake_storage_options)
        for value in options.values():
            register_secret(value) if _looks_secret(value) else None
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
        from pipelines.lake.delta import DAY_OF_HINT

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

    def publish(self, pipeline: dlt.Pipeline, source: str) -> list[str]:
        from pipelines.lake.maintenance import maybe_optimize
        from pipelines.lake.publish import publish_views

        maybe_optimize(self, pipeline, source)
        return publish_views(self, pipeline, source)

    @contextlib.contextmanager
    def reader(self) -> Iterator[Reader | None]:
        import duckdb

        if self.local:
            if not self.views_file.exists():
                yield None
                return
            connection = duckdb.connect(str(self.views_file), read_only=True)
        else:
            from pipelines.lake.publish import remote_reader_connection

            connection = remote_reader_connection(self)
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
        from pipelines.history import DATASET_NAME as HISTORY
        from pipelines.registry import SOURCES

        return [name for name in (*SOURCES, HISTORY) if self.tables(name)]

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
    import re

    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", without_userinfo(bucket_url)).strip("-.")
    return Path(dlt.current.run_context().data_dir) / REMOTE_VIEWS_DIR / f"{slug}.sql"


def keep_credentials_out_of_traces() -> None:
    """dlt's trace (``trace.pickle`` in the pipeline dir) records every resolved setting, with
    the values of those not typed as secrets: ``aws_access_key_id`` is a plain ``str`` in dlt.
    Every value resolved under a ``credentials`` section is recorded as a secret (no value)."""
    from dlt.common.configuration.utils import TraceLogContext
    from dlt.common.typing import TSecretValue

    if getattr(TraceLogContext.log, "_solarsync", False):
        return
    original = TraceLogContext.log

    def log(self: Any, trace: Any) -> None:
        if "credentials" in (trace.sections or ()):
            trace = trace._replace(hint=TSecretValue)
        original(self, trace)

    log._solarsync = True  # type: ignore[attr-defined]
    TraceLogContext.log = log


def without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        return parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")).geturl()
    return url


def _looks_secret(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= 8 and not value.startswith(("http", "/"))


def _register_credentials(credentials: Any) -> None:
    """Mask every secret-looking credential value in logs and messages."""
    if credentials is None:
        return
    for name in (
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "azure_storage_account_key",
        "azure_storage_sas_token",
        "azure_client_secret",
        "private_key",
        "token",
        "client_secret",
        "refresh_token",
    ):
        value = getattr(credentials, name, None)
        if isinstance(value, str) and value:
            register_secret(value)


def bucket_error(exc: BaseException, where: str, step: str) -> DestinationError:
    """A clear message for a bucket that cannot be used (what happened, what to do)."""
    text = redact(f"{type(exc).__name__}: {exc}")
    lowered = text.lower()
    if (
        "nosuchbucket" in lowered
        or "bucket does not exist" in lowered
        or (isinstance(exc, FileNotFoundError) and step == "list")
    ):
        what, hint = (
            "the bucket does not exist",
            "create it, or fix DESTINATION__FILESYSTEM__BUCKET_URL",
        )
    elif (
        "credential" in lowered
        or "invalidaccesskeyid" in lowered
        or "signaturedoesnotmatch" in lowered
        # s3fs turns these into a PermissionError that keeps only S3's message
        or "signature we calculated does not match" in lowered
        or "access key id you provided does not exist" in lowered
        or "security token included in the request is invalid" in lowered
    ):
        what, hint = (
            "the credentials are missing or refused",
            "set [destination.filesystem.credentials] in .dlt/secrets.toml "
            "(aws_access_key_id, aws_secret_access_key, endpoint_url for S3-compatible servers)",
        )
    elif isinstance(exc, PermissionError) or "accessdenied" in lowered or "forbidden" in lowered:
        what, hint = (
            f"permission denied ({step})",
            "give these credentials list, read, write and delete rights on the bucket",
        )
    elif any(
        s in lowered
        for s in ("connect", "timeout", "timed out", "name or service", "unreachable", "refused")
    ):
        what, hint = (
            "the storage endpoint cannot be reached",
            "check the bucket URL, endpoint_url and the network, then rerun",
        )
    else:
        what, hint = (f"{step} failed", "check the bucket URL, credentials and permissions")
    return DestinationError(
        f"{where}: {what} ({text[:300]})",
        source=DESTINATION,
        hint=hint + "; nothing was loaded, the next run starts from the same checkpoint",
    )


def dump_json(path: Path, data: Any) -> None:
    temp = path.with_suffix(path.suffix + ".tmp")
    temp.write_text(json.dumps(data))
    os.replace(temp, path)
