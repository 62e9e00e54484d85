"""What :mod:`pipelines.destinations.postgres.views` reads from Postgres' catalog: a relation and
its
columns, privileges (``relacl``/``proacl`` as GRANT statements), the views depending on it, the
sessions holding it, and the columns a SELECT would give (a temporary view). Each read is its
own short transaction: nothing here holds a lock past the call."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: the comment solarsync puts on the views and functions it creates carries this digest
DIGEST = re.compile(r"solarsync definition sha256:([0-9a-f]{16,64})")
PROBE = "solarsync_probe"
#: a relation's name, schema-qualified whatever the search_path (``c``: pg_class, ``n``: its schema)
_QUALIFIED = "quote_ident(n.nspname) || '.' || quote_ident(c.relname)"


@dataclass
class Relation:
    oid: int
    name: str  # schema-qualified, quoted
    kind: str  # pg_class.relkind
    owner: str
    comment: str | None

    @property
    def digest(self) -> str | None:
        match = DIGEST.search(self.comment or "")
        return match.group(1) if match else None


@dataclass
class Dependent:
    """A plain view that depends (directly or not) on a view being rebuilt."""

    oid: int
    name: str
    kind: str
    depth: int
    definition: str | None
    options: list[str]
    owner: str
    comment: str | None
    grants: list[str]


class Catalog:
    """Catalog reads on one psycopg2 connection (not in autocommit: each read commits)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        #: temporary views created by :meth:`probe`
        self.probes = 0

    def one(self, query: str, *params: Any) -> tuple | None:
        rows = self.all(query, *params)
        return rows[0] if rows else None

    def all(self, query: str, *params: Any) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(query, params or None)
            rows = cursor.fetchall()
        self.connection.commit()
        return rows

    def relation(self, qname: str) -> Relation | None:
        row = self.one(
            f"select c.oid, {_QUALIFIED}, c.relkind, pg_get_userbyid(c.relowner), "
            "obj_description(c.oid, 'pg_class') from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where c.oid = to_regclass(%s)",
            qname,
        )
        return Relation(*row) if row else None

    def columns(self, oid: int) -> list[tuple[str, str]]:
        return [
            (name, kind)
            for name, kind in self.all(
                "select attname, format_type(atttypid, atttypmod) from pg_attribute "
                "where attrelid = %s and attnum > 0 and not attisdropped order by attnum",
                oid,
            )
        ]

    def probe(self, oid: int | None, select: str) -> tuple[list[tuple[str, str]], bool]:
        """The columns ``select`` gives (a temporary view, dropped again) and whether Postgres
        deparses it as it deparses the view ``oid``."""
        with self.connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMPORARY VIEW {PROBE} AS {select}")
            self.probes += 1
            cursor.execute(
                "select attname, format_type(atttypid, atttypmod) from pg_attribute "
                "where attrelid = %s::regclass and attnum > 0 and not attisdropped "
                "order by attnum",
                (PROBE,),
            )
            columns = [(name, kind) for name, kind in cursor.fetchall()]
            same = False
            if oid is not None:
                cursor.execute(
                    "select pg_get_viewdef(%s::regclass) = pg_get_viewdef(%s::oid)", (PROBE, oid)
                )
                same = bool(cursor.fetchone()[0])
            cursor.execute(f"DROP VIEW {PROBE}")
        self.connection.commit()
        return columns, same

    def grants(self, oid: int, qname: str) -> list[str]:
        """GRANT statements that give back the privileges on ``oid`` (as ``qname``)."""
        return [
            row[0]
            for row in self.all(
                "select format('GRANT %%s ON %%s TO %%s%%s', a.privilege_type, %s::text, "
                "case when a.grantee = 0 then 'PUBLIC' else quote_ident(pg_get_userbyid("
                "a.grantee)) end, case when a.is_grantable then ' WITH GRANT OPTION' else '' end)"
                " from pg_class c, aclexplode(c.relacl) a "
                "where c.oid = %s and a.grantee <> c.relowner "
                "order by a.grantee, a.privilege_type",
                qname,
                oid,
            )
        ]

    def function_grants(self, signature: str) -> list[str]:
        return [
            row[0]
            for row in self.all(
                "select format('GRANT EXECUTE ON FUNCTION %%s TO %%s', p.oid::regprocedure, "
                "case when a.grantee = 0 then 'PUBLIC' else quote_ident(pg_get_userbyid("
                "a.grantee)) end) from pg_proc p, aclexplode(p.proacl) a "
                "where p.oid = to_regprocedure(%s) and a.grantee <> p.proowner",
                signature,
            )
        ]

    def dependents(self, oid: int) -> list[Dependent]:
        """Everything that depends on the view ``oid``, views of views too, deepest last."""
        rows = self.all(
            "with recursive deps(oid, depth) as ("
            "  select r.ev_class, 1 from pg_depend d join pg_rewrite r on r.oid = d.objid "
            "  where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass "
            "  and d.refobjid = %s and r.ev_class <> %s "
            "  union "
            "  select r.ev_class, deps.depth + 1 from deps "
            "  join pg_depend d on d.refobjid = deps.oid and d.refclassid = 'pg_class'::regclass "
            "  and d.classid = 'pg_rewrite'::regclass "
            "  join pg_rewrite r on r.oid = d.objid "
            "  where r.ev_class <> deps.oid and deps.depth < 32"
            ") "
            f"select c.oid, {_QUALIFIED}, c.relkind, max(deps.depth), "
            "case when c.relkind = 'v' then pg_get_viewdef(c.oid) end, "
            "coalesce(c.reloptions, '{}'), pg_get_userbyid(c.relowner), "
            "obj_description(c.oid, 'pg_class') "
            "from deps join pg_class c on c.oid = deps.oid "
            "join pg_namespace n on n.oid = c.relnamespace "
            "group by c.oid, n.nspname order by max(deps.depth), c.oid",
            oid,
            oid,
        )
        out = [
            Dependent(o, name, kind, depth, definition, list(options), owner, comment, [])
            for o, name, kind, depth, definition, options, owner, comment in rows
        ]
        for dependent in out:
            dependent.grants = self.grants(dependent.oid, dependent.name)
        # objects other than views (a function with a SQL-standard body, ...)
        others = self.all(
            "select pg_describe_object(d.classid, d.objid, d.objsubid) from pg_depend d "
            "where d.refclassid = 'pg_class'::regclass and d.refobjid = %s "
            "and d.deptype = 'n' and d.classid <> 'pg_rewrite'::regclass",
            oid,
        )
        out += [Dependent(0, what, "other", 0, None, [], "", None, []) for (what,) in others]
        return out

    def missing_grants(
        self, roles: list[str], source: str, names: list[str], private: tuple[str, ...]
    ) -> list[tuple[str]]:
        """GRANT statements for what ``roles`` lack: USAGE on ``analytics`` and ``source``;
        SELECT on the relations ``names`` (schema-qualified) and on every relation of schema
        ``source`` but ``private``; EXECUTE on the functions ``names``."""
        return self.all(
            "select format('GRANT USAGE ON SCHEMA %%I TO %%I', n.nspname, r) "
            "from pg_namespace n, unnest(%s::text[]) r "
            "where n.nspname = any(%s) and not has_schema_privilege(r, n.oid, 'USAGE') "
            "union all "
            "select format('GRANT SELECT ON %%s TO %%I', c.oid::regclass, r) "
            "from pg_class c join pg_namespace n on n.oid = c.relnamespace, unnest(%s::text[]) r "
            "where c.relkind in ('r', 'p', 'v', 'm', 'f') "
            "and (c.oid = any(array(select to_regclass(x) from unnest(%s::text[]) x)) "
            "     or (n.nspname = %s and c.relname <> all(%s))) "
            "and not has_table_privilege(r, c.oid, 'SELECT') "
            "union all "
            "select format('GRANT EXECUTE ON FUNCTION %%s TO %%I', p.oid::regprocedure, r) "
            "from pg_proc p join pg_namespace n on n.oid = p.pronamespace, unnest(%s::text[]) r "
            "where n.nspname || '.' || p.proname = any(%s) "
            "and not has_function_privilege(r, p.oid, 'EXECUTE')",
            roles,
            ["analytics", source],
            roles,
            names,
            source,
            list(private),
            roles,
            names,
        )

    def holders(self, oid: int) -> str:
        """The sessions holding a lock on ``oid``: pid, user, application, since when."""
        rows = self.all(
            "select distinct a.pid, a.usename, a.application_name, "
            "extract(epoch from now() - a.xact_start)::int "
            "from pg_locks l join pg_stat_activity a on a.pid = l.pid "
            "where l.relation = %s and l.granted and l.pid <> pg_backend_pid() order by 1",
            oid,
        )
        return ", ".join(
            f"pid {pid} (user {user}"
            + (f", {app!r}" if app else "")
            + (f", in a transaction open for {age}s" if age is not None else "")
            + ")"
            for pid, user, app, age in rows
        )
