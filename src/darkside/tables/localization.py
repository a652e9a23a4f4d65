"""Table 3: night queries localized within (position, rotation) thresholds, %, a column per paradigm and
threshold. Paradigm top-1 reads the score job's metrics (``<dataset>.json``), a paradigm with ``metrics: M`` the
localize job's ``<dataset>.M.json``; only queries of the layout's ``queries`` domains count (all when absent). A
paradigm whose layout says ``missing`` is not computed."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from darkside.tables.common import Metrics, TableInputs, blocks_of, builder, cell, model_note, seeds_note
from darkside.tables.render import Cell, Table


def hits(run: dict[str, Any], t_m: float, t_deg: float, domains: Collection[str] | None) -> np.ndarray:
    """100 x (position and rotation within the thresholds) per query whose domain is one of ``domains`` (None: every
    query), in the run's order; unlocalised queries miss."""
    pq = run["localization"]["per_query"]
    pos, rot = (np.array([np.inf if v is None else v for v in pq[k]], dtype=float)
                for k in ("position_error_m", "rotation_error_deg"))
    keep = (np.ones(len(pos), dtype=bool) if domains is None
            else np.array([d in domains for d in pq["domains"]], dtype=bool))
    return (100.0 * ((pos <= t_m) & (rot <= t_deg)))[keep]


@builder("localization")
def build(name: str, spec: dict[str, Any], inputs: TableInputs, metrics: Metrics) -> Table:
    columns = [(p, tuple(t)) for p in spec["paradigms"] for t in spec["thresholds"]]
    datasets = dict(zip(spec["datasets"], inputs.localization, strict=False))  # a role the preset lacks is absent

    def cells(b: dict[str, Any], row: dict[str, Any]) -> list[Cell]:
        paper = [v for group in row["values"] for v in group] if "values" in row else [None] * len(columns)
        dataset = datasets.get(b["dataset"])
        model, note = (model_note(row, b["backbone"], [dataset], inputs, metrics) if dataset else
                       (None, f"no {b['dataset']}-like localization dataset in preset {inputs.preset!r}"))
        out = []
        for v, (paradigm, (t_m, t_deg)) in zip(paper, columns, strict=True):
            if not model or "missing" in paradigm:
                out.append(Cell(paper=v, note=paradigm["missing"] if model else note))
                continue
            source = f"{dataset}.{paradigm['metrics']}" if "metrics" in paradigm else dataset
            runs = [metrics.get(m, source) for m in metrics.seed_models(model, dataset)]
            if any(r is None for r in runs):
                out.append(Cell(paper=v, note=f"no {model}/{source}.json (the localize job's metrics)"))
                continue
            per_query = np.mean([hits(r, t_m, t_deg, spec.get("queries")) for r in runs], axis=0)
            why = seeds_note(metrics, model, dataset) if per_query.size else "no query with a ground-truth pose"
            out.append(cell(v, [per_query] if per_query.size else None, inputs, why))
        return out

    return Table(name, spec["title"], [f"{p['name']} {t[0]}m,{t[1]}deg" for p, t in columns],
                 blocks_of(spec, inputs, metrics, cells))
