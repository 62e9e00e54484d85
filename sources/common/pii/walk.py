"""Walking a row (and everything nested in it) and applying rules to its classified values.

Rows are changed in place (they are the run's own, freshly parsed): a value's key is removed
for ``drop``, its value replaced otherwise. Nested objects and lists are walked with their
path; an element of a list has the path of the list. What the names do not classify is still
looked at:

* a string that *is* an email address or a formatted phone number is protected as one (a
  field the API added under a name no pattern knows);
* a string holding JSON (``"[{\\"fileName\\": ...}]"``) is parsed, walked and written back;
* inside a field classified as personal (``"homeowner": {...}``), any other string is
  protected with that field's class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from sources.common.pii.classify import IDENTIFIER, SAFE, Classifier, Pii, snake
from sources.common.pii.rules import DROP, Handler
from sources.common.pii.values import address_parts, looks_like_email, looks_like_phone

_SCALARS = (str, int, float)


class Rules:  # the interface of ActionRules and TransitionRules
    def handler(self, pii: Pii) -> Handler | None: ...


#: ``on_found(table, path, pii, how)``: a value classified by a pattern or by its content
Found = Callable[[str, tuple[str, ...], Pii, str], None]


class Walker:
    def __init__(
        self,
        classifier: Classifier,
        rules: Rules,
        *,
        on_found: Found | None = None,
        address_keep: frozenset[str] = frozenset(),
    ) -> None:
        self.classifier = classifier
        self.rules = rules
        self.on_found = on_found
        self.address_keep = address_keep

    # -- rows -----------------------------------------------------------------------------------
    def row(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        self._object(table, (), row, None)
        return row

    def value(self, table: str, path: tuple[str, ...], value: Any) -> Any:
        """One stored value at ``path`` (a column, or a field of a nested column): the new
        value, ``DROP``, or the same object when nothing changes."""
        if value is None:
            return value
        return self._at(table, path, value, None, None, None)

    # -- walking --------------------------------------------------------------------------------
    def _object(
        self, table: str, prefix: tuple[str, ...], obj: dict[str, Any], inherited: Pii | None
    ) -> None:
        drops: list[str] = []
        extra: dict[str, Any] = {}
        for key, value in obj.items():
            if value is None:
                continue
            new = self._at(table, (*prefix, snake(key)), value, inherited, key, extra)
            if new is DROP:
                drops.append(key)
            elif new is not value:
                obj[key] = new
        for key in drops:
            del obj[key]
        for key, value in extra.items():
            obj.setdefault(key, value)

    def _at(
        self,
        table: str,
        path: tuple[str, ...],
        value: Any,
        inherited: Pii | None,
        key: str | None,
        extra: dict[str, Any] | None,
    ) -> Any:
        found = self.classifier.classify(table, path)
        if found is IDENTIFIER:
            return value
        if isinstance(found, Pii):
            if not self.classifier.declared_path(table, path) and self.on_found:
                self.on_found(table, path, found, "name")
            if found.kind == "address" and extra is not None and len(path) == 1:
                self._derive(table, key or path[0], value, extra)
            return self._apply(table, path, found, value)
        if isinstance(value, dict | list):
            return self._container(table, path, value, inherited)
        if found is SAFE or isinstance(value, bool):
            return value
        if inherited is not None and isinstance(value, _SCALARS):
            return self._scalar(inherited, value)
        if isinstance(value, str):
            return self._unnamed(table, path, value)
        return value

    def _apply(self, table: str, path: tuple[str, ...], pii: Pii, value: Any) -> Any:
        if isinstance(value, dict | list):
            handle = self.rules.handler(pii)
            if handle is not None and handle("") is DROP:  # "drop": the whole object goes
                return DROP
            return self._container(table, path, value, pii)
        return self._scalar(pii, value)

    def _scalar(self, pii: Pii, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        handle = self.rules.handler(pii)
        return value if handle is None else handle(value)

    def _container(
        self, table: str, path: tuple[str, ...], value: Any, inherited: Pii | None
    ) -> Any:
        if isinstance(value, dict):
            had = bool(value)
            self._object(table, path, value, inherited)
            # every field dropped: no empty object (Parquet cannot write a struct without
            # fields, and {} says nothing)
            return DROP if had and not value else value
        drops = []
        for index, item in enumerate(value):
            if item is None:
                continue
            if isinstance(item, dict | list):
                new = self._container(table, path, item, inherited)
            elif inherited is not None:
                new = self._scalar(inherited, item)
            elif isinstance(item, str):
                new = self._unnamed(table, path, item)
            else:
                continue
            if new is DROP:
                drops.append(index)
            elif new is not item:
                value[index] = new
        for index in reversed(drops):
            del value[index]
        return value

    def _unnamed(self, table: str, path: tuple[str, ...], value: str) -> Any:
        """A string under a name that says nothing: an email, a phone number or JSON?"""
        head = value[:1]
        if head in ("[", "{"):
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                return value
            if not isinstance(parsed, dict | list):
                return value
            before = orjson.dumps(parsed)
            self._container(table, path, parsed, None)
            after = orjson.dumps(parsed)
            return value if after == before else after.decode()
        if "@" in value and looks_like_email(value):
            pii = Pii(self.classifier.people(table), "email")
        elif (head.isdigit() or head in "+(") and looks_like_phone(value):
            pii = Pii(self.classifier.people(table), "phone")
        else:
            return value
        if self.on_found:
            self.on_found(table, path, pii, "value")
        return self._scalar(pii, value)

    def _derive(self, table: str, key: str, value: Any, extra: dict[str, Any]) -> None:
        """The kept parts of a declared one-line address as columns of their own
        (``address_city``, ``address_state``, ``address_zip``), whatever the action on the
        address itself."""
        if not isinstance(value, str) or not value.strip():
            return
        if not self.classifier.declared_path(table, (snake(key),)):
            return
        parts = address_parts(value)
        for part in ("city", "state", "zip"):
            if part in self.address_keep and parts.get(part):
                extra[f"{key}_{part}"] = parts[part]


__all__ = ["Found", "Walker"]
