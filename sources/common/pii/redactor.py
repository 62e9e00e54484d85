"""Applying the policy where rows come from the API, before anything else sees them.

Each source builds one :class:`Redactor` per run (its ``@dlt.source`` function) from its
declaration and calls it on the rows its resources produce, before they become Arrow tables,
poll-journal entries or dlt items: the raw values never reach dlt's extract files, load
packages, state, logs, the run history or a destination. ``protect(resources)`` does it for
resources that yield plain rows (a map step on each).

The redactor also keeps the data consistent with its policy across runs: the policy the
stored data was written under is recorded in the source's dlt state (``pii``, committed with
each load package), and a run whose configured policy differs fails before loading anything,
naming ``solarsync pii apply`` (which rewrites what is stored). Columns classified by a name
pattern or by their values (a field the API added) are recorded there too, with a warning the
first time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dlt
import pyarrow as pa

from sources.common.errors import ConfigurationError
from sources.common.pii.attachments import CATEGORY_KEY
from sources.common.pii.classify import IDENTIFIER, SAFE, Classifier, Declared, Pii, snake
from sources.common.pii.rules import DROP, ActionRules
from sources.common.pii.settings import CLASSES, Policy, describe, policy
from sources.common.pii.walk import Walker

logger = logging.getLogger("solarsync.pii")

STATE_KEY = "pii"


#: where a file's name and type are, in an element of a list of attachments (snake_case)
_FILE_NAME_KEYS = ("file_name", "filename", "original_file_name", "original_name",
                   "original_filename", "name", "title")  # fmt: skip
_MIME_KEYS = ("mime_type", "mimetype", "content_type", "media_type", "type")


class PolicyChangedError(ConfigurationError):
    """The configured policy is not the one the stored data was written under."""


def legacy_stamp(classes: Iterable[str], attachments: bool) -> dict[str, Any]:
    """What data written before solarsync protected personal data is: everything kept, every
    file downloaded."""
    out: dict[str, Any] = {"classes": {c: "keep" for c in sorted(set(classes) & set(CLASSES))}}
    if attachments:
        from sources.common.pii.attachments import CATEGORIES

        out["attachments"] = {c: "download" for c in CATEGORIES}
    return out


def differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between two stamps, for people (empty: the same policy)."""
    out = []
    was, now = stored.get("classes") or {}, current.get("classes") or {}
    for cls in sorted(now):
        if was.get(cls, "keep") != now[cls]:
            out.append(f"{cls}: {was.get(cls, 'keep')} -> {now[cls]}")
    hashed = [c for c in now if now[c] == "hash" and was.get(c) == "hash"]
    if hashed and stored.get("key") != current.get("key"):
        out.append("hash_key: another key")
    if hashed and stored.get("phone_country_code", current.get("phone_country_code")) != (
        current.get("phone_country_code")
    ):
        out.append("phone_country_code changed")
    if now.get("address", "keep") != "keep" and "address_keep" in stored:
        if sorted(stored["address_keep"]) != sorted(current.get("address_keep", [])):
            out.append(f"address_keep: {stored['address_keep']} -> {current.get('address_keep')}")
    if "attachments" in current and (stored.get("attachments") or {}) != current["attachments"]:
        changed = sorted(
            k for k, v in current["attachments"].items()
            if (stored.get("attachments") or {}).get(k, "download") != v
        )  # fmt: skip
        if changed:
            out.append(f"attachments: {', '.join(changed)}")
    return out


