"""What the table builders share: inputs, metric reader, cells (per-query means with a 95% bootstrap CI over
queries), paired differences and why a cell is empty. ``<backbone>-<recipe>`` models have their metrics in
``<metrics>/<model>/<dataset>.json``; a table's specifics (backbones, rows, reasons) are in its layout in
``paper_tables.yaml``, so builders name no backbone, recipe or generator family."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darkside.errors import ConfigError, MetricsError
from darkside.evaluate.bootstrap import bootstrap_ci, bootstrap_mean_of_means
from darkside.recipes import ENSEMBLE_JOIN, Ensemble, Recipe, ensemble_by_name, is_ensemble, recipe_by_name
from darkside.settings import parse, setting
from darkside.tables.render import Block, Cell, Row, Table

PerQuery = tuple[list[str], np.ndarray]  # query ids (may be empty in old files) and per-query values


@dataclass(frozen=True)
class TableInputs:
    """What the builders need of a preset, as plain values (building tables imports no torch)."""

    preset: str                    # the preset's name, only quoted in notes
    tokyo: str                     # dataset names of the roles a layout's `sources` name
    roxford: str
    rparis: str
    localization: tuple[str, ...]  # in the order of a localization layout's `datasets`
    cross_domain: dict[str, str]   # cross-domain role (a DaCo layout's `dataset`) -> dataset; a role absent: none
    seeds: tuple[int, ...]         # fine-tuning seeds; a row is the per-query mean over them
    bootstrap_samples: int
    bootstrap_seed: int
    backbones: tuple[str, ...]     # backbones the preset trains
    families: tuple[str, ...]      # generator families the preset trains


@dataclass(frozen=True)
class PairedWith:
    """A row's own baseline (its layout's ``paired_with`` list): the row minus this model, a paired bootstrap
    over the same queries, where the block's ``paired_baseline`` does not fit the row (Table 4: an ensemble
    against its image embedding alone)."""

    method: str = setting("the baseline as the table names it")
    recipe: str = setting("the baseline's recipe (same backbone)")


def paired_with(row: dict[str, Any], where: str = "paper_tables.yaml") -> tuple[PairedWith, ...]:
    """The typed ``paired_with`` of a layout row (a list of {method, recipe}); () where it has none."""
    value = row.get("paired_with")
    if value is None:
        return ()
    at = f"{where} row {row.get('method')!r}: paired_with"
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{at}: expected a list of {{method, recipe}}, got {value!r}")
    return tuple(parse(PairedWith, v, f"{at}[{i}]") for i, v in enumerate(value))


Builder = Callable[[str, dict[str, Any], TableInputs, "Metrics"], Table]  # (name, layout, inputs, metrics)
BUILDERS: dict[str, Builder] = {}


def builder(kind: str) -> Callable[[Builder], Builder]:
    """Register the builder of the tables whose layout says ``builder: <kind>``."""
    def register(fn: Builder) -> Builder:
        BUILDERS[kind] = fn
        return fn
    return register


class Metrics:
    """Lazy reader of ``<root>/<model>/<dataset>.json``. Seed 0 of a model is ``<backbone>-<recipe>``,
    a further seed ``<backbone>-<recipe>.seed<N>``; :meth:`per_query` averages a query's value over the
    seeds that were scored, so a row is the mean of its seeds, query by query."""

    def __init__(self, root: Path, seeds: tuple[int, ...] = (0,)) -> None:
        self.root = root
        self.seeds = tuple(seeds)
        self._cache: dict[Path, dict[str, Any] | None] = {}

    def get(self, model: str, dataset: str) -> dict[str, Any] | None:
        p = self.root / model / f"{dataset}.json"
        if p not in self._cache:
            self._cache[p] = json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
        return self._cache[p]

    def generator(self, family: str) -> dict[str, Any] | None:  # the run's summary, <root>/gans/<family>.json
        return self.get("gans", family)

    def seed_models(self, model: str, dataset: str) -> list[str]:
        """``model`` and its further seeds that have metrics for ``dataset``."""
        more = [f"{model}.seed{s}" for s in self.seeds[1:]]
        return [model] + [m for m in more if self.get(m, dataset) is not None]

    def per_query(self, model: str, dataset: str, key: str, value: str = "ap") -> PerQuery | None:
        """(ids, values) of ``per_query[key]`` (its list ``value``: a retrieval run's AP, a cross-domain run's
        hits), averaged over the model's seeds (matched by id)."""
        runs = [(m, self.get(m, dataset)) for m in self.seed_models(model, dataset)]
        entries = [(m, r["per_query"].get(key)) for m, r in runs if r is not None]
        if not entries or any(e is None for _, e in entries):
            return None
        ids = list(entries[0][1].get("ids", []))
        stack = [_values(entries[0][1], value)] + [_aligned(ids, (list(e.get("ids", [])), _values(e, value)),
                                                     f"{self.root / m / dataset}.json against {model}")
                                            for m, e in entries[1:]]
        return ids, np.mean(stack, axis=0)


