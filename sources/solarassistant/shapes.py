"""What SolarAssistant's answers look like: shape checks (run on every 2xx body by the shared
HTTP layer, a failure retried then raised), error messages, and proxy bodies read exactly."""

from __future__ import annotations

import json
from typing import Any

import orjson
from requests import Response

from sources.common.http import describe_error_envelope, json_object
from sources.solarassistant.settings import ORG_USERS_PATH, SITES_PATH, USER_PATH


class SentNumber(float):
    """A JSON number with a fraction or an exponent, kept with the text it was sent as
    (``12.50``, ``1e3``): a float everywhere, and ``value_text`` is that text."""

    text: str

    def __new__(cls, text: str) -> SentNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __reduce__(self) -> tuple[Any, ...]:
        return (SentNumber, (self.text,))


def _plain(value: Any) -> Any:
    if isinstance(value, SentNumber):
        return float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _row(item: Any) -> Any:
    """A row with its ``value`` as sent (a :class:`SentNumber`), every other number plain."""
    if not isinstance(item, dict):
        return _plain(item)
    return {
        key: value if key == "value" and isinstance(value, SentNumber) else _plain(value)
        for key, value in item.items()
    }


def loads_exactly(text: str) -> Any:
    """JSON read exactly: integers of any size stay integers (orjson turns those beyond 64
    bits into floats), a row's fractional ``value`` keeps its text; ``NaN``/``Infinity``
    literals are accepted."""
    body = json.loads(text, parse_float=SentNumber)
    return [_row(item) for item in body] if isinstance(body, list) else _row(body)


def _rows_problem(body: Any, required: str) -> str | None:
    if not isinstance(body, list):
        return f"expected a JSON array, got {type(body).__name__}"
    for index, row in enumerate(body):
        if not isinstance(row, dict):
            return f"row {index} is not an object"
        if row.get(required) is None:
            return f"row {index} has no {required!r}"
    return None


def error_in_body(body: Any) -> str | None:
    """The message of a 2xx body that is an error envelope (``{"error": ...}``), else None."""
    if isinstance(body, dict) and body.get("id") is None:
        error = body.get("error") or body.get("errors") or body.get("message")
        if error:
            return error if isinstance(error, str) else orjson.dumps(error).decode()
    return None


def validate_cloud(body: Any, endpoint: str) -> str | None:
    """Shape check of every 2xx cloud body (a failure is retried, then raised)."""
    parts = endpoint.strip("/").split("/")
    if parts == [ORG_USERS_PATH] and error_in_body(body):
        return None  # "no organization" said with a 200: org_users() raises it, unretried
    if parts == [USER_PATH] or (len(parts) == 2 and parts[0] == SITES_PATH):
        if not isinstance(body, dict) or body.get("id") is None:
            return "expected an object with an 'id'"
        return None
    if parts == [SITES_PATH] or parts == [ORG_USERS_PATH]:
        return _rows_problem(body, "id")
    if len(parts) == 3 and parts[2] == "users":
        return _rows_problem(body, "id")
    if len(parts) == 3 and parts[2] == "authorize":
        if not isinstance(body, dict):
            return f"expected an object, got {type(body).__name__}"
        missing = [k for k in ("host", "token", "site_key") if not isinstance(body.get(k), str)]
        return f"the authorization lacks {missing}" if missing else None
    return None


def validate_proxy(body: Any, endpoint: str) -> str | None:
    error = error_in_body(body)
    if error:  # e.g. {"error": "site offline"} with a 200: say what the proxy said
        return f"the proxy answered an error: {error}"
    return _rows_problem(body, "topic")


def describe_error(response: Response) -> tuple[str | None, str | None]:
    """The usual envelopes, plus the device API's ``{"errors": {"field": ["msg"]}}``."""
    code, message = describe_error_envelope(response)
    if message:
        return code, message
    errors = (json_object(response) or {}).get("errors")
    if isinstance(errors, dict):
        parts = [
            f"{k}: {', '.join(map(str, v if isinstance(v, list) else [v]))}"
            for k, v in errors.items()
        ]
        return code, "; ".join(parts) or None
    if isinstance(errors, list):
        return code, "; ".join(map(str, errors)) or None
    return code, None
