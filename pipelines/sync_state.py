"""What a source's resources record about the sync that just ran, in dlt's resource state
(``resources.<name>.last_sync``): ``new``/``updated``/``deleted`` counts, ``warnings``,
``type_changes`` and ``errors`` (why a sync failed although its rows were loaded)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LastSync:
    """The ``last_sync`` records of the resources of one sync."""

    #: table -> its integer counts (``new``, ``updated``, ``deleted``, ``rows``)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _records(state: Mapping[str, Any], resources: Sequence[str]) -> Iterator[tuple[str, dict]]:
    for source_state in (state.get("sources") or {}).values():
        for name, res_state in (source_state.get("resources") or {}).items():
            last = res_state.get("last_sync") if isinstance(res_state, dict) else None
            if name in resources and isinstance(last, dict):
                yield name, last


def last_sync(state: Mapping[str, Any], resources: Sequence[str]) -> LastSync:
    """``state``: a pipeline's state (``pipeline.state``) or the scratch state of a ``poll``
    that ran outside dlt."""
    out = LastSync()
    for name, last in _records(state, resources):
        out.changes[name] = {k: v for k, v in last.items() if isinstance(v, int)}
        out.warnings.extend(f"type change: {c}" for c in last.get("type_changes") or ())
        out.warnings.extend(str(w) for w in last.get("warnings") or ())
        out.errors.extend(str(e) for e in last.get("errors") or ())
    return out


__all__ = ["LastSync", "last_sync"]
