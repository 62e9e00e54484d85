"""The poll journal: polls taken by ``solarsync poll`` and not yet extracted by dlt.

Extracting every poll into its own load package made each batch load N packages (a merge per
table per package): at ``--every 1s`` loading 11 polls took 6 s, during which no poll was
taken. So after its first poll, ``poll`` only fetches: the rows of each poll are written to
one file here (pickle, fsynced, renamed into place), and each batch extracts all of them as
ONE package. The id of the last journal file extracted is committed in the package's source
state (``poll_journal_upto``) together with the rows, so a kill at any point neither loses a
written poll nor extracts one twice: files at or below the committed id are deleted unread,
the others are extracted by the next ``poll`` or ``run`` of the source.

Journal files hold API rows only (never credentials) and live in the pipeline's working dir
(``$DLT_DATA_DIR/pipelines/solarsync_<source>/poll_journal``), outside the warehouse.
"""

from __future__ import annotations

import copy
import os
import pickle
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dlt
from dlt.common.configuration.container import Container
from dlt.common.pipeline import StateInjectableContext, pipeline_state
from dlt.extract.resource import DltResource

from pipelines.sync_state import last_sync

STATE_KEY = "poll_journal_upto"
_SUFFIX = ".poll"


class PollJournal:
    def __init__(self, pipeline: dlt.Pipeline, source_name: str) -> None:
        self.pipeline = pipeline
        self.source_name = source_name
        self.directory = Path(pipeline.working_dir) / "poll_journal"
        self._last_id = 0
        # a write cut short by a kill was never renamed into place: it never held a poll.
        # Only here (one process per source holds the lock): later, a .tmp is a write in progress
        for torn in self.directory.glob("*.tmp") if self.directory.exists() else ():
            torn.unlink(missing_ok=True)

    # -- writing ----------------------------------------------------------------------------
    def add(self, items: Mapping[str, list[Any]]) -> int:
        """Write one poll's items (per resource name) durably; returns its id."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ident = max(time.time_ns(), self._last_id + 1, self._newest_id() + 1)
        self._last_id = ident
        final = self.directory / f"{ident:020d}{_SUFFIX}"
        temp = final.with_suffix(".tmp")
        with open(temp, "wb") as handle:
            pickle.dump(dict(items), handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
        return ident

    # -- reading ----------------------------------------------------------------------------
    def committed_upto(self) -> int:
        sources = self.pipeline.state.get("sources") or {}
        return int((sources.get(self.source_name) or {}).get(STATE_KEY) or 0)

    def pending(self) -> list[tuple[int, Path]]:
        """Journal files not yet extracted, oldest first (extracted ones are deleted)."""
        if not self.directory.exists():
            return []
        upto = self.committed_upto()
        found = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            ident = int(path.stem)
            if ident <= upto:
                path.unlink(missing_ok=True)
            else:
                found.append((ident, path))
        return sorted(found)

    def _newest_id(self) -> int:
        names = (
            [p.stem for p in self.directory.glob(f"*{_SUFFIX}")] if self.directory.exists() else []
        )
        return max((int(n) for n in names), default=0)

    # -- extracting -------------------------------------------------------------------------
    def extract(self, hints: Mapping[str, dict[str, Any]], **extract_kwargs: Any) -> int:
        """Extract every pending poll as one package; returns the number of polls.

        ``hints``: per resource name, the resource's dlt hints (``DltResource._hints`` of a
        source object of this run). Polls of resources without hints wait for a run that has.
        """
        pending = self.pending()
        if not pending:
            return 0
        merged: dict[str, list[Any]] = {}
        for _, path in pending:
            with open(path, "rb") as handle:
                for name, items in pickle.load(handle).items():
                    merged.setdefault(name, []).extend(items)
        upto = pending[-1][0]
        names = [name for name in merged if name in hints]
        if not names:
            return 0

        def commit_then(items: list[Any]) -> Iterator[Any]:
            # committed with the rows: this package is the one that extracted these files
            dlt.current.source_state()[STATE_KEY] = upto
            yield from items

        resources = [
            DltResource.from_data(
                commit_then(merged[name]) if i == 0 else merged[name],
                name=name,
                section=self.source_name,
                hints=copy.deepcopy(hints[name]),
            )
            for i, name in enumerate(names)
        ]
        # the source's schema: its name is also the state section that commits ``upto``
        if self.source_name in self.pipeline.schemas:
            schema = self.pipeline.schemas[self.source_name]
        else:
            schema = dlt.Schema(self.source_name)
        self.pipeline.extract(resources, schema=schema, **extract_kwargs)
        for _, path in pending:
            path.unlink(missing_ok=True)
        return len(pending)


def resource_hints(source: Any) -> dict[str, dict[str, Any]]:
    """The hints of every resource of a dlt source, to extract journaled rows with."""
    return {name: copy.deepcopy(res._hints) for name, res in source.resources.items()}


def fetch(source: Any, errors: list[str] | None = None) -> dict[str, list[Any]]:
    """Evaluate the selected resources of a source without a pipeline: one poll's items.

    The resources see a scratch copy of the pipeline's state, discarded afterwards; what they
    record under ``last_sync.errors`` (a poll that failed although it has rows) is appended
    to ``errors``."""
    state = copy.deepcopy(pipeline_state(Container(), {})[0])
    with Container().injectable_context(StateInjectableContext(state=state)):
        items = {name: list(res) for name, res in source.selected_resources.items()}
    if errors is not None:
        errors.extend(last_sync(state, list(items)).errors)
    return items
