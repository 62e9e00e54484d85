"""SolarKnock's part of the report: the weekly funnel and the rep leaderboard.

The vendor documents daily stats as "knock count, leads, appointments set, deals closed,
hours worked, timestamps of each knock that day", not as field names. So nothing here
assumes one: each measure is the first column of a known spelling (``knock_count``,
``knocks``, ``knocks_count``, ...), else a numeric column whose name says it
(``stats__knocks``), else it is derived from rows the warehouse has (the day's knock
timestamps; the knocks, leads and appointments tables per rep). The chart's note says where
each number came from. Reps are grouped by their user id, never by name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pipelines.report.data import NUMERIC, Query, live, number, pick, q

STAGES = {
    "knocks": "solarknock.knocks",
    "leads": "solarknock.leads",
    "appointments": "solarknock.appointments",
}
CREATED = ("created_at", "created", "created_on", "date_created", "creation_date", "inserted_at")
#: when a stage's rows have no creation time: what else dates them (a knock is created when
#: it is knocked; an appointment's ``date`` is when it takes place, so it never stands in)
CREATED_ELSE = {"knocks": ("knocked_at", "knock_date")}
USER = ("user_id", "rep_id", "userid", "sales_rep_id", "agent_id", "member_id", "user", "rep")
USER_PATTERN = r"^(user|rep|agent|member)(_?id)?$|(^|_)(user|rep)_id$"
DAILY_STATS = "solarknock.daily_stats"
USERS = "solarknock.users"

#: measure -> (spellings, name pattern, names that match the pattern but are not it)
MEASURES: dict[str, tuple[tuple[str, ...], str, str | None]] = {
    "knocks": (
        (
            "knock_count",
            "knocks",
            "knocks_count",
            "knock_total",
            "total_knocks",
            "num_knocks",
            "knocks_total",
            "doors_knocked",
        ),
        r"knock",
        r"time|stamp|hour|rate|percent|pct",
    ),
    "leads": (
        (
            "leads",
            "lead_count",
            "leads_count",
            "leads_created",
            "new_leads",
            "num_leads",
            "total_leads",
        ),
        r"lead",
        r"time|stamp|rate|percent|pct|_id$",
    ),
    "appointments": (
        (
            "appointments_set",
            "appointments",
            "appointment_count",
            "appointments_count",
            "appts_set",
            "appts",
            "num_appointments",
        ),
        r"appoint|appt",
        r"time|stamp|rate|percent|pct|_id$",
    ),
    "deals": (
        ("deals_closed", "deals", "deal_count", "deals_count", "closed_deals", "deals_won"),
        r"deal|closed",
        r"time|stamp|rate|percent|pct|_id$|_at$",
    ),
}
KNOCK_TIMES = ("knock_timestamps", "knock_times", "knocked_at", "timestamps")
#: where a measure missing from the daily stats can be counted instead: (table, rep columns)
ROW_COUNTS = {
    "knocks": ("solarknock.knocks", USER),
    "leads": ("solarknock.leads", USER),
    "appointments": ("solarknock.appointments", ("setter_id", *USER)),
}


# --------------------------------------------------------------------------- funnel
@dataclass
class Funnel:
    counts: dict[str, dict[date, int]] = field(default_factory=dict)  # stage -> week -> rows
    notes: list[str] = field(default_factory=list)


def funnel_by_week(query: Query) -> Funnel:
    """Live knocks, leads and appointments created per week (Monday) of the report's zone."""
    funnel = Funnel()
    for stage, relation in STAGES.items():
        columns = query.columns(relation)
        if not columns:
            continue
        created = pick(columns, CREATED) or pick(columns, CREATED_ELSE.get(stage, ()))
        if created is None:
            funnel.notes.append(f"{relation} has no creation time column: {stage} not counted.")
            continue
        if created not in CREATED:
            funnel.notes.append(f"{stage} dated by {created} (no creation time column).")
        week = f"CAST(date_trunc('week', {query.wall(q(created))}) AS DATE)"
        rows = query(
            f"SELECT {week} AS week, count(*) AS n FROM {relation} "
            f"WHERE {q(created)} IS NOT NULL{live(columns)} GROUP BY 1 ORDER BY 1",
            needs=[relation],
        )
        funnel.counts[stage] = {_date(r["week"]): int(r["n"]) for r in rows}
    return funnel


