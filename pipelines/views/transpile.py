"""The views files, written in DuckDB's dialect, for another dialect (sqlglot), with what sqlglot
leaves to us done here, generically (not tuned to one view's text):

- ``* EXCLUDE (...) REPLACE (...)`` and ``QUALIFY``: stars are expanded with the real columns
  (sqlglot's ``qualify`` over a schema read from the destination's ``information_schema``);
- ``unnest(from_json(col, '[{"field": "TYPE", ...}]')) AS a`` and ``a.field``: one row per
  element of a JSON array, fields read with ``->>`` and cast to their declared types;
- ``CAST(json AS T[])``: an array built from the JSON array's elements (NULL stays NULL);
  ``[]``: an empty array of the type next to it;
- JSON functions get their argument as ``json`` (dlt's Postgres columns are ``jsonb``);
- ``GROUP BY ALL``: the positions of the projections that are not aggregates;
- ``CREATE MACRO name(p, q := NULL) AS TABLE <select>``: a set-returning SQL function
  (:func:`render_macro`; parameter types from what they are compared with).

A statement reading tables or columns the destination does not have yet raises
:class:`MissingTables` / :class:`MissingColumns` (:func:`pipelines.views.publish_views` skips
it, or keeps the view as it was). A construct none of this covers fails the test that creates
every view on every destination (``tests/pipelines/test_views_everywhere.py``); only then does
a per-dialect file ``warehouse/views/<dialect>/<source>.sql`` replace the source's file for
that dialect.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.schema import MappingSchema

logger = logging.getLogger("solarsync")

_VIEW_NAME = re.compile(r"\bVIEW\s+([\w.]+)", re.I)
_MACRO = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?MACRO\s+([\w.]+)\s*"
    r"\((.*?)\)\s+AS\s+TABLE\s+(.*)$",
    re.I | re.S,
)
_JSON_TYPES = (exp.DataType.Type.JSON, exp.DataType.Type.JSONB)


# --------------------------------------------------------------------------- transpiling
class MissingTables(Exception):
    """A statement reads tables the destination does not have yet (skipped until they exist)."""

    def __init__(self, tables: list[str]) -> None:
        super().__init__(", ".join(tables))
        self.tables = tables


class MissingColumns(MissingTables):
    """A statement reads columns its tables do not have yet (``schema.table.column``): a
    column the source declares appears with the table's next load; until then the view is
    left as it was."""


@dataclass
class Macro:
    """A DuckDB table macro as a set-returning function of another dialect."""

    name: str
    params: list[str]
    defaults: dict[str, str]
    #: parameter -> type in the target dialect (from what the body compares it with)
    types: dict[str, str] = field(default_factory=dict)
    #: the body in the target dialect, parameters as ``$1``, ``$2``, ...
    body: str = ""

    def probe(self) -> str:
        """The body with every parameter a typed NULL: its columns are the function's."""
        out = self.body
        for i in reversed(range(len(self.params))):  # $10 before $1
            out = out.replace(f"${i + 1}", f"CAST(NULL AS {self.types[self.params[i]]})")
        return out

    def signature(self) -> str:
        return f"{self.name}({', '.join(self.types[p] for p in self.params)})"

    def create(self, columns: list[tuple[str, str]], dialect: str) -> str:
        def quote(name: str) -> exp.Identifier:  # a column may be named like a keyword
            return exp.to_identifier(name, quoted=True)

        args = ", ".join(
            f"{quote(p).sql(dialect)} {self.types[p]}"
            + (f" DEFAULT {self.defaults[p]}" if p in self.defaults else "")
            for p in self.params
        )
        returns = ", ".join(f"{quote(name).sql(dialect)} {kind}" for name, kind in columns)
        return (
            f"CREATE FUNCTION {self.name}({args}) RETURNS TABLE ({returns}) "
            f"LANGUAGE sql STABLE AS $solarsync$ {self.body} $solarsync$"
        )


def is_macro(statement: str) -> bool:
    return bool(_MACRO.match(statement))


def statement_name(statement: str) -> str | None:
    """The view (or macro) a statement creates."""
    match = _MACRO.match(statement)
    if match:
        return match.group(1)
    match = _VIEW_NAME.search(statement)
    return match.group(1) if match else None


