"""solarsync on Dagster: one multi-asset per source, a job and a schedule each.

The code location is this module (``pyproject.toml``'s ``[tool.dagster]`` names it, so
``dagster dev`` from the project directory finds it; elsewhere ``dagster dev -m
pipelines.dagster_defs``). Its ``defs`` is :func:`solarsync_definitions` with every setting
read from solarsync's configuration; a code location of your own can call it with arguments::

    # definitions.py
    from pipelines.dagster_defs import solarsync_definitions

    defs = solarsync_definitions(["solarknock", "heat"], destination="postgres")

Each asset runs :func:`pipelines.sync.run_source`: the same load step as ``solarsync run``, so
pending packages of a killed run are completed first, analytics views are published, and run
history is the same. What Dagster adds: the schedule, retries with back-off, one asset key per
table a source loads (``<source>/<table>``, :meth:`pipelines.registry.SourceSpec.loaded_tables`)
with row counts as metadata, and the run in its UI.

- **Which sources**: ``sources=[...]``, else ``[solarsync] dagster_sources`` (env
  ``SOLARSYNC__DAGSTER_SOURCES=solarknock,heat`` or ``all``), else the sources whose credentials
  the code server itself can see. The list never depends on credentials when it is given:
  a code server without secrets (secrets injected into run workers only) still defines every
  asset, and a run without them fails at once naming the missing setting. With no source at
  all, loading the definitions fails with an error that names the setting.
- **Where settings come from** (dlt's config providers, first match wins): environment
  variables, then ``<project dir>/.dlt/secrets.toml`` and ``config.toml``, then ``~/.dlt/``.
  The project directory (:func:`project_dir`) is ``DLT_PROJECT_DIR``, else the directory
  Dagster started in when it has a ``.dlt/`` folder, else solarsync's checkout (an editable
  install), else the directory Dagster started in.
- **Where the warehouse lands**: a relative DuckDB path (the default
  ``warehouse/solarsync.duckdb``, or ``DESTINATION__DUCKDB__CREDENTIALS``) is relative to the
  project directory, not to the directory Dagster happened to start in; an absolute path is
  used as is. Lead attachments land next to it (``warehouse/blobs/solarknock``).
- **Any worker**: dlt restores a pipeline's state (checkpoints) from the destination when the
  worker's local pipeline directory is empty, so give every worker the same shared destination
  (``SOLARSYNC__DESTINATION=postgres`` or ``filesystem`` with an ``s3://`` bucket), never the
  local DuckDB file. A retry on another worker re-extracts what the killed attempt had not
  loaded; loads are merges, so nothing is duplicated.
- **Retries**: 5xx, timeouts and 429 storms raise a retryable failure (3 retries, exponential
  back-off from 60 s, jitter); a rejected credential, a lapsed subscription, a missing or
  invalid setting fails at once without retries (no retry storm against an API that said no).
- **Schedules** run in ``[solarsync] dagster_timezone`` (``SOLARSYNC__DAGSTER_TIMEZONE``, an
  IANA name), by default the machine's own zone, as cron does; Dagster alone would use UTC.
- **Accounts** (docs/accounts.md): a source with named accounts (``[sources.<source>.accounts.
  <name>]``, as the code server's configuration names them) gets static partitions, one per
  account (``default`` is ``[sources.<source>]`` itself when it has credentials): a platform
  team backfills or retries one office by its partition, and the schedule requests a run per
  account. A source with the single configuration only stays unpartitioned.
- **Secrets** come from the worker's environment (``SOURCES__<SOURCE>__<KEY>``,
  ``DESTINATION__POSTGRES__CREDENTIALS``, ...) or the project's ``.dlt/secrets.toml``; they are
  never run config, never rendered, and every log line is scrubbed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import dlt
from dlt.common.configuration.container import Container
from dlt.common.configuration.specs.pluggable_run_context import PluggableRunContext

from pipelines import history, registry
from pipelines import settings as solarsync_settings
from pipelines.accounts import Account
from pipelines.accounts import configured as configured_accounts
from pipelines.destinations import resolve
from pipelines.destinations.duckdb import duckdb_path
from pipelines.results import SourceResult
from pipelines.settings import destination_kind
from pipelines.sync import run_source
from sources.common import ConfigurationError, install_log_redaction
from sources.common.errors import AuthenticationError
from sources.common.redact import RedactingFilter

logger = logging.getLogger("solarsync")

#: ``[solarsync] dagster_sources``: the sources the definitions hold (a list, ``"a,b"``, ``all``)
SOURCES_SETTING = "solarsync.dagster_sources"
#: ``[solarsync] dagster_timezone``: the schedules' time zone (IANA name)
TIMEZONE_SETTING = "solarsync.dagster_timezone"
DUCKDB_ENV = "DESTINATION__DUCKDB__CREDENTIALS"

#: when each source runs (cron, in :func:`schedule_timezone`): the registry's; ``[sources.<name>]
#: schedule`` overrides
DEFAULT_SCHEDULES: Mapping[str, str] = {
    name: spec.schedule for name, spec in registry.SOURCES.items()
}
#: exit codes of errors that another attempt cannot fix
NOT_RETRYABLE = {AuthenticationError.exit_code, ConfigurationError.exit_code}
#: errors (by class name) that another attempt cannot fix either: a setting dlt could not find
NOT_RETRYABLE_CLASSES = {"ConfigFieldMissingException", "ConfigurationException"}
RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

_redaction = RedactingFilter()
_CHECKOUT = Path(__file__).resolve().parents[1]
#: the project directory whose .dlt/ dlt's TOML providers were last (re)loaded from
_settings_read_from: str | None = None


def _env_name(key: str) -> str:
    return key.replace(".", "__").upper()


def _scrub_logs() -> None:
    """Secrets never reach Dagster's captured logs, whatever handler Dagster installed."""
    install_log_redaction()
    for name in ("solarsync", "dlt"):
        logger_ = logging.getLogger(name)
        if _redaction not in logger_.filters:
            logger_.addFilter(_redaction)
        install_log_redaction(*logger_.handlers)


