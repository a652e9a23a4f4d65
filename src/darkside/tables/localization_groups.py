"""Localization by groups of query domains (MDUIT's Table 1: RobotCar Seasons Day-All and Night-All): % of a
localization dataset's queries whose top-1 retrieved image's pose (paradigm 1, the score job's metrics) is within
(position, rotation) thresholds, a column per query group and threshold. A group is the layout's ``query_groups``
entry, a name and the lighting domains of the manifest it pools (Day-All: day and sunset, RobotCar's dawn and dusk
being sunset; Night-All: night, which RobotCar's night-rain is too). Each cell is a bootstrap interval over the
group's queries; a row's ``paired_with`` baselines add per-query paired differences over the same queries.

The per-query hits are Table 3's (:func:`darkside.tables.localization.hits` of the group's domains).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from darkside.settings import parse, setting
from darkside.tables.common import (
    Metrics,
    PerQuery,
    TableInputs,
    blocks_of,
    builder,
    cell,
    model_note,
    paired_with_block,
    seeds_note,
)
from darkside.tables.localization import hits
from darkside.tables.render import Cell, Table


@dataclass(frozen=True)
class QueryGroup:
    """One ``query_groups`` entry of a layout: a column group and the manifest domains of its queries."""

    name: str = setting("the column group as the paper names it (Day-All)")
    domains: tuple[str, ...] = setting("the lighting domains of the manifest whose queries it pools", min_items=1)


def group_hits(run: dict[str, Any], t_m: float, t_deg: float, domains: tuple[str, ...]) -> PerQuery:
    """(ids, 100 x within the thresholds) of the run's queries of ``domains``, in the run's query order."""
    pq = run["localization"]["per_query"]
    return [q for q, d in zip(pq["ids"], pq["domains"], strict=True) if d in domains], hits(run, t_m, t_deg, domains)


@builder("localization-groups")
def build(name: str, spec: dict[str, Any], inputs: TableInputs, metrics: Metrics) -> Table:
    groups = [parse(QueryGroup, g, f"paper_tables.yaml {name}.query_groups[{i}]")
              for i, g in enumerate(spec["query_groups"])]
    columns = [(g, tuple(t)) for g in groups for t in spec["thresholds"]]
    labels = [f"{g.name} {t[0]}m,{t[1]}deg" for g, t in columns]
    datasets = dict(zip(spec["datasets"], inputs.localization, strict=False))  # a role the preset lacks is absent

    def per_query(model: str, dataset: str, col: str) -> PerQuery | None:
        """The column's per-query hits of ``model``, averaged over its seeds query by query (None: no metrics)."""
        g, (t_m, t_deg) = columns[labels.index(col)]
        runs = [metrics.get(m, dataset) for m in metrics.seed_models(model, dataset)]
        if not runs or any(r is None for r in runs):
            return None
        per_run = [group_hits(r, t_m, t_deg, g.domains) for r in runs]
        return per_run[0][0], np.mean([h for _, h in per_run], axis=0)

    def cells(b: dict[str, Any], row: dict[str, Any]) -> list[Cell]:
        paper = [v for group in row["values"] for v in group] if "values" in row else [None] * len(columns)
        dataset = datasets.get(b["dataset"])
        model, note = (model_note(row, b["backbone"], [dataset], inputs, metrics) if dataset else
                       (None, f"no {b['dataset']}-like localization dataset in preset {inputs.preset!r}"))
        if not model:
            return [Cell(paper=v, note=note) for v in paper]
        # the row's own caveat (a row the suite reproduces in its own way) and the seeds' note
        why = "; ".join(n for n in (row.get("note", ""), seeds_note(metrics, model, dataset)) if n)
        out = []
        for v, col in zip(paper, labels, strict=True):
            hits = per_query(model, dataset, col)[1]  # type: ignore[index]  (model_note: its metrics exist)
            out.append(cell(v, [hits], inputs, why) if hits.size else
                       Cell(paper=v, note="no query of the group with a ground-truth pose"))
        return out

    out = []
    for block in blocks_of(spec, inputs, metrics, cells):
        b = spec["blocks"][block.key]
        dataset = datasets.get(b["dataset"])
        own = paired_with_block(block.key, b["backbone"], block.rows, labels,
                                lambda m, col, ds=dataset: per_query(m, ds, col) if ds else None, inputs)
        out += [block, *([own] if own else [])]
    return Table(name, spec["title"], labels, out)
