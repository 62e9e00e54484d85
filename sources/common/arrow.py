"""JSON pages -> Arrow tables with column types that stay stable across pages and runs.

Yielding Arrow tables lets dlt skip its row-by-row Python normalizer (the slowest step of a
large sync) and write Parquet straight to the destination. What dlt's JSON normalizer would
otherwise do, done here per page and vectorised:

* every key of every row becomes a column (``pa.array`` unions the keys of all rows);
* ``*_at`` strings become ``timestamp[us, UTC]``, ``date``/``*_date`` strings become ``date32``
  (when every value parses; otherwise they stay text);
* nested lists and objects are kept whole: dlt loads them as JSON columns (DuckDB ``JSON``),
  so a nested field added by the API never breaks a load;
* a column keeps the type it first landed with (read back from the dlt schema, so across runs
  too, or declared by the source): ``null`` and ``int`` pages are cast up to a known
  ``double``/``text``; a value that does not fit (``2.5`` in a ``bigint`` column, text in a
  timestamp column, an object in a ``double`` column) goes to a variant column
  ``<name>__v_<type>``, as dlt itself does, and is reported once per column. Within one page
  too: a page whose column mixes objects or lists with numbers or text keeps each value in its
  own kind (the numbers in the column, the objects in ``<name>__v_json``, or the other way
  round when the column holds nested values).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

logger = logging.getLogger("solarsync.arrow")

TIMESTAMP = pa.timestamp("us", tz="UTC")

#: dlt data types <-> the Arrow types this module produces for them
_ARROW_OF_DLT: dict[str, pa.DataType] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": TIMESTAMP,
    "date": pa.date32(),
}
_DLT_OF_ARROW = {str(v): k for k, v in _ARROW_OF_DLT.items()}


def _is_nested(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_struct(t)


def _dlt_type(t: pa.DataType) -> str:
    if _is_nested(t):
        return "json"
    return _DLT_OF_ARROW.get(str(t), "text")


def default_temporal_kind(name: str) -> str | None:
    """``timestamp`` for ``*_at`` columns, ``date`` for ``date`` and ``*_date`` columns."""
    if name.endswith("_at"):
        return "timestamp"
    if name == "date" or name.endswith("_date"):
        return "date"
    return None


class _Split:
    """A page's column whose values mix nested ones (objects, lists) with scalars: the two
    kinds as two arrays of the page's length (NULL where the other kind is)."""

    def __init__(self, scalars: pa.Array, nested: pa.Array, nested_first: bool) -> None:
        self.scalars, self.nested, self.nested_first = scalars, nested, nested_first


