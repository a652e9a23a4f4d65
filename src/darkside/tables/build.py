"""Regenerate the paper's tables (the keys of ``paper_tables.yaml``) from the scoring stage's metric files, as
data frames (:mod:`darkside.tables.render`) written as CSV, Markdown and LaTeX, and their headline cells.
Each layout names its ``builder``, a kind of table a module of this package registers (``@builder``): a
new table of a known kind is one yaml entry, a new kind one module plus its yaml."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from pathlib import Path

from darkside.errors import DarksideError
from darkside.tables.common import BUILDERS, Builder, Metrics, TableInputs
from darkside.tables.headline import HEADLINE_BUILDERS, write_headline
from darkside.tables.paper import paper_tables
from darkside.tables.render import Table, table_frame, write_table


@cache
def builders() -> dict[str, Builder]:
    """Every registered builder: importing the package's modules runs their ``@builder`` decorators."""
    for m in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"{__package__}.{m.name}")
    return BUILDERS


def build_table(name: str, inputs: TableInputs, metrics_root: Path) -> Table:
    spec = paper_tables().get(name)
    if spec is None:
        raise DarksideError(f"unknown table {name!r} (known: {', '.join(paper_tables())})")
    kind = spec.get("builder")
    if kind not in builders():
        raise DarksideError(f"{name}: unknown builder {kind!r} in paper_tables.yaml (known: {', '.join(builders())})")
    return builders()[kind](name, spec, inputs, Metrics(metrics_root, inputs.seeds))


def build_tables(inputs: TableInputs, metrics_root: Path, out_dir: Path, tables: list[str] | None = None,
                 headline: Path | None = None) -> list[Path]:
    """Write ``<out_dir>/<table>.{csv,md,tex}`` for each table (all by default), and with ``headline`` the
    headline metrics of those tables there (:mod:`darkside.tables.headline`); return the paths.
    Every table is built before any is written, so a bad name or metric file leaves no partial set."""
    names = tables or list(paper_tables())
    frames = {name: table_frame(build_table(name, inputs, metrics_root)) for name in names}
    paths = [p for frame in frames.values() for p in write_table(frame, out_dir)]
    if headline is not None:
        main = {n: f for n, f in frames.items() if paper_tables()[n]["builder"] in HEADLINE_BUILDERS}
        paths.append(write_headline(main, headline))
    return paths