def _project_settings() -> None:
    """Point dlt at the project directory (see :func:`project_dir`) when ``DLT_PROJECT_DIR`` is
    unset, and make dlt read its TOML files from there.

    dlt reads ``.dlt/*.toml`` once per process, from the project directory of that moment; a
    code location that asked dlt for a setting before (or a ``DLT_PROJECT_DIR`` set later)
    would go on reading another directory's files."""
    global _settings_read_from
    if not os.environ.get("DLT_PROJECT_DIR"):
        if Path(".dlt").is_dir():
            os.environ["DLT_PROJECT_DIR"] = str(Path.cwd())
        elif (_CHECKOUT / ".dlt" / "config.toml").exists():
            os.environ["DLT_PROJECT_DIR"] = str(_CHECKOUT)
    run_dir = str(Path(dlt.current.run_context().run_dir).resolve())
    if run_dir != _settings_read_from:
        Container()[PluggableRunContext].reload_providers()
        _settings_read_from = run_dir


def project_dir() -> Path:
    """The directory whose ``.dlt/`` dlt reads and against which relative paths resolve:
    ``DLT_PROJECT_DIR``; else the directory Dagster started in if it has a ``.dlt/``; else
    solarsync's checkout (editable install); else the directory Dagster started in."""
    _project_settings()
    return Path(dlt.current.run_context().run_dir).resolve()


def _duckdb_file() -> Path | None:
    """The DuckDB warehouse file as an absolute path (relative: under :func:`project_dir`)."""
    project = project_dir()  # first: the project's settings are the ones read below
    path = duckdb_path()
    if str(path) in (":memory:", ""):
        return None
    return path if path.is_absolute() else project / path


@contextlib.contextmanager
def _paths_in_project() -> Iterator[None]:
    """While a run executes: the DuckDB path (and with it the default blob directory next to
    it) absolute under the project directory, whatever directory the worker runs in."""
    path = _duckdb_file()
    previous = os.environ.get(DUCKDB_ENV)
    if path is not None:
        os.environ[DUCKDB_ENV] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(DUCKDB_ENV, None)
        else:
            os.environ[DUCKDB_ENV] = previous


def warehouse_location(destination: str | None = None) -> str:
    """Where runs load, for people: the DuckDB file's absolute path, or the destination kind
    (whose credentials may exist only where runs execute)."""
    kind = destination_kind(destination)
    if kind == "duckdb":
        path = _duckdb_file()
        return str(path) if path else ":memory:"
    return f"{kind} (DESTINATION__{kind.upper()}__... where runs execute)"


def _parse_sources(value: Any, origin: str) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ConfigurationError(
                    f"{origin} is not a list: {text!r}",
                    hint='e.g. solarknock,heat or ["solarknock", "heat"] or all',
                ) from None
        else:
            value = [part for part in re.split(r"[,\s]+", text) if part]
    if not isinstance(value, list | tuple):
        raise ConfigurationError(
            f"{origin} must be a list of source names, not {value!r}",
            hint='e.g. dagster_sources = ["solarknock", "heat"]',
        )
    names = [str(v).strip() for v in value if str(v).strip()]
    if names == ["all"]:
        return list(registry.SOURCES)
    unknown = [n for n in names if n not in registry.SOURCES]
    if unknown:
        raise ConfigurationError(
            f"{origin} names unknown source(s) {unknown}",
            hint=f"choose from {', '.join(registry.SOURCES)} (or all)",
        )
    return list(dict.fromkeys(names))


