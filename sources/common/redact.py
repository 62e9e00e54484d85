"""Secret redaction: every secret a source touches is registered here, once, and scrubbed from
log records and from any text the CLI prints.

Registration is process-wide on purpose: a secret seen by one client must be masked in every
log line, whoever emits it (dlt's own REST client logs headers at DEBUG level).
"""

from __future__ import annotations

import logging
import threading

MASK = "***"
_MIN_SECRET_LEN = 4  # shorter values would mask ordinary words

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def register_secret(value: object) -> None:
    """Mask ``value`` (and its form without an ``sk_``-style prefix) from now on."""
    global _secrets
    if not isinstance(value, str) or len(value) < _MIN_SECRET_LEN:
        return
    forms = {value}
    if "_" in value[:4]:  # keys like sk_ABC are accepted bare too: mask both spellings
        bare = value.split("_", 1)[1]
        if len(bare) >= _MIN_SECRET_LEN:
            forms.add(bare)
    with _lock:
        # longest first, so a secret containing another is masked whole
        _secrets = tuple(sorted(set(_secrets) | forms, key=len, reverse=True))


def registered_secrets() -> tuple[str, ...]:
    return _secrets


def redact(text: object) -> str:
    """``text`` as a string with every registered secret replaced by ``***``."""
    out = text if isinstance(text, str) else str(text)
    for secret in _secrets:
        if secret in out:
            out = out.replace(secret, MASK)
    return out


class RedactingFilter(logging.Filter):
    """Formats the record's message early and scrubs secrets from it and from the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix; leave it alone
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_filter = RedactingFilter()


def install_log_redaction(*handlers: logging.Handler) -> None:
    """Attach the filter to the given handlers, or to every handler of the root logger."""
    targets = handlers or tuple(logging.getLogger().handlers)
    for handler in targets:
        if _filter not in handler.filters:
            handler.addFilter(_filter)
