"""Regenerated tables as pandas data frames, written as CSV, Markdown and LaTeX by pandas' own writers.

A builder returns a :class:`Table` (blocks of rows of cells); :func:`table_frame` turns it into one long frame,
one line per cell, and every output is that frame: the CSV is the frame as it stands, so
``pandas.read_csv("results/tables/table1.csv")`` gives it back, and Markdown and LaTeX pivot it to one line per
row with an (ours, paper, Δ) triple per table column. The headline metrics (:mod:`darkside.tables.headline`)
read the same frames. Every regenerated cell stands next to the paper's value and the difference, with its 95%
bootstrap CI over queries; a cell the preset cannot produce carries the reason.

The frame's (and the CSV's) columns, in this order:

- ``table``: the table's name (a key of paper_tables.yaml); ``block``: the block's key; ``block_title``: its title
- ``method``: the row as the paper (or the suite) names it, without marks
- ``recipe``: the suite's recipe (Table 8: the generator family) of the row; empty for a model the suite lacks;
  ``<recipe> - <baseline>`` on a row's paired difference against one of its own baselines (``paired_with``)
- ``extra``: True for a row that is not one of the paper's (the suite's baselines, paired differences, chance);
  Markdown and LaTeX mark it ``*``
- ``paired_data``: True for a method trained with paired day-night (N/D) data; Markdown and LaTeX mark it ``!``
  after the method, as the paper does
- ``column``: the table's column the cell is in
- ``paper``: the paper's value; empty where the paper has '-' (Table 8's hours per epoch are its h:mm text)
- ``ours``: the regenerated value; empty where it is not produced (the note says why)
- ``ci_low``, ``ci_high``: the 95% bootstrap interval of ``ours`` over queries; empty where there is none
- ``diff``: ``ours - paper`` where both are numbers
- ``display``: how the tables print ``ours`` where a plain number would mislead (Table 8's h:mm:ss), else empty
- ``note``: why the cell is not produced, or a caveat (Markdown and LaTeX number the distinct notes)
- ``wall_clock``: True where ``ours`` is a measured time (Table 8's training hours; its note gives the
  throughput), which no two runs share; every other cell of a seed and preset reproduces byte for byte
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from darkside.atomic import atomic_write_text

if TYPE_CHECKING:
    from darkside.tables.common import PairedWith

#: the columns of :func:`table_frame` and of the CSV files, in order
COLUMNS = ("table", "block", "block_title", "method", "recipe", "extra", "paired_data", "column", "paper", "ours",
           "ci_low", "ci_high", "diff", "display", "note", "wall_clock")
EXTRA_MARK, PAIRED_DATA_MARK = "*", "!"
LEGEND = {EXTRA_MARK: "not a row of the paper.",
          PAIRED_DATA_MARK: "uses paired day-night training data (N/D), as the paper marks it."}


@dataclass
class Cell:
    paper: float | str | None = None  # the paper's number ('-' in the paper -> None)
    ours: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    note: str = ""  # why the cell is not produced, or a caveat
    display: str | None = None  # how to print ``ours`` when a plain number would mislead (e.g. h:mm:ss)
    wall_clock: bool = False  # ``ours`` (and the note) is a measured time: it differs from run to run

    @property
    def diff(self) -> float | None:
        return self.ours - float(self.paper) if isinstance(self.paper, (int, float)) and self.ours is not None else None


@dataclass
class Row:
    method: str
    recipe: str | None
    cells: list[Cell]
    extra: bool = False  # not a row of the paper (e.g. the off-the-shelf baseline)
    paired_data: bool = False  # trained with paired day-night (N/D) data: the paper's "!"
    paired_with: tuple[PairedWith, ...] = ()  # the row's own baselines (its layout's paired_with), not printed


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


def table_frame(t: Table) -> pd.DataFrame:
    """The table as one long frame, one line per cell (the module docstring names its columns)."""
    lines = [{"table": t.name, "block": b.key, "block_title": b.title, "method": r.method, "recipe": r.recipe or "",
              "extra": r.extra, "paired_data": r.paired_data, "column": col, "paper": c.paper, "ours": c.ours,
              "ci_low": c.ci_low, "ci_high": c.ci_high, "diff": c.diff, "display": c.display or "", "note": c.note,
              "wall_clock": c.wall_clock}
             for b in t.blocks for r in b.rows for col, c in zip(t.columns, r.cells, strict=True)]
    frame = pd.DataFrame(lines, columns=list(COLUMNS))
    # the paper's column keeps its values as they are (numbers, Table 8's "0:39", None for '-'); the CSV then
    # prints 79.4 as 79.4, not through the float format of the regenerated numbers
    frame["paper"] = pd.Series([c.paper for b in t.blocks for r in b.rows for c in r.cells], dtype=object)
    for col in ("ours", "ci_low", "ci_high", "diff"):
        frame[col] = frame[col].astype("float64")
    frame = frame.astype({"extra": bool, "paired_data": bool, "wall_clock": bool})
    frame.attrs.update(name=t.name, title=t.title, columns=list(t.columns), footnotes=list(t.footnotes))
    return frame


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _num(v: float | str | None, digits: int = 1) -> str:
    if _missing(v):
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:.{digits}f}"


def _ours(line: pd.Series) -> str:
    if _missing(line["ours"]):
        return "n/p"
    if line["display"]:
        return str(line["display"])
    if _missing(line["ci_low"]):
        return _num(line["ours"])
    return f"{_num(line['ours'])} [{_num(line['ci_low'])}, {_num(line['ci_high'])}]"


def _diff(line: pd.Series) -> str:
    return "" if _missing(line["diff"]) else f"{line['diff']:+.1f}"


def _notes(frame: pd.DataFrame) -> dict[str, int]:
    """Number the distinct reasons, in order of appearance, so the tables stay narrow."""
    return {n: i for i, n in enumerate(dict.fromkeys(n for n in frame["note"] if n), 1)}


def wide_frame(frame: pd.DataFrame, note_mark: str = " ({})", escape: Any = str, extra: str = f" {EXTRA_MARK}",
               paired_data: str = f" {PAIRED_DATA_MARK}") -> pd.DataFrame:
    """One line per row of the table, indexed by (block key, block title, marked method), a (column, ours | paper
    | Δ) column per cell, each printed as the tables print it; ``note_mark``: how a cell points at its note."""
    index, ncol = _notes(frame), len(frame.attrs["columns"])
    records, keys = [], []
    for start in range(0, len(frame), ncol):  # a row of the table is its ``ncol`` consecutive cells
        group = frame.iloc[start:start + ncol]
        first = group.iloc[0]
        marks = (paired_data if first["paired_data"] else "") + (extra if first["extra"] else "")
        keys.append((first["block"], escape(first["block_title"]), escape(first["method"]) + marks))
        rec = {}
        for _, line in group.iterrows():
            col = escape(line["column"])
            mark = note_mark.format(index[line["note"]]) if line["note"] else ""
            rec[(col, "ours")] = escape(_ours(line)) + mark
            rec[(col, "paper")] = escape(_num(line["paper"]))
            rec[(col, "Δ")] = escape(_diff(line))
        records.append(rec)
    wide = pd.DataFrame(records, index=pd.MultiIndex.from_tuples(keys, names=["block", "title", "Method"]))
    wide.columns = pd.MultiIndex.from_tuples(wide.columns)
    return wide


def to_csv(frame: pd.DataFrame) -> str:
    """The long frame as CSV: the regenerated numbers with 4 decimals, an empty field where there is none."""
    return frame.to_csv(index=False, float_format="%.4f", lineterminator="\n")


def to_markdown(frame: pd.DataFrame) -> str:
    """A heading per block and its rows as a pipe table (pandas' ``to_markdown``), then the marks and notes."""
    out = [f"# {frame.attrs['title']}", "",
           "Each cell: regenerated value [95% bootstrap CI over queries] | paper | difference. "
           "`n/p` = not produced by this preset (reason in the notes).", ""]
    wide = wide_frame(frame)
    # by key: two blocks may share a title (the paired differences of two blocks of one backbone)
    for key in wide.index.get_level_values("block").unique():
        block = wide.xs(key, level="block")
        title = block.index.get_level_values("title")[0]
        block = block.droplevel("title")
        block.columns = [f"{col} {part}" for col, part in block.columns]
        # cells are text as printed: tabulate must not re-read "+1.8" or "196.0" as numbers
        text = block.reset_index().to_markdown(index=False, tablefmt="pipe", disable_numparse=True)
        out += [f"## {title}", "", text, ""]
    out += [f"\\{EXTRA_MARK} {LEGEND[EXTRA_MARK]}"]
    if frame["paired_data"].any():
        out += ["", f"{PAIRED_DATA_MARK} {LEGEND[PAIRED_DATA_MARK]}"]
    out += ["", *frame.attrs.get("footnotes", [])] if frame.attrs.get("footnotes") else []
    if notes := _notes(frame):
        out += ["", "Notes:", ""] + [f"- ({i}) {n}" for n, i in notes.items()]
    return "\n".join(out) + "\n"


_TEX_ESCAPE = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
               "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def tex_escape(s: str) -> str:
    return "".join(_TEX_ESCAPE.get(ch, ch) for ch in s)


def to_latex(frame: pd.DataFrame) -> str:
    """One tabular (pandas' ``Styler.to_latex``, booktabs rules): the block titles in the first column, a
    three-column group (ours, paper, Δ) per table column; the marks and notes as comments below."""
    wide = wide_frame(frame, note_mark="$^{{({})}}$", escape=tex_escape, extra="$^*$")
    wide.columns = pd.MultiIndex.from_tuples([(col, {"Δ": r"$\Delta$"}.get(part, part)) for col, part in wide.columns])
    # the header says "Method" above the methods (a column level's name stands above the index), not in a row of
    # its own; a block's title stands on its first row only
    wide = wide.droplevel("block")
    wide.index.names = [None, None]
    wide.columns.names = [None, "Method"]
    tex = wide.style.to_latex(hrules=True, multicol_align="c", multirow_align="naive", clines="skip-last;data",
                          column_format="ll" + "rrr" * len(frame.attrs["columns"]))
    out = [f"% {frame.attrs['title']}", tex.rstrip("\n"), f"% {EXTRA_MARK} {LEGEND[EXTRA_MARK]}"]
    if frame["paired_data"].any():
        out.append(f"% {PAIRED_DATA_MARK} {LEGEND[PAIRED_DATA_MARK]}")
    out += [f"% ({i}) {tex_escape(n)}" for n, i in _notes(frame).items()]
    return "\n".join(out) + "\n"


def write_table(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Write ``<name>.csv``, ``.md`` and ``.tex`` of a :func:`table_frame` atomically; return the paths."""
    name = frame.attrs["name"]
    return [atomic_write_text(out_dir / f"{name}.{ext}", fn(frame))
            for ext, fn in (("csv", to_csv), ("md", to_markdown), ("tex", to_latex))]