@dataclass
class Offices:
    """Live rows per stage of each org (label: the org's name and account), when the warehouse
    holds more than one org (docs/accounts.md)."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # org label -> stage -> n


def offices(query: Query) -> Offices:
    """Knocks, leads and appointments (live rows) of each org, side by side."""
    result = Offices()
    orgs = query.columns("solarknock.org")
    if ORG not in orgs:
        return result
    name = "name" if "name" in orgs else ORG
    account = "account" if "account" in orgs else ORG
    labels = {
        str(r["org"]): f"{r['name'] or r['org']} ({r['account']})"
        for r in query(
            f"SELECT CAST({q(ORG)} AS VARCHAR) AS org, CAST({q(name)} AS VARCHAR) AS name, "
            f"CAST({q(account)} AS VARCHAR) AS account FROM solarknock.org",
            needs=["solarknock.org"],
        )
    }
    if len(labels) < 2:
        return result
    for stage, relation in STAGES.items():
        columns = query.columns(relation)
        if ORG not in columns:
            continue
        where = live(columns).removeprefix(" AND ")
        rows = query(
            f"SELECT CAST({q(ORG)} AS VARCHAR) AS org, count(*) AS n FROM {relation}"
            + (f" WHERE {where}" if where else "")
            + " GROUP BY 1",
            needs=[relation],
        )
        for row in rows:
            label = labels.get(str(row["org"]), str(row["org"]))
            result.counts.setdefault(label, {})[stage] = int(row["n"])
    for label in labels.values():
        result.counts.setdefault(label, {})
    return result


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


# --------------------------------------------------------------------------- leaderboard
@dataclass
class Rep:
    user_id: str
    name: str | None
    label: str = ""
    values: dict[str, int | float | None] = field(default_factory=dict)

    def get(self, measure: str) -> int | float:
        return self.values.get(measure) or 0


@dataclass
class Leaderboard:
    reps: list[Rep]  # every rep, best first
    sources: dict[str, str]  # measure -> where its numbers came from


def rep_names(query: Query) -> dict[str, str]:
    """``{user id: name}`` from the users table, whatever its name columns are."""
    columns = query.columns(USERS)
    ident = pick(columns, ("id", "user_id", "uid"))
    if ident is None:
        return {}
    name = pick(
        columns,
        ("name", "full_name", "display_name", "rep_name", "name__full"),
        r"(^|_)(full_?|display_?)name$",
    )
    first = pick(columns, ("first_name", "firstname", "given_name"), r"name__first$|first_?name$")
    last = pick(
        columns, ("last_name", "lastname", "family_name", "surname"), r"name__last$|last_?name$"
    )
    if not (name or first or last):
        name = pick(columns, ("username", "login"))
    if name:
        expr = q(name)
    elif first or last:
        expr = "trim(concat_ws(' ', " + ", ".join(q(c) for c in (first, last) if c) + "))"
    else:
        return {}
    rows = query(
        f"SELECT {rep_key(query, USERS, ident)} AS id, {expr} AS name FROM {USERS}",
        needs=[USERS],
    )
    names = {r["id"]: str(r["name"] or "").strip() for r in rows if r["id"] is not None}
    return {uid: name for uid, name in names.items() if name}


def _daily_stats(query: Query, board: dict[str, Rep], sources: dict[str, str]) -> None:
    columns = query.columns(DAILY_STATS)
    user = pick(columns, USER, USER_PATTERN)
    if not columns or user is None:
        return
    exprs: dict[str, str] = {}
    # a spelling the table has but the API never filled (a column the source declares for the
    # views while this API sends the count under another name) is passed over
    filled = populated(query, DAILY_STATS, columns)
    for measure, (names, pattern, exclude) in MEASURES.items():
        present = {c: t for c, t in columns.items() if c in filled}
        column = pick(present, names, pattern, numeric=True, exclude=exclude)
        if column:
            exprs[measure] = f"sum(CAST({q(column)} AS DOUBLE))"
            sources[measure] = f"daily stats' {column}"
    if "knocks" not in exprs:
        stamps = pick(columns, KNOCK_TIMES, r"knock.*(time|stamp)")
        if stamps and not _numeric(columns[stamps]):
            exprs["knocks"] = f"sum(json_array_length(CAST({q(stamps)} AS JSON)))"
            sources["knocks"] = f"the number of daily stats' {stamps}"
    if not exprs:
        return
    try:
        rows = _per_rep(query, DAILY_STATS, user, exprs, live(columns))
    except Exception:
        if "knocks" not in exprs or not sources["knocks"].startswith("the number"):
            raise
        exprs.pop("knocks")  # the timestamps are not a JSON list here: count knock rows instead
        sources.pop("knocks")
        if not exprs:
            return
        rows = _per_rep(query, DAILY_STATS, user, exprs, live(columns))
    for row in rows:
        rep = board.setdefault(row["user_id"], Rep(row["user_id"], None))
        rep.values.update({m: number(row[m]) for m in exprs})


def populated(query: Query, relation: str, columns: dict[str, str]) -> set[str]:
    """The columns of ``relation`` holding at least one value (one query)."""
    names = [c for c in columns if not c.startswith("_dlt")]
    if not names:
        return set()
    counts = ", ".join(f"count({q(c)}) AS c{i}" for i, c in enumerate(names))
    rows = query(f"SELECT {counts} FROM {relation}", needs=[relation])
    return {c for i, c in enumerate(names) if rows and rows[0][f"c{i}"]}


ORG = "org_id"


def several_orgs(query: Query, relation: str) -> bool:
    """Whether ``relation`` holds the rows of more than one org (docs/accounts.md): then a rep
    is an org's user, ``<org_id>/<user_id>`` (two orgs' user ids may be the same)."""
    if ORG not in query.columns(relation):
        return False
    rows = query(f"SELECT count(DISTINCT {q(ORG)}) AS n FROM {relation}", needs=[relation])
    return bool(rows) and int(rows[0]["n"] or 0) > 1


def rep_key(query: Query, relation: str, user: str) -> str:
    """The SQL of a rep's key in ``relation``: the user id, with its org when several."""
    ident = f"CAST({q(user)} AS VARCHAR)"
    if several_orgs(query, relation):
        return f"concat(CAST({q(ORG)} AS VARCHAR), '/', {ident})"
    return ident