def schema_of(columns: list[tuple[str, str, str, str]], dialect: str) -> MappingSchema:
    """A sqlglot schema from ``(schema, table, column, type)`` rows of information_schema."""
    mapping: dict[str, dict[str, dict[str, str]]] = {}
    for schema, table, column, kind in columns:
        mapping.setdefault(schema, {}).setdefault(table, {})[column] = _type_name(kind, dialect)
    return MappingSchema(mapping, dialect=dialect)


def _type_name(kind: str, dialect: str) -> str:
    try:
        exp.DataType.build(kind, dialect=dialect)
        return kind
    except Exception:  # a type sqlglot does not know (geometry, a domain): opaque
        return "unknown"


def render(sql: str, dialect: str, schema: MappingSchema | None = None) -> str:
    """One statement of a views file in ``dialect``; stars are expanded from ``schema``.

    Raises :class:`MissingTables` when it reads tables ``schema`` does not have."""
    if dialect == "duckdb":
        return sql
    expression = sqlglot.parse_one(sql, read="duckdb")
    # every identifier quoted: a column named like a keyword ("group") stays a column
    return _transpile(expression, dialect, schema).sql(dialect, identify=schema is not None)


def render_macro(sql: str, dialect: str, schema: MappingSchema | None = None) -> Macro:
    """``CREATE MACRO name(p, q := default) AS TABLE <select>`` for ``dialect``: parameter
    types and the body with ``$n`` parameters (see :meth:`Macro.create`)."""
    match = _MACRO.match(sql)
    if not match:
        raise ValueError("not a table macro")
    name, params_sql, body_sql = match.groups()
    params: list[str] = []
    defaults: dict[str, str] = {}
    for part in _split_top_level(params_sql):
        param, _, default = part.partition(":=")
        param = param.strip()
        params.append(param)
        if default.strip():
            defaults[param] = sqlglot.parse_one(default.strip(), read="duckdb").sql(dialect)
    body = sqlglot.parse_one(body_sql, read="duckdb")
    lowered = {p.lower(): i for i, p in enumerate(params)}
    for column in list(body.find_all(exp.Column)):
        if not column.table and column.name.lower() in lowered:
            column.replace(exp.Parameter(this=exp.Literal.number(lowered[column.name.lower()] + 1)))
    body = _transpile(body, dialect, schema)
    sql_body = body.sql(dialect, identify=schema is not None)
    macro = Macro(name=name, params=params, defaults=defaults, body=sql_body)
    found = _parameter_types(body, dialect)
    macro.types = {p: found.get(i + 1, "TEXT") for i, p in enumerate(params)}
    return macro


def to_dbapi(sql: str, dialect: str, with_params: bool = True) -> str:
    """Reader SQL (DuckDB's dialect, ``?`` parameters) for a DB-API driver of ``dialect``
    (psycopg2: ``%s`` parameters, literal ``%`` doubled)."""
    if dialect == "duckdb":
        return sql
    marker = "__solarsync_param__"
    expression = sqlglot.parse_one(sql, read="duckdb")
    for placeholder in list(expression.find_all(exp.Placeholder)):
        placeholder.replace(exp.column(marker))
    out = _transpile(expression, dialect, None).sql(dialect)
    if not with_params:
        return out
    return out.replace("%", "%%").replace(marker, "%s")


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([" and 1 or (char in ")]" and -1 or 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


def _transpile(
    expression: exp.Expression, dialect: str, schema: MappingSchema | None
) -> exp.Expression:
    query = expression.expression if isinstance(expression, exp.Create) else expression
    if isinstance(query, exp.Query):
        _json_structs(query, dialect)
        if schema is not None:
            _check_tables(query, schema)
            _check_columns(query, schema)
            query = qualify(
                query,
                dialect="duckdb",
                schema=schema,
                validate_qualify_columns=False,
                quote_identifiers=True,
                identify=False,
            )
        _unnest_json(query, dialect)
        query = annotate_types(query, schema=schema, dialect="duckdb")
        _typed_empty_arrays(query, dialect)
        _json_list_casts(query, dialect)
        _json_arguments(query)
        _group_by_all(query)
        if isinstance(expression, exp.Create):
            expression.set("expression", query)
        else:
            expression = query
    return expression