class Redactor:
    """The policy of one source run (see the module docstring)."""

    def __init__(self, source: str, declared: Declared, rules: Policy | None = None) -> None:
        self.source = source
        self.declared = declared
        self.policy = rules if rules is not None else policy()
        self.classifier = Classifier(declared, self.policy.overrides)
        self.rules = ActionRules(self.policy)
        self.walker = Walker(
            self.classifier,
            self.rules,
            on_found=self._found,
            address_keep=self.policy.address_keep,
        )
        # fail before anything is read when a declared class hashes without a key
        self.policy.require_key(self.classifier.classes())
        self._guarded = False
        self._reported: set[tuple[str, tuple[str, ...]]] = set()
        self._record: dict[str, Any] | None = None
        #: whether the pipeline held this source's state before this run, without a stamp:
        #: data loaded before solarsync protected personal data (taken now, before any
        #: resource of this run writes to the state)
        self._legacy = self._had_unstamped_state()

    # -- rows -----------------------------------------------------------------------------------
    def rows(self, table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A page of rows, protected in place."""
        self._guard()
        files = self.declared.attachments.get(table)
        for row in rows:
            if isinstance(row, dict):
                if files is not None:
                    self._categorize(row, files)
                self.walker.row(table, row)
        return rows

    def row(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        return self.rows(table, [row])[0]

    def item(self, table: str, item: Any) -> Any:
        """A resource's item: a row, a list of rows, an Arrow table; anything else (dlt's
        markers) as it is."""
        if isinstance(item, dict):
            return self.row(table, item)
        if isinstance(item, list):
            return self.rows(table, item)
        if isinstance(item, pa.Table):
            return self.arrow(table, item)
        data = getattr(item, "data", None)
        if isinstance(data, dict | list | pa.Table):  # dlt.mark.with_hints(...)
            protected = self.item(table, data)
            if protected is not data:
                return type(item)(item.meta, protected)
        return item

    def arrow(self, table: str, data: pa.Table) -> pa.Table:
        """An Arrow table: its classified columns (and those whose strings are emails or phone
        numbers, or nested values) through the same walk."""
        self._guard()
        for name in list(data.column_names):
            path = (snake(name),)
            found = self.classifier.classify(table, path)
            column = data.column(name)
            kind = column.type
            nested = (
                pa.types.is_struct(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind)
            )
            if found is IDENTIFIER or (found is SAFE and not nested):
                continue
            if found is None and not nested and not pa.types.is_string(kind):
                continue
            values = column.to_pylist()
            new = [None if v is None else self.walker.value(table, path, v) for v in values]
            new = [None if v is DROP else v for v in new]
            if all(a is b for a, b in zip(values, new, strict=True)):
                continue
            try:
                array = pa.array(new, type=kind)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                array = pa.array(new)
            index = data.column_names.index(name)
            data = data.set_column(index, pa.field(name, array.type), array)
        return data

    def map(self, table: str) -> Any:
        """A dlt map step protecting ``table``'s items (``resource.add_map(...)``)."""

        def protect_item(item: Any) -> Any:
            return self.item(table, item)

        return protect_item

    def protect(self, resources: Sequence[Any]) -> list[Any]:
        """Each resource with a map step that protects its rows (the resource's table)."""
        for resource in resources:
            resource.add_map(self.map(resource.table_name or resource.name))
        return list(resources)

    # -- attachments ----------------------------------------------------------------------------
    def _categorize(self, row: dict[str, Any], path: str) -> None:
        files = row.get(path)
        if isinstance(files, str) and files.strip()[:1] == "[":
            import orjson

            try:
                files = row[path] = orjson.loads(files)
            except orjson.JSONDecodeError:
                return
        if not isinstance(files, list):
            return
        rules = self.policy.attachments
        for element in files:
            if isinstance(element, dict) and CATEGORY_KEY not in element:
                keys = {snake(k): v for k, v in element.items()}
                name = next((keys[k] for k in _FILE_NAME_KEYS if keys.get(k)), None)
                mime = next((keys[k] for k in _MIME_KEYS if keys.get(k)), None)
                element[CATEGORY_KEY] = rules.category(name, mime)

    # -- the stored policy ----------------------------------------------------------------------
    def classes(self) -> set[str]:
        seen = {p.split(".")[0] for p in ((self._record or {}).get("columns") or {}).values()}
        return self.classifier.classes() | seen

    def stamp(self) -> dict[str, Any]:
        return self.policy.stamp(self.classes(), attachments=bool(self.declared.attachments))

    def _state(self) -> dict[str, Any] | None:
        try:
            return dlt.current.source_state()
        except Exception:  # iterated outside a pipeline (tests, a bare resource)
            return None

    def _had_unstamped_state(self) -> bool:
        from dlt.common.configuration.container import Container
        from dlt.common.pipeline import PipelineContext

        try:
            context = Container()[PipelineContext]
            if not context.is_active():  # a bare resource (tests): nothing stored
                return False
            state = context.pipeline().state.get("sources", {}).get(self.source)
        except Exception:
            return False
        if not isinstance(state, dict) or STATE_KEY in state:
            return False
        resources = state.get("resources") or {}
        return any(isinstance(r, dict) and r for r in resources.values())

    def _guard(self) -> None:
        if self._guarded:
            return
        self._guarded = True
        state = self._state()
        if state is None:
            self._record = {}
            return
        record = state.get(STATE_KEY)
        self._record = dict(record) if isinstance(record, dict) else {}
        current = self.stamp()
        if isinstance(record, dict) and isinstance(record.get("policy"), dict):
            stored = record["policy"]
        elif self._legacy:
            stored = legacy_stamp(self.classes(), bool(self.declared.attachments))
        else:
            stored = current  # a new pipeline: nothing stored yet
        changed = differences(stored, current)
        if changed:
            raise PolicyChangedError(
                f"the {self.source} data in the warehouse was written under another "
                f"personal-data policy ({describe(stored)}) than the one configured now "
                f"({describe(current)}: {'; '.join(changed)}); nothing was loaded",
                source=self.source,
                hint=f"run `solarsync pii apply {self.source}` to rewrite what is stored under "
                "the configured policy (docs/pii.md), or restore the previous [solarsync.pii] "
                "settings",
            )
        self._record["policy"] = current
        state[STATE_KEY] = self._record

    def _found(self, table: str, path: tuple[str, ...], pii: Pii, how: str) -> None:
        key = (table, path)
        if key in self._reported:
            return
        self._reported.add(key)
        name = f"{table}.{'.'.join(path)}"
        record = self._record if self._record is not None else {}
        columns = record.setdefault("columns", {})
        if columns.get(name) == str(pii):
            return
        new_class = pii.cls not in self.classes()
        columns[name] = str(pii)
        action = self.rules.action(pii)
        if new_class:  # from now on the stamp covers this class too
            self.policy.require_key([pii.cls])
            record["policy"] = self.stamp()
        why = "by its name" if how == "name" else "by its values (emails or phone numbers)"
        logger.warning(
            "%s: %s is not a declared column; classified %s as personal data (%s): %s, as "
            "[solarsync.pii] %s says (name it in [solarsync.pii.columns] to silence this)",
            self.source,
            name,
            why,
            pii,
            "kept as sent" if action.name == "keep" else f"{action} applied",
            pii.cls,
        )


def protect_rows(redactor: Redactor | None, table: str, rows: Any) -> Any:
    """``rows`` through ``redactor`` (None: as they are)."""
    return rows if redactor is None else redactor.item(table, rows)


__all__ = [
    "DROP",
    "STATE_KEY",
    "PolicyChangedError",
    "Redactor",
    "differences",
    "legacy_stamp",
    "protect_rows",
]
