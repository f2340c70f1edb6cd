"""Run reports a teacher can read: a text summary for the terminal and one HTML file.

Used by ``make course`` (`write_course_report`) and ``python -m bertlab sweep``
(`write_html`, `text_table`). The HTML page is self-contained: tables, and plots embedded
as base64 PNG, so it opens in any browser, offline, and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bertlab.plots import PALETTE, png_bytes
from bertlab.results import write_atomic

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #009E73; font-weight: bold; } .failed { color: #D55E00; font-weight: bold; }
img { max-width: 100%; }
.wide { overflow-x: auto; }
"""


def fmt(value: Any) -> str:
    """A value as a short string: numbers with 4 significant digits, True/False as ok/FAILED."""
    if isinstance(value, bool):
        return "ok" if value else "FAILED"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return "" if value is None else str(value)


def text_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with aligned columns, for the terminal."""
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table; numbers right-aligned, ok/FAILED coloured."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        tds = []
        for v in row:
            text = html.escape(fmt(v))
            if isinstance(v, bool):
                tds.append(f'<td class="{"ok" if v else "failed"}">{text}</td>')
            elif isinstance(v, int | float):
                tds.append(f'<td class="num">{text}</td>')
            else:
                tds.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (f'<div class="wide"><table><tr>{head}</tr>\n' + "\n".join(body)
            + "</table></div>")


def png_data_uri(fig: Any) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    png = png_bytes(fig, dpi=110)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_html(png: bytes | str, alt: str) -> str:
    """An <img> from PNG bytes, a PNG file path, or a data URI."""
    if isinstance(png, str) and png.startswith("data:"):
        uri = png
    else:
        data = png if isinstance(png, bytes) else Path(png).read_bytes()
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="{uri}">'


def write_html(out: str | Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """Write one self-contained page: a title, then (heading, HTML body) sections."""
    parts = [f"<h2>{html.escape(h)}</h2>\n{body}" if h else body for h, body in sections]
    return write_atomic(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "\n</body></html>\n",
    )


# ---------------------------------------------------------------------------------------
# make course


def course_summary(rows: Sequence[dict]) -> str:
    """The course run as a text table: notebook, profile, seconds, ok, headline metrics or error."""
    table = []
    for r in rows:
        headline = [(k, v) for k, v in (r.get("metrics") or {}).items() if not k.startswith("_")][:3]
        metrics = ", ".join(f"{k} {fmt(v)}" for k, v in headline)  # the first three: one screen
        table.append([r["notebook"], r.get("profile", ""), float(r.get("seconds", 0.0)),
                      bool(r["ok"]), metrics if r["ok"] else r.get("error", "")])
    ok = sum(bool(r["ok"]) for r in rows)
    total = sum(float(r.get("seconds", 0.0)) for r in rows)
    return (text_table(["notebook", "profile", "seconds", "status", "metrics / error"], table)
            + f"\n{ok} of {len(rows)} notebooks ran cleanly in {total:.0f} s.")


def _seconds_figure(rows: Sequence[dict]) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    names = [r["notebook"] for r in rows][::-1]
    seconds = [float(r.get("seconds", 0.0)) for r in rows][::-1]
    colors = [PALETTE[0] if r["ok"] else PALETTE[3] for r in rows][::-1]
    ax.barh(names, seconds, color=colors)
    ax.set_xlabel("seconds")
    ax.set_title("Time per notebook (blue: ran cleanly, vermillion: failed)")
    fig.tight_layout()
    return fig


def write_course_report(rows: list[dict], out: Path) -> Path:
    """Write the HTML report of a course run; return its path.

    `rows`: one dict per notebook with keys notebook, profile, seconds, ok, error and
    metrics (a dict of name -> number). `out` is the .html file (or a folder for report.html).
    """
    out = Path(out)
    if out.is_dir() or not out.suffix:
        out = out / "report.html"
    ok = sum(bool(r["ok"]) for r in rows)
    total = sum(float(r.get("seconds", 0.0)) for r in rows)
    overview = html_table(
        ["notebook", "profile", "seconds", "status", "error"],
        [[r["notebook"], r.get("profile", ""), float(r.get("seconds", 0.0)), bool(r["ok"]),
          r.get("error", "")] for r in rows],
    )
    metric_rows = [[r["notebook"], name, value]
                   for r in rows for name, value in (r.get("metrics") or {}).items()
                   if not name.startswith("_") and isinstance(value, int | float)]
    sections = [
        ("", f"<p>{ok} of {len(rows)} notebooks ran cleanly in {total:.0f} s.</p>"),
        ("Notebooks", overview),
        ("Time", image_html(png_data_uri(_seconds_figure(rows)), "seconds per notebook")
         if rows else "<p>No notebooks ran.</p>"),
        ("Headline metrics", html_table(["notebook", "metric", "value"], metric_rows)
         if metric_rows else "<p>No metrics were recorded.</p>"),
    ]
    return write_html(out, "bertlab course run", sections)
