"""The pages that ``snakemake --report`` shows beside the figures and training curves: every table of
``results/tables`` as an HTML table, a metric JSON file (the synthetic benchmark's calibration) and the
run's settings as nested HTML tables.

A table page is rendered from the table's CSV file (one cell per line: table, block, method, recipe,
column, paper, ours, ci_low, ci_high, diff, note), so it shows exactly what the CSV holds: for every
column the regenerated value with its 95% interval, the paper's value and the difference; a cell the
preset did not produce is greyed and points to its reason, as every other note does. This module
reads files only: no networks, no metrics code.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from darkside.atomic import atomic_write_text
from darkside.errors import DarksideError
from darkside.tables.paper import paper_tables
from darkside.tables.render import EXTRA_MARK, PAIRED_DATA_MARK

# the columns a page needs; the tables' CSV has these and more (darkside.tables.render.COLUMNS)
CSV_COLUMNS = ("table", "block", "method", "recipe", "column", "paper", "ours", "ci_low", "ci_high", "diff", "note")

STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; margin-bottom: 1.2em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; vertical-align: top; }
th { background: #eee; }
td.method, th.method, td.key { text-align: left; }
td.np { color: #888; background: #f2f2f2; font-style: italic; }
td.paper { color: #555; }
ol.notes { color: #444; }
"""


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n<h2>{html.escape(title)}</h2>\n{body}\n</body></html>\n")


def number(text: str) -> str:
    """A CSV number as the tables print it: one decimal from 10 up, two from 1, three significant digits below;
    a value that is not a number (the paper's "0:39" hours of Table 8) as it stands."""
    try:
        v = float(text)
    except ValueError:
        return html.escape(text)
    if not math.isfinite(v):
        return text
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def read_cells(path: Path) -> list[dict[str, str]]:
    """The cells of a table's CSV file; an error naming the file where its header is not the tables' layout."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not set(CSV_COLUMNS) <= set(reader.fieldnames or ()):
            raise DarksideError(f"{path}: expected the columns {','.join(CSV_COLUMNS)} (at least), got "
                                f"{reader.fieldnames}")
        return list(reader)


def method_label(cell: Mapping[str, str]) -> str:
    """The method as the tables print it: the paper's ``!`` after a method trained with paired day-night data,
    ``*`` after a row that is not the paper's (where the CSV has those columns)."""
    marks = (f" {PAIRED_DATA_MARK}" if cell.get("paired_data") == "True" else "") + (
        EXTRA_MARK if cell.get("extra") == "True" else "")
    return cell["method"] + marks


def _note_mark(notes: list[str], note: str) -> str:
    """The footnote number of ``note`` in ``notes`` (added on first use), as a superscript."""
    if note not in notes:
        notes.append(note)
    return f"<sup>{notes.index(note) + 1}</sup>"