def _per_rep(query: Query, relation: str, user: str, exprs: dict[str, str], where: str) -> list:
    selected = ", ".join(f"{expr} AS {measure}" for measure, expr in exprs.items())
    return query(
        f"SELECT {rep_key(query, relation, user)} AS user_id, {selected} FROM {relation} "
        f"WHERE {q(user)} IS NOT NULL{where} GROUP BY 1",
        needs=[relation],
    )


def leaderboard(query: Query) -> Leaderboard:
    """Every rep (by user id) with knocks, leads, appointments and deals over every loaded
    day, labelled by name; reps who share a name get their id in the label."""
    board: dict[str, Rep] = {}
    sources: dict[str, str] = {}
    _daily_stats(query, board, sources)
    for measure, (relation, users) in ROW_COUNTS.items():
        if measure in sources:
            continue
        columns = query.columns(relation)
        user = pick(columns, users, USER_PATTERN)
        if user is None:
            continue
        for row in _per_rep(query, relation, user, {measure: "count(*)"}, live(columns)):
            rep = board.setdefault(row["user_id"], Rep(row["user_id"], None))
            rep.values[measure] = number(row[measure])
        sources[measure] = f"live rows of {relation} per {user}"
    if not board:
        return Leaderboard([], sources)
    names = rep_names(query)
    label_reps(board.values(), names)
    reps = sorted(board.values(), key=lambda r: (-r.get("knocks"), r.label.lower(), r.user_id))
    return Leaderboard(reps, sources)


def label_reps(reps: Any, names: dict[str, str]) -> None:
    """Each rep's name; the name and the id when another user (on the board or in the users
    table) has the same name; the id when the rep has no name."""
    reps = list(reps)
    owners: dict[str, set[str]] = {}
    for uid, name in names.items():
        owners.setdefault(name.casefold(), set()).add(uid)
    for rep in reps:
        rep.name = names.get(rep.user_id)
    taken = Counter(rep.name.casefold() for rep in reps if rep.name)
    for rep in reps:
        if not rep.name:
            rep.label = rep.user_id
        elif len(owners.get(rep.name.casefold(), ())) > 1 or taken[rep.name.casefold()] > 1:
            rep.label = f"{rep.name} ({rep.user_id})"
        else:
            rep.label = rep.name
    # a name that reads like another rep's id: keep labels unique whatever the data
    seen = Counter(rep.label for rep in reps)
    for rep in reps:
        if seen[rep.label] > 1:
            rep.label = f"{rep.label} [{rep.user_id}]"


def _numeric(data_type: str) -> bool:
    return bool(NUMERIC.search(data_type))
