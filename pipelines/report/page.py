"""The report page: one HTML file, Plotly's JavaScript inlined once, no external request."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipelines.report.charts import Chart

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222;
       background: #f6f7f9; }
header { background: #1f3b57; color: #fff; padding: 14px 24px; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; opacity: .85; font-size: 13px; }
nav { padding: 8px 24px; background: #e8edf2; font-size: 14px; }
nav a { margin-right: 16px; color: #1f3b57; }
main { padding: 8px 24px 40px; max-width: 1400px; }
section { background: #fff; border-radius: 6px; margin: 18px 0; padding: 12px 18px;
          box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h2 { font-size: 18px; margin: 6px 0 10px; }
h3 { font-size: 15px; margin: 14px 0 4px; }
figure { margin: 0 0 10px; }
.nodata { color: #666; font-style: italic; padding: 18px; background: #fafafa;
          border: 1px dashed #ccc; border-radius: 4px; }
.note { color: #555; font-size: 12px; margin: 2px 0 8px; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e3e3e3;
         vertical-align: top; }
th { background: #f0f2f5; }
.state { font-weight: 600; padding: 2px 8px; border-radius: 10px; font-size: 12px; }
.state-ok { background: #e3f3e4; color: #2e7d32; }
.state-stale { background: #fff3d6; color: #9a6700; }
.state-failed { background: #fde4e4; color: #c62828; }
.state-never-run { background: #eee; color: #666; }
.error { color: #c62828; }
.nodata.error { font-style: normal; border-color: #e8a9a9; background: #fdf3f3; }
"""


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    html_blocks: list[str] = field(default_factory=list)  # already escaped
    charts: list[Chart] = field(default_factory=list)


def chart_html(chart: Chart) -> str:
    title = f"<h3>{html.escape(chart.title)}</h3>"
    note = f'<p class="note">{html.escape(chart.note)}</p>' if chart.note else ""
    if chart.figure is None:
        cls, why = (
            ("chart empty failed", "nodata error") if chart.failed else ("chart empty", "nodata")
        )
        return (
            f'<figure class="{cls}" data-chart="{chart.id}">{title}'
            f'<p class="{why}">{html.escape(chart.empty or "No data.")}</p>{note}</figure>'
        )
    body = chart.figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=chart.id,
        config={"displaylogo": False, "responsive": True},
    )
    return f'<figure class="chart" data-chart="{chart.id}">{title}{body}{note}</figure>'


def table_html(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """``rows`` cells are HTML (escape text before)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render(title: str, subtitle: str, sections: Sequence[Section], plotly_js: str) -> str:
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    parts = []
    for s in sections:
        intro = f'<p class="note">{html.escape(s.intro)}</p>' if s.intro else ""
        blocks = "".join(s.html_blocks) + "".join(chart_html(c) for c in s.charts)
        parts.append(
            f'<section id="{s.id}"><h2>{html.escape(s.title)}</h2>{intro}{blocks}</section>'
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{plotly_js}</script></head><body>'
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{''.join(parts)}</main></body></html>\n"
    )
