"""The demo narrates on stdout: lines and query results as aligned text tables."""

from __future__ import annotations

import sys


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def show(con, sql: str, indent: str = "   ") -> None:
    """Print a query's result as an aligned text table."""
    cur = con.execute(sql)
    header = [d[0] for d in cur.description]
    cells = [[" ".join(str(v).split()) for v in row] for row in cur.fetchall()]
    widths = [max(len(v) for v in [h, *[r[i] for r in cells]]) for i, h in enumerate(header)]
    out(indent + "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in cells:
        out(indent + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
