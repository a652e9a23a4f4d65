"""The paper's numbers and each table's layout, transcribed once into ``paper_tables.yaml`` (package data)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

PAPER_TABLES = Path(__file__).with_name("paper_tables.yaml")


@cache
def paper_tables() -> dict[str, Any]:
    """All tables: ``{table: {builder, title, columns, blocks: {key: {title, rows, ...}}, ...}}``."""
    return yaml.safe_load(PAPER_TABLES.read_text(encoding="utf-8"))


def paper_value(table: str, block: str, method: str, column: str) -> Any:
    """One number of the paper (``None`` where the paper has '-')."""
    t = paper_tables()[table]
    for row in t["blocks"][block]["rows"]:
        if row["method"] == method:
            return row["values"][t["columns"].index(column)]
    raise KeyError(f"{table}/{block}: no row {method!r}")
