"""Tables of per-query metrics (1, 4, 5, 7: mAP on the Tokyo-, Oxford-, Paris-like sets; 6: on the Tokyo-like set
per lighting pair), a column per (dataset role, per-query key) of the layout's ``sources``; an ``averages`` column
resamples its datasets independently."""

from __future__ import annotations

from typing import Any

from darkside.errors import MetricsError
from darkside.tables.common import (
    Metrics,
    TableInputs,
    blocks_of,
    builder,
    cell,
    model_note,
    paired_block,
    paired_with_block,
    seeds_note,
)
from darkside.tables.render import Cell, Table


def per_query_table(name: str, spec: dict[str, Any], inputs: TableInputs, metrics: Metrics,
                    absent: str | None = None) -> Table:
    """Every block, each followed by its paired differences against ``paired_baseline``. ``absent``:
    the note of a cell whose model lacks the column's per-query key (None: that is an error)."""
    columns, averages = list(spec["columns"]), spec.get("averages", {})
    sources = {col: (getattr(inputs, role), key) for col, (role, key) in spec["sources"].items()}
    datasets = list(dict.fromkeys(ds for ds, _ in sources.values()))

    def cells(b: dict[str, Any], row: dict[str, Any]) -> list[Cell]:
        model, note = model_note(row, b["backbone"], datasets, inputs, metrics)
        paper = row.get("values") or [None] * len(columns)
        if not model:
            return [Cell(paper=v, note=note) for v in paper]
        values = {}
        for col, (ds, key) in sources.items():
            if (pq := metrics.per_query(model, ds, key)) is None and absent is None:
                raise MetricsError(f"{metrics.root / model / ds}.json: no per-query {key!r} values")
            values[col] = None if pq is None else pq[1]
        # the row's own caveat (a row the suite reproduces in its own way) and the seeds' note
        note = "; ".join(n for n in (row.get("note", ""), seeds_note(metrics, model, datasets[0])) if n)
        parts = [[values[c] for c in averages.get(col, [col])] for col in columns]  # Avg: its datasets' values
        return [cell(v, p, inputs, note) if all(x is not None for x in p) else Cell(v, note=absent or "")
                for v, p in zip(paper, parts, strict=True)]

    blocks = []
    for block in blocks_of(spec, inputs, metrics, cells):
        b = spec["blocks"][block.key]
        paired = paired_block(block.key, b["backbone"], block.rows, columns,
                              lambda m, col: metrics.per_query(m, *sources[col]),
                              spec.get("paired_baseline") if b.get("paired", True) else None, inputs, averages)
        # rows with their own baselines (paired_with: Table 4's ensembles against their image embedding alone)
        own = paired_with_block(block.key, b["backbone"], block.rows, columns,
                                lambda m, col: metrics.per_query(m, *sources[col]), inputs, averages)
        blocks += [block, *(p for p in (paired, own) if p)]
    return Table(name, spec["title"], columns, blocks)


builder("retrieval")(per_query_table)


@builder("breakdown")
def breakdown_table(name: str, spec: dict[str, Any], inputs: TableInputs, metrics: Metrics) -> Table:
    """Table 6, from the breakdown keys the scoring stage writes beside ``mAP`` (query class -> positive class)."""
    return per_query_table(name, spec, inputs, metrics, absent="dataset has no lighting breakdown")