def _aligned(ids: list[str], other: PerQuery, where: str = "per-query values") -> np.ndarray:
    """``other``'s values in the order of ``ids`` (by position when either carries no ids)."""
    o_ids, o_v = other
    if ids and o_ids:
        index = {q: i for i, q in enumerate(o_ids)}
        missing = [q for q in ids if q not in index]
        if missing:
            raise MetricsError(f"{where}: scored different queries (e.g. {missing[0]!r} is missing)")
        return o_v[[index[q] for q in ids]]
    if o_v.size != len(ids) and ids:
        raise MetricsError(f"{where}: scored {o_v.size} queries, not {len(ids)}")
    return o_v


def _values(entry: dict[str, Any], key: str = "ap") -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in entry[key]], dtype=np.float64)


def cell(paper: Any, samples: list[np.ndarray] | None, inputs: TableInputs, note: str = "") -> Cell:
    """One sample: its bootstrap CI; several (Table 1's Avg): the CI of their mean of means."""
    if samples is None:
        return Cell(paper=paper, note=note)
    n, seed = inputs.bootstrap_samples, inputs.bootstrap_seed
    mean, lo, hi = bootstrap_ci(samples[0], n, seed) if len(samples) == 1 else bootstrap_mean_of_means(samples, n, seed)
    if math.isnan(mean):
        return Cell(paper=paper, note="no scored queries")
    return Cell(paper=paper, ours=mean, ci_low=lo, ci_high=hi, note=note)


def blocks_of(spec: dict[str, Any], inputs: TableInputs, metrics: Metrics,
              cells_of: Callable[[dict[str, Any], dict[str, Any]], list[Cell]]) -> list[Block]:
    """The layout's blocks, rows ``cells_of(block, row)``: the block's ``extra_rows``, the paper's ``rows``,
    then a ``family_rows`` row per trained family the block has none for (both kinds ``extra``, no paper values)."""
    blocks = []
    for key, b in spec["blocks"].items():
        rows = [{**r, "extra": True} for r in b.get("extra_rows", [])] + list(b["rows"])
        for fam in inputs.families if "family_rows" in b else ():
            title = (metrics.generator(fam) or {}).get("title", fam)
            new = {k: v.format(family=fam, title=title) for k, v in b["family_rows"].items()}
            if not any(all(r.get(k) == v for k, v in new.items() if k != "method") for r in rows):
                rows.append({**new, "extra": True})
        where = f"paper_tables.yaml block {key!r}"
        blocks.append(Block(key, b["title"], [Row(r["method"], r.get("recipe", r.get("family")), cells_of(b, r),
                                                  extra=r.get("extra", False),
                                                  paired_data=uses_paired_data(r, inputs.families, where),
                                                  paired_with=paired_with(r, where))
                                              for r in rows]))
    return blocks


