"""Analytics views: ``warehouse/views/<source>.sql``, published after a source loads, on every
destination through ONE function, :func:`publish_views`.

The files are written once, in DuckDB's dialect, and ship inside the package (``warehouse.views``,
read with :mod:`importlib.resources`: a wheel installed anywhere has them). A source the registry
says has views but whose file is missing is an error (:class:`ViewsMissing`), never an empty set.

:func:`publish_views` reads the source's file (``warehouse/views/<dialect>/<source>.sql`` when a
destination's dialect needs its own), renders each statement for the destination's dialect
(:mod:`pipelines.views.transpile`; DuckDB runs them as written) and hands it to the
destination's :class:`ViewTarget`, which creates it the way that destination needs (DuckDB:
names bound for the published file's catalog; Postgres: untouched when unchanged, short locks,
grants kept). What is the same everywhere is done here once:

- a view whose tables do not exist yet is skipped (:class:`MissingTables`, logged);
- a view reading a column its table gets with its next load is left as it was, with a warning
  (:class:`MissingColumns`);
- any other failure is a :class:`~sources.common.DestinationError` naming the view and the file;
- a column of a view whose type BI drivers do not read (:data:`BI_TYPE`) is a warning.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipelines.views.transpile import (
    Macro,
    MissingColumns,
    MissingTables,
    is_macro,
    render,
    render_macro,
    schema_of,
    statement_name,
    to_dbapi,
)
from sources.common import DestinationError, SolarsyncError, redact

logger = logging.getLogger("solarsync")

#: the views files: the package ``warehouse.views`` (the folder ``warehouse/views`` of the repo)
VIEWS_DIR: Any = importlib.resources.files("warehouse.views")
#: the column types every ODBC/JDBC BI tool reads; views in ``analytics`` expose only these
#: (lists become bridge views, JSON stays in the raw tables)
BI_TYPE = re.compile(
    r"VARCHAR|TEXT|CHARACTER VARYING|BOOLEAN|TINYINT|SMALLINT|INTEGER|BIGINT|DOUBLE"
    r"|DOUBLE PRECISION|DECIMAL\(\d+,\s*\d+\)|NUMERIC(\(\d+,\s*\d+\))?|DATE"
    r"|TIMESTAMP|TIMESTAMP WITH TIME ZONE|TIMESTAMP WITHOUT TIME ZONE",
    re.I,
)


class ViewsMissing(SolarsyncError):
    """A source's views file is not where the package keeps it (a broken install)."""

    exit_code = 1


def views_file(views: str, dialect: str = "duckdb") -> Any | None:
    """A views file (``views``: its name, e.g. ``heat.sql``) as a :mod:`importlib.resources`
    traversable: ``<dialect>/<views>`` when one exists, else the DuckDB one; None when neither."""
    for path in (VIEWS_DIR / dialect / views, VIEWS_DIR / views):
        if path.is_file():
            return path
    return None


def views_sql(views: str, dialect: str = "duckdb") -> str:
    """The text of a views file; :class:`ViewsMissing` when the installation lacks it."""
    path = views_file(views, dialect)
    if path is None:
        raise ViewsMissing(
            f"the analytics views warehouse/views/{views} are missing from this installation "
            f"({VIEWS_DIR})",
            source="views",
            hint="reinstall solarsync (pip install --force-reinstall solarsync); a wheel built "
            "from a checkout carries them as package data",
        )
    return path.read_text()


def statements(sql: str) -> list[str]:
    """The statements of a views file: split on semicolons that end a line, comments dropped."""
    code = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [chunk.strip() for chunk in re.split(r";[ \t]*$", code, flags=re.M) if chunk.strip()]


@dataclass
class ViewsOutcome:
    """What one publish of a source's views did."""

    #: every view and macro of the file in place (created, replaced or unchanged)
    views: list[str] = field(default_factory=list)
    #: created or replaced by this publish
    changed: list[str] = field(default_factory=list)
    #: left at their previous definition (a column not loaded yet, a lock, dependents)
    kept: list[str] = field(default_factory=list)
    #: not created: their tables do not exist yet
    skipped: list[str] = field(default_factory=list)
    #: what readers should know (the run's warnings)
    warnings: list[str] = field(default_factory=list)

    def keep(self, name: str, warning: str | None = None, exists: bool = True) -> None:
        """``name`` keeps its previous definition (``exists``: it has one, in place)."""
        if exists and name not in self.views:
            self.views.append(name)
        self.kept.append(name)
        if warning:
            self.warnings.append(warning)


