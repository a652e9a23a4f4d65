"""The benchmark read against its floor and its ceiling: chance (random unit descriptors through the same scorer,
``<metrics>/chance/<dataset>.json``), the layout's rows (the day-trained baselines, the recipe without
translation and the oracle, whose translator is the benchmark's own night renderer), and the room left
between a recipe and the oracle as paired differences over the same queries. A number of the mini suite means
something only between those two."""

from __future__ import annotations

from typing import Any

import numpy as np

from darkside.errors import MetricsError
from darkside.tables.common import Metrics, TableInputs, builder, cell, paired_parts, uses_paired_data
from darkside.tables.render import Block, Cell, Row, Table
from darkside.tables.retrieval import per_query_table


def chance_value(chance: dict[str, Any], key: str) -> float | None:
    """A per-query key's chance level in a chance file: ``mAP``, a breakdown cell, or a setting of the
    revisited protocol (whose metrics the chance file flattens to ``<setting>.mAP``)."""
    if key in chance.get("breakdown", {}):
        return float(chance["breakdown"][key])
    metrics = chance.get("metrics", {})
    value = metrics.get(key, metrics.get(f"{key}.mAP"))
    return None if value is None else float(value)


def _column_parts(spec: dict[str, Any], inputs: TableInputs) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each column with the (dataset, per-query key) sources it averages (one for a plain column)."""
    sources = {col: (getattr(inputs, role), key) for col, (role, key) in spec["sources"].items()}
    averages: dict[str, list[str]] = spec.get("averages", {})
    return [(col, [sources[part] for part in averages.get(col, [col])]) for col in spec["columns"]]


def _chance_row(spec: dict[str, Any], inputs: TableInputs, metrics: Metrics) -> Row:
    cells = []
    for _, parts in _column_parts(spec, inputs):
        files = [metrics.get("chance", ds) for ds, _ in parts]
        values = [None if f is None else chance_value(f, key) for f, (_, key) in zip(files, parts, strict=True)]
        if any(v is None for v in values):
            cells.append(Cell(note="no chance level (run `darkside chance`)"))
        else:
            draws = files[0].get("draws")  # type: ignore[union-attr]
            if draws is None:
                raise MetricsError(f"{metrics.root / 'chance' / parts[0][0]}.json: no 'draws' (not a chance file)")
            cells.append(Cell(ours=float(np.mean(values)), note=f"random unit descriptors, mean of {draws} draws"))
    return Row("chance", None, cells, extra=True)


def _room_row(room: dict[str, Any], backbone: str, spec: dict[str, Any], inputs: TableInputs,
              metrics: Metrics) -> Row:
    cells = []
    for _, parts in _column_parts(spec, inputs):
        diffs, why = paired_parts(metrics, backbone, room["recipe"], room["against"], parts)
        cells.append(Cell(note=why) if diffs is None else cell(None, diffs, inputs))
    return Row(room["method"], room["recipe"], cells, extra=True,
               paired_data=uses_paired_data({"recipe": room["recipe"]}, inputs.families))


@builder("instrument")
def instrument_table(name: str, spec: dict[str, Any], inputs: TableInputs, metrics: Metrics) -> Table:
    """Chance, the layout's rows (with their CIs), and each ``room`` entry's paired difference."""
    rows_table = per_query_table(name, {**spec, "paired_baseline": None}, inputs, metrics)
    blocks = []
    for block in rows_table.blocks:
        b = spec["blocks"][block.key]
        rooms = [_room_row(r, b["backbone"], spec, inputs, metrics) for r in b.get("room", [])]
        blocks.append(Block(block.key, block.title, [_chance_row(spec, inputs, metrics), *block.rows, *rooms]))
    return Table(name, spec["title"], rows_table.columns, blocks, rows_table.footnotes)