def _check_tables(query: exp.Expression, schema: MappingSchema) -> None:
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    missing = []
    for table in query.find_all(exp.Table):
        if not table.name or (not table.db and table.name.lower() in ctes):
            continue
        if isinstance(table.this, exp.Func):  # a table function
            continue
        if not schema.find(table, raise_on_missing=False, ensure_data_types=False):
            missing.append(".".join(p for p in (table.db, table.name) if p))
    if missing:
        raise MissingTables(sorted(set(missing)))


def _check_columns(query: exp.Expression, schema: MappingSchema) -> None:
    """Columns read from a table of ``schema`` that the table does not have: qualified ones
    (``s.knock_count``) and unqualified ones of a scope that reads a single table (but for a
    name that is the alias of one of its projections, e.g. in ``ORDER BY``)."""
    missing = []
    for scope in traverse_scope(query):
        tables = {
            name: source for name, source in scope.sources.items() if isinstance(source, exp.Table)
        }
        only = next(iter(tables.values())) if len(scope.sources) == 1 and tables else None
        projections = getattr(scope.expression, "expressions", None) or []
        renamed = {
            e.alias.lower()
            for e in projections
            if isinstance(e, exp.Alias)
            and not (isinstance(e.this, exp.Column) and e.this.name.lower() == e.alias.lower())
        }
        for column in scope.columns:
            table = tables.get(column.table) if column.table else only
            if table is None:
                continue
            if not column.table and (
                column.name.lower() in renamed
                # a subquery's own column, which sqlglot also lists in the outer scope
                or column.find_ancestor(exp.Select) is not scope.expression
            ):
                continue
            if not schema.find(table, raise_on_missing=False, ensure_data_types=False):
                continue  # an unknown table: _check_tables' business
            names = {n.lower() for n in schema.column_names(table)}
            if column.name.lower() not in names:
                missing.append(".".join(p for p in (table.db, table.name, column.name) if p))
    if missing:
        raise MissingColumns(sorted(set(missing)))


def _json_spec(call: exp.Expression) -> Any | None:
    """The element type of ``from_json(x, '[...]')``: a struct dict or a scalar type name."""
    if not (isinstance(call, exp.Anonymous) and call.name.lower() == "from_json"):
        return None
    args = call.expressions
    if len(args) != 2 or not isinstance(args[1], exp.Literal):
        return None
    try:
        spec = json.loads(args[1].this)
    except ValueError:
        return None
    if isinstance(spec, list) and len(spec) == 1 and isinstance(spec[0], dict | str):
        return spec[0]
    return None


def _json_structs(query: exp.Expression, dialect: str) -> None:
    """``unnest(from_json(x, '[{"f": "T", ...}]')) AS a`` then ``a.f``: references to the
    fields become ``CAST(a ->> 'f' AS T)`` (before qualifying, which would fold the keys' case)."""
    structs: dict[str, dict[str, str]] = {}
    for node in query.find_all(exp.Explode, exp.Unnest):
        inner = node.this if isinstance(node, exp.Explode) else (node.expressions or [None])[0]
        spec = _json_spec(inner) if inner is not None else None
        alias = node.parent if isinstance(node.parent, exp.Alias) else None
        if isinstance(spec, dict) and alias is not None:
            structs[alias.alias.lower()] = dict(spec)
    for column in list(query.find_all(exp.Column)):
        fields = structs.get(column.table.lower())
        if not fields:
            continue
        keys = {k.lower(): k for k in fields}
        key = keys.get(column.name.lower())
        if key is None:
            continue
        holder = exp.column(column.table, table=column.db or None)
        kind = exp.DataType.build(fields[key], dialect="duckdb").sql(dialect)
        quoted = key.replace("'", "''")
        sql = f"CAST({holder.sql(dialect)} ->> '{quoted}' AS {kind})"
        column.replace(sqlglot.parse_one(sql, read="postgres"))


def _unnest_json(query: exp.Expression, dialect: str) -> None:
    """``unnest(from_json(x, spec))``: the JSON array's elements (scalars cast to their type)."""
    for node in list(query.find_all(exp.Explode, exp.Unnest)):
        inner = node.this if isinstance(node, exp.Explode) else (node.expressions or [None])[0]
        spec = _json_spec(inner) if inner is not None else None
        if spec is None:
            continue
        source = inner.expressions[0].sql(dialect)
        if isinstance(spec, dict):
            sql = f"JSONB_ARRAY_ELEMENTS(CAST({source} AS JSONB))"
        else:
            kind = exp.DataType.build(spec, dialect="duckdb").sql(dialect)
            sql = f"CAST(JSONB_ARRAY_ELEMENTS_TEXT(CAST({source} AS JSONB)) AS {kind})"
        node.replace(sqlglot.parse_one(sql, read="postgres"))


