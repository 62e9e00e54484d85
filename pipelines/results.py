"""What a run of a source says: :class:`SourceResult` (and :class:`PollResult`), and the one
translation of an exception into what a user reads (:class:`Failure`)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.pipeline.exceptions import PipelineStepFailed

from pipelines.accounts import Account
from sources.common import SolarsyncError, redact, solarsync_error_in
from sources.common.accounts import DEFAULT

logger = logging.getLogger("solarsync")


@dataclass
class SourceResult:
    source: str
    #: the account this run synced (docs/accounts.md): ``default`` for ``[sources.<source>]``
    account: str = DEFAULT
    ok: bool = False
    error: str | None = None
    error_class: str | None = None  # the exception's class name, for the run history
    exit_code: int = 0
    duration_s: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    http: dict[str, int] = field(default_factory=dict)
    resumed_packages: int = 0
    load_ids: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    #: what an analyst should know about the load (e.g. a field that changed type)
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``solarknock``, or ``solarknock (account north)``."""
        return Account(self.source, self.account).label

    def fail(self, exc: BaseException) -> Failure:
        """Record ``exc`` as what ended this run (logged); returns the :class:`Failure`."""
        failure = Failure.of(self.source, exc, account=self.account)
        self.error, self.exit_code, self.error_class = (
            failure.message,
            failure.exit_code,
            failure.error_class,
        )
        logger.error("%s failed: %s", self.label, failure.message)
        logger.debug("%s failure details", self.label, exc_info=exc)
        return failure

    def warn(self, warnings: list[str]) -> None:
        """Add warnings not given yet (a poll publishes the same ones each batch)."""
        self.warnings.extend(w for w in warnings if w not in self.warnings)


@dataclass
class PollResult(SourceResult):
    polls: int = 0
    failed_polls: int = 0
    batches: int = 0
    stopped_by: str = ""  # "time" | "signal" | "error"
    poll_errors: list[str] = field(default_factory=list)
    load_errors: list[str] = field(default_factory=list)  # batches retried with the next


@dataclass(frozen=True)
class Failure:
    """An exception as a user reads it: the message (secrets redacted), the exit code and the
    error class recorded in the run history; ``known`` is solarsync's own error in it."""

    message: str
    exit_code: int
    error_class: str
    known: SolarsyncError | None

    @classmethod
    def of(cls, source: str, exc: BaseException, *, account: str = DEFAULT) -> Failure:
        """``account``: the message names it (and where its settings are), so a user with
        several accounts knows which one failed."""
        known = solarsync_error_in(exc)
        message = str(known) if known else describe_failure(source, exc, account=account)
        message = redact(name_account(message, Account(source, account)))
        return cls(
            message=message,
            exit_code=known.exit_code if known else 1,
            error_class=error_class(exc),
            known=known,
        )


def error_class(exc: BaseException) -> str:
    """The class name of the error that ended a run (inside dlt's step wrapper)."""
    known = solarsync_error_in(exc)
    if known is not None:
        return type(known).__name__
    if isinstance(exc, PipelineStepFailed) and exc.exception is not None:
        exc = exc.exception
    return type(exc).__name__


def name_account(message: str, account: Account) -> str:
    """``message`` naming ``account`` where it names the source (or in front of it), and where
    the account's settings are; the default account's messages are unchanged."""
    if account.is_default:
        return message
    if account.label not in message:
        if message.startswith(account.source):
            message = account.label + message[len(account.source) :]
        else:
            message = f"{account.label}: {message}"
    # a hint naming the source's settings names the account's
    source_env = f"SOURCES__{account.source.upper()}__"
    hinted = f"[sources.{account.source}]" in message or (
        source_env in message and account.env_prefix not in message
    )
    message = message.replace(f"[sources.{account.source}]", account.section)
    if account.env_prefix not in message:
        message = message.replace(source_env, account.env_prefix)
    if hinted:
        return message
    return (
        f"{message} (the account's settings: {account.section} in .dlt/secrets.toml, "
        f"{account.env_prefix}<KEY>)"
    )


def describe_failure(source: str, exc: BaseException, *, account: str = DEFAULT) -> str:
    """A failure that is not solarsync's own error, said so a user knows what to do."""
    if isinstance(exc, PipelineStepFailed) and isinstance(
        exc.exception, ConfigFieldMissingException
    ):
        exc = exc.exception
    text = str(exc)
    if "Could not set lock on file" in text:
        holder = re.search(r"Conflicting lock is held in (.+?) \(PID (\d+)\)", text)
        who = f" ({holder.group(1)}, PID {holder.group(2)})" if holder else ""
        file = re.search(r'Could not set lock on file "(.+?)"', text)
        return (
            f"{source}: the warehouse's working file {file.group(1) if file else ''} is "
            f"locked by another process{who}: a program opened it directly (BI tools open the "
            "published file, never the one in .solarsync/). Close it, then rerun: nothing was "
            "lost, a pending load is completed first"
        )
    if isinstance(exc, ConfigFieldMissingException):
        fields = ", ".join(exc.fields)
        where = Account(source, account)
        envs = ", ".join(f"{where.env_prefix}{f.upper()}" for f in exc.fields)
        return (
            f"{where.label}: missing setting(s) {fields}. Add them under {where.section} in "
            f".dlt/secrets.toml (see .dlt/secrets.toml.example) or set {envs}"
        )
    return f"{source}: {type(exc).__name__}: {exc}"


__all__ = [
    "Failure",
    "PollResult",
    "SourceResult",
    "describe_failure",
    "error_class",
    "name_account",
]
