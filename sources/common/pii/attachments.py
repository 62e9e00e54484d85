"""Attachment categories: which files of a homeowner are copied into the blob store.

A file's category comes from its name (user-supplied text: read before the name itself is
protected) and its MIME type, the first matching category in this order:

| category | built-in patterns |
|---|---|
| ``id_document`` | driver's licences, passports, ID cards, social security cards, selfies |
| ``contract`` | contracts, agreements, signed documents, proposals |
| ``bill`` | power and utility bills, invoices, statements |
| ``photo`` | any other ``image/*`` |
| ``other`` | everything else |

``[solarsync.pii.attachments]`` says ``download`` or ``skip`` per category; a skipped file is
recorded (``status`` = ``skipped``, its category, never its bytes), and a blob stored under an
earlier policy is deleted by ``solarsync pii apply`` or when its lead is next read. Defaults: ID documents are never downloaded; the other
categories follow ``contact``: downloaded unless contact data is dropped (the files of a
homeowner whose name, phone and email the warehouse does not hold are not kept either).
``[solarsync.pii.attachment_patterns]`` adds patterns per category (file-name globs, or MIME
patterns with a ``/``), tried before the built-in ones.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

from sources.common.errors import ConfigurationError

CATEGORIES = ("id_document", "contract", "bill", "photo", "other")
FILE_ACTIONS = ("download", "skip")
#: the key solarsync adds to each element of a list of attachments
CATEGORY_KEY = "file_category"

_BUILT_IN: dict[str, tuple[str, ...]] = {
    "id_document": (
        "*licen[cs]e*", "*passport*", "*id[ _-]card*", "*idcard*", "*identity*",
        "*identification*", "*social[ _-]security*", "ssn*", "*[ _.-]ssn*", "*selfie*", "*_id.*", "*-id.*",
        "* id.*", "id.*", "id_*", "*drivers*", "*driving*", "*dl_front*", "*dl_back*",
    ),
    "contract": (
        "*contract*", "*agreement*", "*signed*", "*signature*", "*proposal*", "*vertrag*",
        "*contrato*",
    ),
    "bill": (
        "*bill*", "*invoice*", "*statement*", "*utility*", "*electric*", "*rechnung*",
        "*factura*", "*recibo*",
    ),
    "photo": ("image/*",),
    "other": (),
}  # fmt: skip


def _compile(patterns: Any, category: str) -> list[tuple[bool, re.Pattern[str]]]:
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",") if p.strip()]
    out = []
    for pattern in patterns or ():
        text = str(pattern).strip().lower()
        if not text:
            continue
        is_mime = "/" in text
        out.append((is_mime, re.compile(fnmatch.translate(text))))
    return out


class AttachmentRules:
    """The category of a file and whether it is downloaded."""

    def __init__(
        self,
        actions: Mapping[str, str] | None,
        patterns: Mapping[str, Any] | None,
        *,
        contact: str = "hash",
    ) -> None:
        unknown = sorted(set(actions or {}) - set(CATEGORIES))
        unknown += sorted(set(patterns or {}) - set(CATEGORIES))
        if unknown:
            raise ConfigurationError(
                f"[solarsync.pii.attachments] names unknown categories {unknown}",
                hint=f"the categories are {', '.join(CATEGORIES)}",
            )
        default = "skip" if contact == "drop" else "download"
        self._actions = {c: default for c in CATEGORIES}
        self._actions["id_document"] = "skip"
        for category, action in (actions or {}).items():
            name = str(action).strip().lower()
            if name not in FILE_ACTIONS:
                raise ConfigurationError(
                    f"[solarsync.pii.attachments] {category} = {action!r}",
                    hint="each category takes download or skip",
                )
            self._actions[category] = name
        self._rules: list[tuple[str, bool, re.Pattern[str]]] = []
        for category, found in (patterns or {}).items():
            self._rules += [(category, m, p) for m, p in _compile(found, category)]
        for category in CATEGORIES:
            self._rules += [(category, m, p) for m, p in _compile(_BUILT_IN[category], category)]

    def category(self, file_name: Any, mime_type: Any) -> str:
        name = str(file_name or "").strip().lower().replace("\\", "/").rsplit("/", 1)[-1]
        mime = str(mime_type or "").split(";", 1)[0].strip().lower()
        for category, is_mime, pattern in self._rules:
            subject = mime if is_mime else name
            if subject and pattern.match(subject):
                return category
        return "other"

    def action(self, category: str | None) -> str:
        return self._actions.get(category or "other", self._actions["other"])

    def downloads(self, category: str | None) -> bool:
        return self.action(category) == "download"

    def actions(self) -> dict[str, str]:
        return dict(self._actions)

    def reason(self, category: str | None) -> str:
        return (
            f"{category or 'other'} files are never downloaded ([solarsync.pii.attachments] "
            f'{category or "other"} = "skip")'
        )


__all__ = ["CATEGORIES", "CATEGORY_KEY", "FILE_ACTIONS", "AttachmentRules"]