def model_note(row: dict[str, Any], backbone: str, datasets: Iterable[str], inputs: TableInputs,
               metrics: Metrics) -> tuple[str | None, str]:
    """(model, '') when the row's model has metrics for every dataset, else (None, reason)."""
    recipe = row.get("recipe")
    if reason := row.get("missing") or ("external model, not reproduced by the suite" if recipe is None else ""):
        return None, reason
    if backbone not in inputs.backbones:
        return None, f"backbone {backbone} is not in preset {inputs.preset!r}"
    parts = recipe.split(ENSEMBLE_JOIN) if is_ensemble(recipe) else []
    if unknown := [p for p in parts if _suite_recipe(p, inputs.families) is None]:  # e.g. a recipe not written yet
        return None, f"ensemble part {unknown[0]!r} is not a recipe of the suite yet"
    model = f"{backbone}-{recipe}"
    if missing := [d for d in datasets if metrics.get(model, d) is None]:
        # `needs`: what the row's model needs that the suite cannot fetch (an authors' published file)
        needs = f"; it needs {row['needs']}" if row.get("needs") else ""
        return None, f"recipe {recipe!r} not produced by this preset's DAG (no {model}/{missing[0]}.json){needs}"
    return model, ""


def seeds_note(metrics: Metrics, model: str, dataset: str) -> str:
    n = len(metrics.seed_models(model, dataset))
    return f"mean of {n} fine-tuning seeds, query by query" if n > 1 else ""


def paired_differences(a: PerQuery, b: PerQuery) -> np.ndarray:
    """Per-query ``a - b`` over the queries both score (matched by id; by position when the files
    carry no ids); queries either side skips (NaN) are dropped."""
    (a_ids, a_v), (b_ids, b_v) = a, b
    if a_ids and b_ids:
        common = set(b_ids)
        keep = [i for i, q in enumerate(a_ids) if q in common]
        a_ids, a_v = [a_ids[i] for i in keep], a_v[keep]
    elif a_v.size != b_v.size:
        raise MetricsError(f"per-query values of different lengths ({a_v.size} vs {b_v.size}) and no ids")
    d = a_v - _aligned(a_ids, (b_ids, b_v))
    return d[~np.isnan(d)]


def paired_parts(metrics: Metrics, backbone: str, recipe: str, against: str,
                 parts: Iterable[tuple[str, str]]) -> tuple[list[np.ndarray] | None, str]:
    """Per-query ``recipe - against`` of ``backbone`` for each (dataset, per-query key) of ``parts``; (None, why)
    when either model lacks one. Models that share no scored query are a :class:`MetricsError`."""
    diffs = []
    for ds, key in parts:
        a, b = (metrics.per_query(f"{backbone}-{r}", ds, key) for r in (recipe, against))
        if a is None or b is None:
            which = recipe if a is None else against
            return None, f"recipe {which!r} not produced by this preset's DAG (no {key!r} on {ds})"
        d = paired_differences(a, b)
        if not d.size:
            raise MetricsError(f"{backbone}-{recipe} and {backbone}-{against}: no common queries on {ds}")
        diffs.append(d)
    return diffs, ""


def _suite_recipe(recipe: str | None, families: Iterable[str]) -> Recipe | Ensemble | None:
    """The suite's recipe (or ensemble, ``a+b``) of that name; None for no name or a name that is not one (an
    external model)."""
    try:
        if recipe is not None and is_ensemble(recipe):
            return ensemble_by_name(recipe, families)
        return None if recipe is None else recipe_by_name(recipe, families)
    except ConfigError:
        return None


def uses_generator(recipe: str | None, families: Iterable[str]) -> bool:
    """The recipe's typed ``generator`` field is set; a name that is not a suite recipe has none."""
    r = _suite_recipe(recipe, families)
    return r is not None and r.generator is not None


def uses_paired_data(row: dict[str, Any], families: Iterable[str], where: str = "paper_tables.yaml") -> bool:
    """The paper's ``!``: the row's method trains with paired day-night (N/D) data. A paper row says so in its
    layout's typed ``nd``; a row without one (the suite's own rows, claims) has its recipe's ``day_night_pairs``.
    Both given and disagreeing is a layout error, so the mark and what the suite trains cannot drift apart."""
    nd, recipe = row.get("nd"), _suite_recipe(row.get("recipe"), families)
    if nd is not None and not isinstance(nd, bool):
        raise ConfigError(f"{where}: row {row.get('method')!r}: nd must be true or false, got {nd!r}")
    if nd is not None and recipe is not None and nd != recipe.day_night_pairs:
        raise ConfigError(f"{where}: row {row.get('method')!r} says nd: {str(nd).lower()}, but recipe "
                          f"{recipe.name!r} has day_night_pairs={recipe.day_night_pairs}")
    return nd if nd is not None else (recipe is not None and recipe.day_night_pairs)


