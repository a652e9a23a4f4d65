"""Writers for regenerated tables: CSV (long format, one cell per line), Markdown and LaTeX. Every regenerated cell
stands next to the paper's value and the difference, with its 95% bootstrap CI over queries; a cell the preset
cannot produce carries the reason."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

from darkside.atomic import atomic_write_text


@dataclass
class Cell:
    paper: float | str | None = None  # the paper's number ('-' in the paper -> None)
    ours: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    note: str = ""  # why the cell is not produced, or a caveat
    display: str | None = None  # how to print ``ours`` when a plain number would mislead (e.g. h:mm:ss)

    @property
    def diff(self) -> float | None:
        return self.ours - float(self.paper) if isinstance(self.paper, (int, float)) and self.ours is not None else None


@dataclass
class Row:
    method: str
    recipe: str | None
    cells: list[Cell]
    extra: bool = False  # not a row of the paper (e.g. the off-the-shelf baseline)


@dataclass
class Block:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    blocks: list[Block]
    footnotes: list[str] = field(default_factory=list)


def _num(v: float | str | None, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    return f"{v:.{digits}f}"


def _ours(c: Cell) -> str:
    if c.ours is None:
        return "n/p"
    if c.display is not None:
        return c.display
    if c.ci_low is None:
        return _num(c.ours)
    return f"{_num(c.ours)} [{_num(c.ci_low)}, {_num(c.ci_high)}]"


def _diff(c: Cell) -> str:
    return "" if c.diff is None else f"{c.diff:+.1f}"


def to_csv(t: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "block", "method", "recipe", "column", "paper", "ours", "ci_low", "ci_high", "diff", "note"])
    for b in t.blocks:
        for r in b.rows:
            for col, c in zip(t.columns, r.cells, strict=True):
                w.writerow([t.name, b.key, r.method, r.recipe or "", col, "" if c.paper is None else c.paper,
                            *("" if v is None else f"{v:.4f}" for v in (c.ours, c.ci_low, c.ci_high, c.diff)), c.note])
    return buf.getvalue()


def _notes(t: Table) -> tuple[dict[str, int], list[str]]:
    """Number the distinct reasons so the tables stay narrow."""
    notes = dict.fromkeys(c.note for b in t.blocks for r in b.rows for c in r.cells if c.note)
    index = {n: i for i, n in enumerate(notes, 1)}
    return index, [f"({i}) {n}" for n, i in index.items()]


def to_markdown(t: Table) -> str:
    index, notes = _notes(t)
    out = [f"# {t.title}", "",
           "Each cell: regenerated value [95% bootstrap CI over queries] | paper | difference. "
           "`n/p` = not produced by this preset (reason in the notes).", ""]
    for b in t.blocks:
        out += [f"## {b.title}", ""]
        head = ["Method"] + [h for col in t.columns for h in (f"{col} ours", f"{col} paper", "Δ")]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in b.rows:
            cells = [r.method + (" *" if r.extra else "")]
            for c in r.cells:
                mark = f" ({index[c.note]})" if c.note else ""
                cells += [_ours(c) + mark, _num(c.paper), _diff(c)]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    out.append("\\* not a row of the paper.")
    out += ["", *t.footnotes] if t.footnotes else []
    if notes:
        out += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


_TEX_ESCAPE = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
               "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def tex_escape(s: str) -> str:
    return "".join(_TEX_ESCAPE.get(ch, ch) for ch in s)


def to_latex(t: Table) -> str:
    index, notes = _notes(t)
    ncol = 1 + 3 * len(t.columns)
    out = [f"% {t.title}", r"\begin{tabular}{l" + "rrr" * len(t.columns) + "}", r"\toprule"]
    out.append(" & ".join(["Method"] + [rf"\multicolumn{{3}}{{c}}{{{tex_escape(c)}}}" for c in t.columns]) + r" \\")
    out.append(" & ".join([""] + ["ours", "paper", r"$\Delta$"] * len(t.columns)) + r" \\")
    for b in t.blocks:
        out += [r"\midrule", rf"\multicolumn{{{ncol}}}{{l}}{{\textit{{{tex_escape(b.title)}}}}} \\"]
        for r in b.rows:
            cells = [tex_escape(r.method) + (r"$^*$" if r.extra else "")]
            for c in r.cells:
                mark = f"$^{{({index[c.note]})}}$" if c.note else ""
                cells += [tex_escape(_ours(c)) + mark, tex_escape(_num(c.paper)), tex_escape(_diff(c))]
            out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", "% * not a row of the paper"]
    out += [f"% {tex_escape(n)}" for n in notes]
    return "\n".join(out) + "\n"


def write_table(t: Table, out_dir: Path) -> list[Path]:
    """Write ``<name>.csv``, ``.md`` and ``.tex`` atomically; return the paths."""
    return [atomic_write_text(out_dir / f"{t.name}.{ext}", fn(t))
            for ext, fn in (("csv", to_csv), ("md", to_markdown), ("tex", to_latex))]
