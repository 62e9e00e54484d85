"""A bucket as solarsync uses it: local or remote, its URL without credentials, secrets kept out
of logs and dlt's trace, and clear errors for a bucket that cannot be used."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sources.common import DestinationError, redact, register_secret

DESTINATION = "destination filesystem"


def is_local(url: str) -> bool:
    scheme = urlsplit(url).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


def local_path(url: str) -> Path:
    return Path(url[len("file://") :] if url.startswith("file://") else url)


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


def looks_secret(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= 8 and not value.startswith(("http", "/"))


def register_credentials(credentials: Any) -> None:
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