def table_html(name: str, cells: Sequence[dict[str, str]]) -> str:
    """One table as an HTML page: a section per block, a row per method, for every column ours [interval],
    the paper's value and the difference; notes numbered below each block."""
    spec = paper_tables().get(name, {})
    blocks: dict[str, list[dict[str, str]]] = {}
    for c in cells:
        blocks.setdefault(c["block"], []).append(c)
    parts = []
    for block, rows in blocks.items():
        # the tables' own title of the block (a paired block's says what it is paired against); older CSVs
        # without the column: the paper's block title
        title = rows[0].get("block_title") or spec.get("blocks", {}).get(block, {}).get("title", block)
        columns = list(dict.fromkeys(c["column"] for c in rows))
        methods = list(dict.fromkeys(c["method"] for c in rows))
        labels = {c["method"]: method_label(c) for c in rows}
        by_key = {(c["method"], c["column"]): c for c in rows}
        notes: list[str] = []

        head = "".join(f"<th>{html.escape(col)} ours</th><th>paper</th><th>&Delta;</th>" for col in columns)
        lines = [f"<h3>{html.escape(str(title))}</h3>", "<table>",
                 f"<tr><th class=\"method\">Method</th>{head}</tr>"]
        for method in methods:
            tds = [f"<td class=\"method\">{html.escape(labels[method])}</td>"]
            for col in columns:
                c = by_key.get((method, col))
                if c is None:
                    tds.append("<td></td><td></td><td></td>")
                    continue
                mark = _note_mark(notes, c["note"]) if c["note"] else ""
                if c["ours"] == "":
                    tds.append(f"<td class=\"np\" title=\"{html.escape(c['note'])}\">n/p{mark}</td>")
                else:
                    ci = (f" [{number(c['ci_low'])}, {number(c['ci_high'])}]" if c["ci_low"] and c["ci_high"]
                          else "")
                    tds.append(f"<td>{number(c['ours'])}{ci}{mark}</td>")
                paper = number(c["paper"]) or "-"
                diff = f"{float(c['diff']):+.1f}" if c["diff"] else ""
                tds.append(f"<td class=\"paper\">{paper}</td><td>{diff}</td>")
            lines.append(f"<tr>{''.join(tds)}</tr>")
        lines.append("</table>")
        if notes:
            lines.append("<ol class=\"notes\">" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ol>")
        parts.append("\n".join(lines))
    intro = ("<p>Each cell: ours [95% bootstrap interval over queries], the paper's value and the difference. "
             "n/p (greyed): not produced by this preset, for the reason in the numbered note.</p>")
    return _page(str(spec.get("title", name)), intro + "\n" + "\n".join(parts))


def write_table_pages(tables_dir: Path, out_dir: Path, names: Iterable[str] | None = None) -> list[Path]:
    """``out_dir/<table>.html`` for every table (``names``; default: every table of the paper's tables file)
    from ``tables_dir/<table>.csv``; return the paths written."""
    written = []
    for name in names if names is not None else paper_tables():
        source = Path(tables_dir) / f"{name}.csv"
        if not source.is_file():
            raise DarksideError(f"{source}: no such table (run the tables stage)")
        written.append(atomic_write_text(Path(out_dir) / f"{name}.html", table_html(name, read_cells(source))))
    return written


def _value_html(value: Any) -> str:
    if isinstance(value, Mapping):
        rows = "".join(f"<tr><td class=\"key\">{html.escape(str(k))}</td><td class=\"method\">{_value_html(v)}</td>"
                       "</tr>" for k, v in value.items())
        return f"<table>{rows}</table>" if rows else "{}"
    if isinstance(value, list) and not any(isinstance(v, (Mapping, list)) for v in value):
        return html.escape("[" + ", ".join(json.dumps(v) for v in value) + "]")
    if isinstance(value, list):
        return "".join(_value_html(v) for v in value)
    return html.escape(json.dumps(value))


def mapping_html(title: str, value: Mapping[str, Any], intro: str = "") -> str:
    """A nested mapping (a JSON file, settings) as nested two-column HTML tables."""
    return _page(title, (f"<p>{html.escape(intro)}</p>\n" if intro else "") + _value_html(value))


def write_json_page(source: Path, out: Path, title: str) -> Path:
    """``source`` (a JSON object) as an HTML page at ``out``; return ``out``."""
    try:
        value = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DarksideError(f"{source}: not a readable JSON file ({exc})") from None
    if not isinstance(value, Mapping):
        raise DarksideError(f"{source}: expected a JSON object, got {type(value).__name__}")
    return atomic_write_text(out, mapping_html(title, value, f"From {source}."))


def write_settings_page(preset: str, values: Mapping[str, Any], out: Path) -> Path:
    """The settings of ``preset`` the run read (overlays included) as an HTML page at ``out``; return ``out``."""
    intro = (f"The active preset, {preset}, as the run read it (params.yaml with any --configfile or --config "
             "overlay). Each result's own job settings are listed with it in the report.")
    return atomic_write_text(out, mapping_html(f"Settings: preset {preset}", values, intro))