def dagster_sources(sources: Sequence[str] | None = None) -> tuple[list[str], str]:
    """The sources the definitions hold, and where that list came from: ``sources``, else
    ``[solarsync] dagster_sources``, else the sources whose credentials this process sees."""
    if sources is not None:
        return _parse_sources(list(sources), "solarsync_definitions(sources=...)"), "argument"
    configured = solarsync_settings.solarsync().dagster_sources
    if configured not in (None, "", []):
        origin = f"[solarsync] dagster_sources ({_env_name(SOURCES_SETTING)})"
        return _parse_sources(configured, origin), origin
    detected = [spec.name for spec in registry.configured()]
    return detected, "the credentials visible to this process"


def machine_timezone() -> str:
    """The machine's IANA time zone (``TZ``, ``/etc/timezone``, ``/etc/localtime``), as cron
    uses it; UTC when none can be named."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    with contextlib.suppress(OSError):
        candidates.append(os.path.realpath("/etc/localtime"))
    for candidate in candidates:
        if "zoneinfo/" in candidate:
            candidate = candidate.split("zoneinfo/", 1)[1]
        if candidate and _is_zone(candidate):
            return candidate
    return "UTC"


def _is_zone(name: str) -> bool:
    if name.startswith("/") or name.startswith("."):
        return False
    try:
        ZoneInfo(name)
    except Exception:
        return False
    return True


def schedule_timezone(timezone: str | None = None) -> str:
    """``timezone``, else ``[solarsync] dagster_timezone``, else :func:`machine_timezone`."""
    value = timezone or solarsync_settings.solarsync().dagster_timezone
    if value in (None, ""):
        return machine_timezone()
    value = str(value).strip()
    if not _is_zone(value):
        raise ConfigurationError(
            f"[solarsync] dagster_timezone ({_env_name(TIMEZONE_SETTING)}) = {value!r} is not "
            "an IANA time zone",
            hint="e.g. UTC, Europe/Berlin, America/Los_Angeles",
        )
    return value


def _schedule(source: str) -> str:
    configured = solarsync_settings.source_run(source).schedule
    return str(configured or registry.get(source).schedule)


def _retryable(result: SourceResult) -> bool:
    return result.exit_code not in NOT_RETRYABLE and result.error_class not in NOT_RETRYABLE_CLASSES


def _materializations(
    spec: registry.SourceSpec, tables: Sequence[str], result: SourceResult, where: str
):
    for table in tables:
        change = result.changes.get(table, {})
        metadata: dict[str, Any] = {"rows_loaded": result.rows.get(table, 0)}
        metadata.update({k: v for k, v in change.items() if k in ("new", "updated", "deleted")})
        metadata["warehouse"] = where
        yield dg.MaterializeResult(asset_key=[spec.name, table], metadata=metadata)


def account_partitions(name: str) -> dg.StaticPartitionsDefinition | None:
    """One partition per account of source ``name`` when it has named accounts (the names
    this process's configuration holds); None: the single configuration, no partitions."""
    spec = registry.get(name)
    if not spec.has_named():
        return None
    return dg.StaticPartitionsDefinition([a.name for a in configured_accounts(spec)])


def source_assets(
    name: str, destination: str | None = None, retry_policy: dg.RetryPolicy = RETRY_POLICY
) -> dg.AssetsDefinition:
    """The multi-asset that syncs source ``name``: one asset key per table it loads;
    partitioned by account when the source has named accounts (:func:`account_partitions`)."""
    spec = registry.get(name)
    tables = spec.loaded_tables()
    partitions = account_partitions(name)

    @dg.multi_asset(
        name=f"solarsync_{name}",
        specs=[
            dg.AssetSpec(
                key=[name, table],
                group_name=name,
                kinds={"dlt"},
                description=f"{name}.{table}, loaded by solarsync",
                metadata={"dagster/table_name": f"{name}.{table}"},
            )
            for table in tables
        ],
        retry_policy=retry_policy,
        op_tags={"solarsync/source": name},
        partitions_def=partitions,
    )
    def _sync(context):  # no annotation: dagster reads it at runtime (postponed here)
        _scrub_logs()
        account = Account(name, context.partition_key) if partitions else Account(name)
        with _paths_in_project():
            warehouse = resolve(destination)
            where = warehouse.describe()
            context.log.info("solarsync: %s -> %s", account.label, where)
            result = run_source(spec, warehouse, account=account)
            history.load_into(warehouse)  # the run's row, journaled by run_source, into analytics
        for warning in result.warnings:
            context.log.warning("%s: %s", name, warning)
        if not result.ok:
            retryable = _retryable(result)
            description = result.error or f"{name} failed"
            if not retryable and result.exit_code != AuthenticationError.exit_code:
                description += (
                    f" (Dagster: settings are read where the run executes: its environment, "
                    f"or .dlt/ in {project_dir()})"
                )
            raise dg.Failure(
                description=description,
                metadata={"exit_code": result.exit_code, **result.http},
                allow_retries=retryable,
            )
        unexpected = sorted(set(result.rows) - set(tables))
        if unexpected:  # a table the source does not declare: no asset key to report it on
            context.log.warning(
                "%s loaded table(s) without an asset key: %s (rows: %s)",
                name,
                ", ".join(unexpected),
                {t: result.rows[t] for t in unexpected},
            )
        yield from _materializations(spec, tables, result, where)

    return _sync


def solarsync_definitions(
    sources: Sequence[str] | None = None,
    destination: str | None = None,
    schedules: Mapping[str, str] | None = None,
    timezone: str | None = None,
    retry_policy: dg.RetryPolicy = RETRY_POLICY,
) -> dg.Definitions:
    """Assets, a job and a schedule per source.

    Args:
        sources: the sources (default: ``[solarsync] dagster_sources``, else the sources whose
            credentials this process can see). Their assets exist whether or not their
            credentials resolve here; a run needs them where it executes.
        destination: ``duckdb``, ``postgres`` or ``filesystem`` (default:
            ``SOLARSYNC__DESTINATION`` / ``[solarsync] destination``, else duckdb).
        schedules: cron per source (default: ``[sources.<name>] schedule``, else
            :data:`DEFAULT_SCHEDULES`).
        timezone: the schedules' IANA time zone (default: :func:`schedule_timezone`).
        retry_policy: for failures another attempt may fix (default: :data:`RETRY_POLICY`).
    """
    _project_settings()
    names, origin = dagster_sources(sources)
    if not names:
        message = (
            "no sources for Dagster: [solarsync] dagster_sources is not set and this process "
            "(the Dagster code server) sees no source's credentials"
        )
        hint = (
            f"List them where the code server runs: {_env_name(SOURCES_SETTING)}=solarknock,heat "
            f'(or all), or dagster_sources = ["solarknock"] under [solarsync] in '
            f"{project_dir() / '.dlt' / 'config.toml'}, or solarsync_definitions(sources=[...]); "
            "credentials are needed only where runs execute"
        )
        logger.error("solarsync: %s. %s", message, hint)
        raise ConfigurationError(message, hint=hint)
    zone = schedule_timezone(timezone)
    where = warehouse_location(destination)
    log = logger.warning if origin.startswith("the credentials") else logger.info
    log(
        "solarsync: Dagster assets for %s (from %s%s); warehouse %s; schedules in %s",
        ", ".join(names),
        origin,
        f"; set {_env_name(SOURCES_SETTING)} to list them explicitly"
        if origin.startswith("the credentials")
        else "",
        where,
        zone,
    )
    assets, jobs, scheduled = [], [], []
    for name in names:
        asset = source_assets(name, destination, retry_policy)
        job = dg.define_asset_job(
            f"solarsync_{name}_job",
            selection=dg.AssetSelection.assets(asset),
            description=f"solarsync run {name} (into {where})",
        )
        cron = (schedules or {}).get(name) or _schedule(name)
        assets.append(asset)
        jobs.append(job)
        partitions = asset.partitions_def
        if partitions is None:
            scheduled.append(
                dg.ScheduleDefinition(
                    name=f"solarsync_{name}_schedule",
                    job=job,
                    cron_schedule=cron,
                    execution_timezone=zone,
                    description=f"{cron} in {zone}",
                )
            )
        else:
            scheduled.append(_per_account_schedule(name, job, partitions, cron, zone))
    return dg.Definitions(assets=assets, jobs=jobs, schedules=scheduled)


def _per_account_schedule(
    name: str, job: Any, partitions: Any, cron: str, zone: str
) -> dg.ScheduleDefinition:
    """A run per account (partition) at each tick: one account's failure is its own run's."""

    @dg.schedule(
        name=f"solarsync_{name}_schedule",
        job=job,
        cron_schedule=cron,
        execution_timezone=zone,
        description=f"{cron} in {zone}, a run per account",
    )
    def _tick(context):
        try:
            stamp = context.scheduled_execution_time.isoformat()
        except Exception:  # evaluated by hand (no tick): a run per account all the same
            stamp = "manual"
        for key in partitions.get_partition_keys():
            yield dg.RunRequest(run_key=f"{key}@{stamp}", partition_key=key)

    return _tick


@dg.definitions
def defs() -> dg.Definitions:
    """The code location ``dagster dev`` loads (``[tool.dagster]`` in pyproject.toml, or
    ``dagster dev -m pipelines.dagster_defs``): every setting from solarsync's configuration."""
    return solarsync_definitions()