class ViewTarget(Protocol):
    """Where :func:`publish_views` creates views: one per destination."""

    #: sqlglot dialect the statements are rendered in
    dialect: str
    #: who raises errors (``destination duckdb``, ...)
    where: str

    def session(self) -> contextlib.AbstractContextManager[None]:
        """Held while a file's statements are created (a transaction mode, a lock timeout)."""
        ...

    def schema(self) -> Any:
        """The sqlglot schema statements are rendered against (None: DuckDB, as written)."""
        ...

    def create(
        self, name: str | None, statement: str, rendered: str | Macro, outcome: ViewsOutcome
    ) -> None:
        """Create (or keep) one statement's view or macro, recording it in ``outcome``; raises
        :class:`MissingTables` / :class:`MissingColumns` like the renderer does."""
        ...

    def finish(self, outcome: ViewsOutcome) -> None:
        """After the file: e.g. grants the destination's reader roles lack."""
        ...

    def column_types(self, names: list[str]) -> list[tuple[str, str, str]]:
        """``(view, column, type)`` of the views ``names``."""
        ...


class NoSession:
    """The default :meth:`ViewTarget.session`: nothing to hold."""

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        yield


def publish_views(target: ViewTarget, source: str, views: str | None) -> ViewsOutcome:
    """(Re)create ``source``'s views (the file ``views``; None: none) in ``target`` (see the
    module docstring)."""
    if views is None:
        return ViewsOutcome()
    text = views_sql(views, target.dialect)
    outcome = ViewsOutcome()
    with target.session():
        for statement in statements(text):
            name = statement_name(statement)
            try:
                schema = target.schema()
                if target.dialect == "duckdb":
                    rendered: str | Macro = statement
                elif name is not None and is_macro(statement):
                    rendered = render_macro(statement, target.dialect, schema)
                else:
                    rendered = render(statement, target.dialect, schema)
                target.create(name, statement, rendered, outcome)
            except MissingColumns as exc:
                outcome.keep(  # whether an earlier version of it exists is not known here
                    name or "a statement",
                    f"{name} left as it was: it reads column(s) {exc}, which its table gets "
                    "with its next load",
                    exists=False,
                )
            except MissingTables as exc:
                outcome.skipped.append(name or "a statement")
                logger.info("%s: view %s skipped until %s exist", source, name, exc)
            except SolarsyncError:
                raise
            except Exception as exc:
                raise DestinationError(
                    f"creating the analytics view {name} failed: "
                    f"{redact(str(exc).strip().splitlines()[0] if str(exc).strip() else exc)}",
                    source=target.where,
                    hint=f"check warehouse/views/{views}; the data is loaded, only the "
                    "views are out of date until the next run",
                ) from exc
        target.finish(outcome)
    for warning in outcome.warnings:
        logger.warning("%s: %s", source, warning)
    for view, column, data_type in target.column_types(outcome.changed):
        if not BI_TYPE.fullmatch(data_type.strip()):
            logger.warning(
                "%s: %s.%s is %s, a type BI tools reading through ODBC/JDBC may not show (its "
                "raw column has that type; warehouse/views/%s lists the column: convert it "
                "there, e.g. to text, and report it)",
                source,
                view,
                column,
                data_type,
                views,
            )
    return outcome


__all__ = [
    "BI_TYPE",
    "VIEWS_DIR",
    "Macro",
    "MissingColumns",
    "MissingTables",
    "NoSession",
    "ViewTarget",
    "ViewsMissing",
    "ViewsOutcome",
    "is_macro",
    "publish_views",
    "render",
    "render_macro",
    "schema_of",
    "statement_name",
    "to_dbapi",
    "statements",
    "views_file",
    "views_sql",
]