class PageConverter:
    """One per table and run. ``known`` returns the dlt schema's columns of the table."""

    def __init__(
        self,
        table: str,
        *,
        known: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None,
        temporal_kind: Callable[[str], str | None] = default_temporal_kind,
        drop: Sequence[str] = (),
        always: Sequence[str] = (),
    ) -> None:
        """``always``: columns every page has, as typed nulls when its rows lack them (so e.g.
        ``deleted_at`` exists, typed, before the first deletion)."""
        self.table = table
        self._known = known
        self._temporal_kind = temporal_kind
        self._drop = set(drop)
        self._always = tuple(always)
        self._types: dict[str, pa.DataType] | None = None  # column -> Arrow type landed
        self._reported: set[str] = set()

    def __call__(self, rows: Sequence[Mapping[str, Any]], not_null: Sequence[str] = ()) -> pa.Table:
        """One page as a table; ``not_null`` columns (the primary key, already checked) are
        declared non-nullable, as dlt declares key columns."""
        if self._types is None:
            self._types = self._seed_types()
        columns: dict[str, pa.Array] = {}
        found = self._columns(rows)
        for name in self._always:
            found.setdefault(name, pa.nulls(len(rows)))
        for name, array in found.items():
            if name in self._drop:
                continue
            fitted = (
                self._fit_split(name, array)
                if isinstance(array, _Split)
                else self._fit(name, array)
            )
            for out_name, out_array in fitted:
                columns[out_name] = out_array
        schema = pa.schema(
            pa.field(name, array.type, nullable=name not in not_null)
            for name, array in columns.items()
        )
        return pa.table(columns, schema=schema)

    # -- building -------------------------------------------------------------------------
    def _columns(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, pa.Array]:
        try:
            struct = pa.array(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return self._columns_one_by_one(rows)
        if not pa.types.is_struct(struct.type):
            raise TypeError(f"{self.table}: rows are not objects")
        return {struct.type.field(i).name: struct.field(i) for i in range(struct.type.num_fields)}

    def _columns_one_by_one(
        self, rows: Sequence[Mapping[str, Any]]
    ) -> dict[str, pa.Array | _Split]:
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        out: dict[str, pa.Array | _Split] = {}
        for name in names:
            values = [row.get(name) for row in rows]
            try:
                out[name] = pa.array(values)
                continue
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                pass
            split = self._split(name, values)
            out[name] = split if split is not None else self._as_text(name, values)
        return out

    def _split(self, name: str, values: list[Any]) -> _Split | None:
        """Objects/lists and scalars of one column as two arrays, or None when the column
        does not mix those two kinds (or its objects do not make one Arrow type)."""
        kinds = [isinstance(v, dict | list) for v in values if v is not None]
        if all(kinds) or not any(kinds):
            return None
        nested = [v if isinstance(v, dict | list) else None for v in values]
        scalars = [None if isinstance(v, dict | list) else v for v in values]
        try:
            nested_array = pa.array(nested)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        try:
            scalar_array = pa.array(scalars)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            scalar_array = self._as_text(name, scalars)
        return _Split(scalar_array, nested_array, nested_first=kinds[0])

    def _as_text(self, name: str, values: list[Any]) -> pa.Array:
        """Mixed kinds in one page (e.g. numbers and text): every value kept, as text."""
        self._report(name, "mixes value types within a page; loaded as text")
        return pa.array(
            [v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values],
            pa.string(),
        )

    # -- type stability -------------------------------------------------------------------
    def _seed_types(self) -> dict[str, pa.DataType]:
        types: dict[str, pa.DataType] = {}
        for name, column in (self._known() if self._known else {}).items():
            data_type = column.get("data_type")
            if data_type in _ARROW_OF_DLT and "__v_" not in name:
                types[name] = _ARROW_OF_DLT[data_type]
            elif data_type == "json":
                types[name] = pa.list_(pa.null())  # any nested shape
        return types

    def _fit(self, name: str, array: pa.Array) -> list[tuple[str, pa.Array]]:
        assert self._types is not None
        if _is_nested(array.type):
            array = _without_null_items(array)
        known = self._types.get(name)
        if known is None:
            array = self._temporal(name, array)
            if not pa.types.is_null(array.type):
                self._types[name] = array.type
            return [(name, array)]
        if _is_nested(known):
            if _is_nested(array.type) or pa.types.is_null(array.type):
                return [(name, array)]
            return self._variant(name, array, known)
        if array.type == known or pa.types.is_null(array.type):
            return [(name, array.cast(known) if pa.types.is_null(array.type) else array)]
        fitted = _try_cast(array, known)
        if fitted is not None:
            return [(name, fitted)]
        return self._variant(name, array, known)

    def _fit_split(self, name: str, split: _Split) -> list[tuple[str, pa.Array]]:
        """The column keeps the kind it has (or, new, the kind of its first value); the
        other kind goes to its variant column, as across pages."""
        assert self._types is not None
        known = self._types.get(name)
        nested_owns = _is_nested(known) if known is not None else split.nested_first
        if nested_owns:
            kind = _dlt_type(split.scalars.type)
            self._report(
                name, f"holds nested values and now has {kind} values: those land in "
                f"{name}__v_{kind}",
            )  # fmt: skip
            return [*self._fit(name, split.nested), (f"{name}__v_{kind}", split.scalars)]
        described = _dlt_type(known) if known is not None else "scalar"
        self._report(name, f"was {described} and now has json values: those land in {name}__v_json")
        nested = _without_null_items(split.nested)
        return [*self._fit(name, split.scalars), (f"{name}__v_json", nested)]

    def _temporal(self, name: str, array: pa.Array) -> pa.Array:
        if not (pa.types.is_string(array.type) or pa.types.is_null(array.type)):
            return array
        kind = self._temporal_kind(name)
        if kind is None:
            return array  # an all-null column of unknown kind stays untyped (dlt skips it)
        cast = _try_cast(array, TIMESTAMP if kind == "timestamp" else pa.date32())
        return array if cast is None else cast

    def _variant(
        self, name: str, array: pa.Array, known: pa.DataType
    ) -> list[tuple[str, pa.Array]]:
        """Values that fit the known type stay in the column; the others go to a variant."""
        kind = _dlt_type(array.type)
        fitted = _try_cast(array, known, safe_per_value=True)
        fits = pc.is_valid(fitted) if fitted is not None else pa.array([False] * len(array))
        self._report(
            name,
            f"was {_dlt_type(known)} and now has {kind} values: those land in {name}__v_{kind}",
        )
        stay = (
            pc.if_else(fits, fitted, pa.nulls(len(array), known))
            if fitted is not None
            else pa.nulls(len(array), known)
        )
        moved = pc.if_else(fits, pa.nulls(len(array), array.type), array)
        return [(name, stay), (f"{name}__v_{kind}", moved)]

    def _report(self, name: str, what: str) -> None:
        if name not in self._reported:
            self._reported.add(name)
            logger.warning("%s.%s %s", self.table, name, what)


def _without_null_items(array: pa.Array) -> pa.Array:
    """``list<null>`` (only empty lists so far) stays nested but typed as a list of strings."""
    if pa.types.is_list(array.type) and pa.types.is_null(array.type.value_type):
        return array.cast(pa.list_(pa.string()))
    return array


def _try_cast(
    array: pa.Array, target: pa.DataType, safe_per_value: bool = False
) -> pa.Array | None:
    """``array`` as ``target`` without losing a value, or None. With ``safe_per_value`` the
    values that do not fit become null instead (the caller moves them to a variant)."""
    if pa.types.is_floating(array.type) and pa.types.is_integer(target):
        whole = pc.equal(pc.floor(array), array)
        if not safe_per_value and not pc.all(pc.or_kleene(whole, pc.is_null(array))).as_py():
            return None
        return pc.if_else(whole, array, None).cast(target)
    if pa.types.is_string(array.type) and target in (TIMESTAMP, pa.date32()):
        try:
            return array.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        # the slow path, only for what Arrow's ISO parser refuses: naive times (taken as UTC),
        # dates as timestamps, nanoseconds
        parse = _parse_timestamp if target == TIMESTAMP else _parse_date
        values = [None if v is None else parse(v) for v in array.to_pylist()]
        failed = sum(
            1 for v, p in zip(array.to_pylist(), values, strict=True) if v is not None and p is None
        )
        if failed and not safe_per_value:
            return None
        return pa.array(values, target)
    if pa.types.is_string(target) and (
        pa.types.is_integer(array.type)
        or pa.types.is_floating(array.type)
        or pa.types.is_boolean(array.type)
    ):
        return array.cast(target)
    if pa.types.is_integer(array.type) and pa.types.is_floating(target):
        return array.cast(target)
    if (
        safe_per_value
        and pa.types.is_string(array.type)
        and (pa.types.is_floating(target) or pa.types.is_integer(target))
    ):
        # numeric text ("12.50") stays in a number column, the rest goes to the variant
        return pa.array([_number_of(v, target) for v in array.to_pylist()], target)
    if pa.types.is_timestamp(array.type) and target == pa.string():
        return pc.strftime(array, "%Y-%m-%dT%H:%M:%S.%fZ")
    try:
        return array.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None if not safe_per_value else pa.nulls(len(array), target)


def _number_of(value: str | None, target: pa.DataType) -> float | int | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if pa.types.is_integer(target):
        return int(number) if number.is_integer() else None
    return number


_NANOS = re.compile(r"(\.\d{6})\d+")


def _parse_timestamp(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(_NANOS.sub(r"\1", value.strip()))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None