def _difference_cells(mine: dict[str, PerQuery | None], base: dict[str, PerQuery | None], columns: list[str],
                      combined: dict[str, list[str]], inputs: TableInputs) -> list[Cell]:
    """Cells of ``mine - base`` per column (a combined column: the mean of its columns' differences)."""
    diffs = {col: paired_differences(a, base[col]) if a and base[col] else None for col, a in mine.items()}
    cells = []
    for col in columns:
        parts = [diffs[c] for c in combined.get(col, [col])]
        ok = all(p is not None and p.size for p in parts)
        cells.append(cell(None, parts if ok else None, inputs, "" if ok else "no common scored queries"))
    return cells


def paired_with_block(key: str, backbone: str, rows: list[Row], columns: list[str],
                      per_col: Callable[[str, str], PerQuery | None], inputs: TableInputs,
                      combined: dict[str, list[str]] | None = None,
                      model_of: Callable[[str], str] | None = None) -> Block | None:
    """``<row> - <each of its paired_with>`` rows of a block (Table 4: each ensemble against its image embedding
    alone), a paired bootstrap over the same queries; None where no produced row has a produced baseline.
    ``model_of(recipe)``: the model a row's recipe names (default ``<backbone>-<recipe>``; DaCo's tables name
    models as they are, SIFT pipelines beside ResNet-50 networks)."""
    combined = combined or {}
    model_of = model_of or (lambda recipe: f"{backbone}-{recipe}")
    plain = [c for c in columns if c not in combined]
    out = []
    for row in rows:
        if not row.paired_with or all(c.ours is None for c in row.cells):
            continue
        mine = {col: per_col(model_of(row.recipe), col) for col in plain}
        for base in row.paired_with:
            theirs = {col: per_col(model_of(base.recipe), col) for col in plain}
            if all(v is None for v in theirs.values()):
                continue
            out.append(Row(f"{row.method} - {base.method}", f"{row.recipe} - {base.recipe}",
                           _difference_cells(mine, theirs, columns, combined, inputs), extra=True,
                           paired_data=row.paired_data))
    of = f" ({backbone})" if backbone else ""
    title = f"Paired difference of each row against its own baseline{of}, same queries"
    return Block(f"paired-with-{key}", title, out) if out else None


def paired_block(key: str, backbone: str, rows: list[Row], columns: list[str],
                 per_col: Callable[[str, str], PerQuery | None], baseline: dict[str, str] | None,
                 inputs: TableInputs, combined: dict[str, list[str]] | None = None) -> Block | None:
    """``<generator recipe> - <baseline>`` rows of a block (None without a trained baseline): the paper's claim as
    a paired bootstrap over the same queries, which can separate where the rows' own intervals overlap (both see
    the same hard queries). ``per_col(model, column)``: per-query values; ``combined``: Avg -> its columns."""
    combined = combined or {}
    plain = [c for c in columns if c not in combined]
    # the baseline's per-query values, read once for every row of the block
    base = {col: per_col(f"{backbone}-{baseline['recipe']}", col) for col in plain} if baseline else {}
    if baseline is None or all(v is None for v in base.values()):
        return None
    out = []
    for row in rows:
        if not uses_generator(row.recipe, inputs.families) or all(c.ours is None for c in row.cells):
            continue
        mine = {col: per_col(f"{backbone}-{row.recipe}", col) for col in plain}
        cells = _difference_cells(mine, base, columns, combined, inputs)
        out.append(Row(f"{row.method} - {baseline['method']}", row.recipe, cells, extra=True,
                       paired_data=row.paired_data))
    title = f"Paired difference against {baseline['method']} ({backbone}), same queries"
    return Block(f"paired-{key}", title, out) if out else None
