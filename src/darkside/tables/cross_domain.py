"""DaCo's Tables 1-6: Recall@K of cross-domain retrieval between the two images of each evaluation pair, a
column per setting (A->B, B->A, A<->B) and K, read from the score job's per-query hits of protocol
``cross_domain`` (:mod:`darkside.evaluate.cross_domain`). A layout's ``dataset`` is a role the preset maps to a
dataset (``data.roles.cross_domain``); a row's ``recipe`` is the model's name as it is (``results/metrics/
<model>/<dataset>.json``), since DaCo's tables put SIFT pipelines beside ResNet-50 networks. A layout's
``domains`` pins which manifest domain is A and which B: a run scored the other way round is refused, since its
A->B would be the paper's B->A. Each block opens with the chance row: the recall of a uniformly random ranking
of the scored pairs, the floor its cells are read against."""

from __future__ import annotations

import re
from typing import Any

from darkside.tables.common import (
    Metrics,
    PerQuery,
    TableInputs,
    blocks_of,
    builder,
    cell,
    paired_with_block,
    seeds_note,
)
from darkside.tables.render import Cell, Row, Table


def _model_note(row: dict[str, Any], dataset: str | None, role: str, inputs: TableInputs,
                metrics: Metrics) -> tuple[str | None, str]:
    """(model, '') when the row's model has metrics for the role's dataset, else (None, reason)."""
    recipe = row.get("recipe")
    if reason := row.get("missing") or ("external model, not reproduced by the suite" if recipe is None else ""):
        return None, reason
    if dataset is None:
        return None, f"no dataset plays role {role!r} in preset {inputs.preset!r} (data.roles.cross_domain)"
    if metrics.get(recipe, dataset) is None:
        return None, f"model {recipe!r} not produced by this preset's DAG (no {recipe}/{dataset}.json)"
    return recipe, ""


def domains_note(run: dict[str, Any], expected: dict[str, str] | None) -> str:
    """Why a run cannot fill the table's cells ('' when it can): its A/B domains are not the layout's."""
    got = run.get("domains")
    if expected is None or got == expected:
        return ""
    return f"scored with A = {got.get('A') if got else '?'}, B = {got.get('B') if got else '?'}; the table's " \
           f"A is {expected['A']}, B {expected['B']}"


CHANCE = "Chance (a uniformly random ranking)"


def chance_recall(column: str, pairs: int) -> float:
    """R@K (%) of a uniformly random ranking in a ``"<mode> R@K"`` column of ``pairs`` evaluation pairs: one
    positive among N gallery images for A->B and B->A, among the 2N - 1 others for A<->B."""
    mode, k = column.split()[0], int(re.fullmatch(r"R@(\d+)", column.split()[1]).group(1))  # type: ignore[union-attr]
    gallery = 2 * pairs - 1 if mode == "A<->B" else pairs
    return 100.0 * min(k, gallery) / gallery


def _pairs_scored(spec: dict[str, Any], dataset: str | None, metrics: Metrics) -> int | None:
    """The number of evaluation pairs a run of the table's dataset was scored on (None: no run scored)."""
    for b in spec["blocks"].values():
        for row in b["rows"]:
            run = metrics.get(row["recipe"], dataset) if dataset and row.get("recipe") else None
            if run is not None:
                return int(run["n_queries"])
    return None


@builder("cross_domain")
def build(name: str, spec: dict[str, Any], inputs: TableInputs, metrics: Metrics) -> Table:
    role, columns, sources = spec["dataset"], list(spec["columns"]), spec["sources"]
    dataset = inputs.cross_domain.get(role)

    def per_col(model: str, col: str) -> PerQuery | None:  # None also for a run whose A and B are swapped
        run = metrics.get(model, dataset) if dataset else None
        if run is None or domains_note(run, spec.get("domains")):
            return None
        return metrics.per_query(model, dataset, sources[col], value="hit")

    def cells(b: dict[str, Any], row: dict[str, Any]) -> list[Cell]:
        paper = row.get("values") or [None] * len(columns)
        model, note = _model_note(row, dataset, role, inputs, metrics)
        if model is not None and dataset is not None:
            note = domains_note(metrics.get(model, dataset) or {}, spec.get("domains"))
        if model is None or dataset is None or note:
            return [Cell(paper=v, note=note) for v in paper]
        out = []
        for v, col in zip(paper, columns, strict=True):
            pq = per_col(model, col)
            why = seeds_note(metrics, model, dataset) if pq else f"no {sources[col]!r} hits in {model}/{dataset}.json"
            out.append(cell(v, [pq[1]] if pq else None, inputs, why))
        return out

    blocks = blocks_of(spec, inputs, metrics, cells)
    pairs = _pairs_scored(spec, dataset, metrics)
    why = (f"no dataset plays role {role!r} in preset {inputs.preset!r} (data.roles.cross_domain)" if dataset is None
           else f"no run of {dataset} scored: the number of pairs is unknown")
    chance = Row(CHANCE, None, [Cell(ours=chance_recall(c, pairs)) if pairs else Cell(note=why) for c in columns],
                 extra=True)
    for b in blocks:  # the floor every cell of a block is read against (exact, so no interval)
        b.rows.insert(0, chance)
    paired = [p for b in blocks if (p := paired_with_block(b.key, "", b.rows, columns, per_col, inputs,
                                                              model_of=lambda recipe: recipe)) is not None]
    return Table(name, spec["title"], columns, blocks + paired)