def _is_json(node: exp.Expression) -> bool:
    kind = getattr(node, "type", None)
    return kind is not None and kind.this in _JSON_TYPES


def _typed_empty_arrays(query: exp.Expression, dialect: str) -> None:
    """``[]`` needs a type outside DuckDB: the array type next to it, else TEXT[]."""
    for array in list(query.find_all(exp.Array)):
        if array.expressions or isinstance(array.parent, exp.Cast):
            continue
        kind: exp.DataType | None = None
        parent = array.parent
        if isinstance(parent, exp.Coalesce):
            for sibling in [parent.this, *parent.expressions]:
                if isinstance(sibling, exp.Cast) and sibling.to.is_type(exp.DataType.Type.ARRAY):
                    kind = sibling.to.copy()
        kind = kind or exp.DataType.build("TEXT[]", dialect="duckdb")
        array.replace(exp.cast(array.copy(), kind))


def _json_list_casts(query: exp.Expression, dialect: str) -> None:
    """``CAST(json AS T[])``: an array of the JSON array's elements, in order, cast to T."""
    for cast in list(query.find_all(exp.Cast)):
        if not cast.to.is_type(exp.DataType.Type.ARRAY) or not cast.to.expressions:
            continue
        operand = cast.this
        unknown = operand.type is None or operand.type.this == exp.DataType.Type.UNKNOWN
        if not (_is_json(operand) or (isinstance(operand, exp.Column) and unknown)):
            continue
        element = cast.to.expressions[0].sql(dialect)
        value = operand.sql(dialect)
        sql = (
            f"CASE WHEN {value} IS NULL THEN NULL ELSE ARRAY("
            f"SELECT CAST(_el.v AS {element}) FROM JSONB_ARRAY_ELEMENTS_TEXT(CAST({value} AS JSONB)) "
            "WITH ORDINALITY AS _el(v, n) ORDER BY _el.n) END"
        )
        cast.replace(sqlglot.parse_one(sql, read="postgres"))


def _json_arguments(query: exp.Expression) -> None:
    """JSON functions take ``json`` in Postgres; dlt's columns are ``jsonb``: cast them."""
    for node in list(query.find_all(exp.JSONExtract, exp.JSONExtractScalar, exp.Anonymous)):
        if isinstance(node, exp.Anonymous):
            if not node.name.lower().startswith("json_") or not node.expressions:
                continue
            target = node.expressions[0]
        else:
            target = node.this
        if isinstance(target, exp.Cast) and target.to.this in _JSON_TYPES:
            continue
        target.replace(exp.cast(target.copy(), exp.DataType.build("JSON")))


def _group_by_all(query: exp.Expression) -> None:
    """``GROUP BY ALL``: the positions of the projections that are not aggregates."""
    for select in query.find_all(exp.Select):
        group = select.args.get("group")
        if not group or not group.args.get("all"):
            continue
        positions = [
            exp.Literal.number(i + 1)
            for i, projection in enumerate(select.expressions)
            if not projection.find(exp.AggFunc) and not projection.find(exp.Window)
        ]
        select.set("group", exp.Group(expressions=positions) if positions else None)


def _parameter_types(body: exp.Expression, dialect: str) -> dict[int, str]:
    """``$n`` -> the type of what it is compared with (through ``coalesce``)."""
    comparisons = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE)
    found: dict[int, str] = {}
    for parameter in body.find_all(exp.Parameter):
        node: exp.Expression = parameter
        while isinstance(node.parent, exp.Coalesce | exp.Paren):
            node = node.parent
        parent = node.parent
        if not isinstance(parent, comparisons):
            continue
        other = parent.expression if parent.this is node else parent.this
        kind = getattr(other, "type", None)
        if kind is None or kind.this == exp.DataType.Type.UNKNOWN:
            continue
        found.setdefault(int(parameter.name), kind.sql(dialect))
    return found
