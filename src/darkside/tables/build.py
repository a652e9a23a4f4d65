"""Regenerate every table of the paper from the scoring stage's metric JSON files.

A regenerated cell is the mean over queries of the per-query values the scoring stage keeps
(AP x100, or localisation hits), with a 95% percentile bootstrap interval over queries; Table 1's
"Avg" resamples the three datasets independently and averages. Models are named
``<backbone>-<recipe>`` and their metrics live in ``<metrics>/<model>/<dataset>.json``. A cell
that the active preset cannot produce says why instead of showing a number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from darkside.config import Preset
from darkside.errors import MetricsError
from darkside.evaluate.bootstrap import bootstrap_ci, bootstrap_mean_of_means
from darkside.tables.paper import paper_tables
from darkside.tables.render import Block, Cell, Row, Table, write_table

PerQuery = tuple[list[str], np.ndarray]  # query ids (may be empty in old files) and per-query values
RETRIEVAL_TABLES = ("table1", "table4", "table5", "table7")
ALL_TABLES = ("table1", "table3", "table4", "table5", "table6", "table7", "table8")
# Table 6 column -> the scoring stage's breakdown key
BREAKDOWN = {"D->S": "day->sunset", "S->D": "sunset->day", "S->N": "sunset->night",
             "N->S": "night->sunset", "D->N": "day->night", "N->D": "night->day"}
# Rows the paper does not have but the suite reports beside it, per (table, block)
EXTRA_ROWS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("table1", "vgg16"): [("GeM off-the-shelf (no fine-tuning)", "offtheshelf")],
    ("table1", "resnet101"): [("GeM off-the-shelf (no fine-tuning)", "offtheshelf")],
    ("table3", "aachen-vgg16"): [("GeM off-the-shelf", "offtheshelf")],
    ("table3", "aachen-resnet101"): [("GeM off-the-shelf", "offtheshelf")],
    ("table3", "robotcar-vgg16"): [("GeM off-the-shelf", "offtheshelf")],
    ("table3", "robotcar-resnet101"): [("GeM off-the-shelf", "offtheshelf")],
    # the claim's baseline and the other GAN family of Table 1, beside the paper's HED^N GAN rows
    ("table6", "main"): [("GeM off-the-shelf", "offtheshelf"), ("CLAHE CD", "clahe-cd"),
                         ("CycleGAN C", "cyclegan-c"), ("CycleGAN CD", "cyclegan-cd")],
}
# The comparison behind the paper's central claim: every generator recipe against this baseline, as
# a paired bootstrap over the same queries. Row intervals of two recipes can overlap while the paired
# interval of their difference does not (both see the same hard queries).
PAIRED_BASELINE = ("CLAHE CD", "clahe-cd")
# Rows whose ingredients the suite does not implement (yet), with the reason
UNSUPPORTED: dict[str, str] = {
    "how": "HOW (local descriptors + ASMK) is not implemented yet",
    "edgemac": "EdgeMAC is not implemented yet",
    "drit": "DRIT++ is not implemented yet",
    "cut": "CUT is not implemented yet",
    "cyeda": "CyEDA is not implemented yet",
}


class Metrics:
    """Lazy reader of ``<root>/<model>/<dataset>.json``.

    A fine-tuned model of the first seed is ``<backbone>-<recipe>``; each further seed of ``seeds``
    has its own ``<backbone>-<recipe>.seed<N>`` folder. :meth:`per_query` averages a query's value
    over the seeds that were scored, so a row is the mean of its seeds, query by query.
    """

    def __init__(self, root: Path, seeds: tuple[int, ...] = (0,)) -> None:
        self.root = root
        self.seeds = tuple(seeds)
        self._cache: dict[Path, dict[str, Any] | None] = {}

    def get(self, model: str, dataset: str) -> dict[str, Any] | None:
        p = self.root / model / f"{dataset}.json"
        if p not in self._cache:
            self._cache[p] = json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
        return self._cache[p]

    def seed_models(self, model: str, dataset: str) -> list[str]:
        """``model`` and its further seeds that have metrics for ``dataset``."""
        more = [f"{model}.seed{s}" for s in self.seeds[1:]]
        return [model] + [m for m in more if self.get(m, dataset) is not None]

    def per_query(self, model: str, dataset: str, key: str) -> PerQuery | None:
        """(ids, values) of ``per_query[key]``, averaged over the model's seeds (matched by id)."""
        runs = [(m, self.get(m, dataset)) for m in self.seed_models(model, dataset)]
        entries = [(m, r["per_query"].get(key)) for m, r in runs if r is not None]
        if not entries or any(e is None for _, e in entries):
            return None
        ids = list(entries[0][1].get("ids", []))
        stack = [_values(entries[0][1])]
        for m, e in entries[1:]:
            other = (list(e.get("ids", [])), _values(e))
            stack.append(_aligned(ids, other, f"{self.root / m / dataset}.json against {model}"))
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


def _cell(paper: Any, samples: list[np.ndarray] | None, preset: Preset, note: str = "") -> Cell:
    if samples is None:
        return Cell(paper=paper, note=note)
    ev = preset.evaluate
    if len(samples) == 1:
        mean, lo, hi = bootstrap_ci(samples[0], ev.bootstrap_samples, ev.bootstrap_seed)
    else:
        mean, lo, hi = bootstrap_mean_of_means(samples, ev.bootstrap_samples, ev.bootstrap_seed)
    if math.isnan(mean):
        return Cell(paper=paper, note="no scored queries")
    return Cell(paper=paper, ours=mean, ci_low=lo, ci_high=hi, note=note)


def _unsupported(recipe: str | None) -> str | None:
    if recipe is None:
        return "external model, not reproduced by the suite"
    for prefix, reason in UNSUPPORTED.items():
        if recipe.startswith(prefix):
            return reason
    return None


def _model_note(preset: Preset, metrics: Metrics, backbone: str, recipe: str | None,
                datasets: list[str]) -> tuple[str | None, str]:
    """(model, '') when the model's metrics exist, else (None, reason)."""
    reason = _unsupported(recipe)
    if reason:
        return None, reason
    if backbone not in preset.backbones:
        return None, f"backbone {backbone} is not in preset {preset.name!r}"
    model = f"{backbone}-{recipe}"
    missing = [d for d in datasets if metrics.get(model, d) is None]
    if missing:
        return None, f"recipe {recipe!r} not produced by this preset's DAG (no {model}/{missing[0]}.json)"
    return model, ""


def _retrieval_row(table: str, columns: list[str], paper_values: list[Any], method: str, recipe: str | None,
                   backbone: str, preset: Preset, metrics: Metrics, extra: bool = False) -> Row:
    roles = preset.roles
    datasets = {"Tokyo": roles["tokyo"], "ROxf": roles["roxford"], "RPar": roles["rparis"]}
    model, note = _model_note(preset, metrics, backbone, recipe, list(datasets.values()))
    per_col: dict[str, np.ndarray] = {}
    if model:
        for col, key in (("Tokyo", "mAP"), ("ROxf", "medium"), ("RPar", "medium")):
            values = metrics.per_query(model, datasets[col], key)
            if values is None:
                raise MetricsError(f"{metrics.root / model / datasets[col]}.json: no per-query {key!r} values")
            per_col[col] = values[1]
        note = _seeds_note(metrics, model, datasets["Tokyo"])
    cells = []
    for col, paper in zip(columns, paper_values, strict=True):
        if not model:
            cells.append(Cell(paper=paper, note=note))
        elif col == "Avg":
            cells.append(_cell(paper, [per_col["Tokyo"], per_col["ROxf"], per_col["RPar"]], preset, note))
        else:
            cells.append(_cell(paper, [per_col[col]], preset, note))
    return Row(method, recipe, cells, extra=extra)


def _seeds_note(metrics: Metrics, model: str, dataset: str) -> str:
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


def _is_generator_recipe(recipe: str | None, preset: Preset) -> bool:
    families = preset.raw.get("gan", {}).get("families", {})
    return recipe is not None and any(recipe == f or recipe.startswith(f + "-") for f in families)


def _paired_block(key: str, backbone: str, rows: list[Row], columns: list[str],
                  per_col: Callable[[str, str], PerQuery | None], preset: Preset, metrics: Metrics,
                  combined: dict[str, list[str]] | None = None) -> Block | None:
    """``<generator recipe> - CLAHE CD`` rows of one block; None when the baseline was not trained.
    ``per_col(model, column)`` gives a column's per-query values; ``combined`` maps a column such as
    Table 1's Avg to the columns it averages (each difference resampled on its own, then averaged)."""
    base_method, base_recipe = PAIRED_BASELINE
    combined = combined or {}
    plain = [c for c in columns if c not in combined]
    # the baseline's per-query values, read once for every row of the block
    base = {col: per_col(f"{backbone}-{base_recipe}", col) for col in plain}
    if all(v is None for v in base.values()):
        return None
    out = []
    for row in rows:
        if not _is_generator_recipe(row.recipe, preset) or all(c.ours is None for c in row.cells):
            continue
        diffs: dict[str, np.ndarray | None] = {}
        for col in plain:
            a, b = per_col(f"{backbone}-{row.recipe}", col), base[col]
            diffs[col] = paired_differences(a, b) if a and b else None
        cells = []
        for col in columns:
            parts = [diffs[c] for c in combined.get(col, [col])]
            ok = all(p is not None and p.size for p in parts)
            cells.append(_cell(None, parts if ok else None, preset, "" if ok else "no common scored queries"))
        out.append(Row(f"{row.method} - {base_method}", row.recipe, cells, extra=True))
    if not out:
        return None
    return Block(f"paired-{key}", f"Paired difference against {base_method} ({backbone}), same queries", out)


def _block_backbone(table: str, block_key: str) -> str:
    if table == "table1":
        return {"how-resnet18": "resnet18"}.get(block_key, block_key)
    return "vgg16"  # Tables 4-7 are VGG-16 experiments


def _retrieval_columns(preset: Preset, metrics: Metrics) -> Callable[[str, str], PerQuery | None]:
    roles = preset.roles
    where = {"Tokyo": (roles["tokyo"], "mAP"), "ROxf": (roles["roxford"], "medium"),
             "RPar": (roles["rparis"], "medium")}
    return lambda model, col: metrics.per_query(model, *where[col])


def _retrieval_table(name: str, preset: Preset, metrics: Metrics) -> Table:
    spec = paper_tables()[name]
    blocks = []
    for key, b in spec["blocks"].items():
        backbone = _block_backbone(name, key)
        rows = [_retrieval_row(name, spec["columns"], [None] * len(spec["columns"]), m, r, backbone, preset,
                               metrics, extra=True) for m, r in EXTRA_ROWS.get((name, key), [])]
        rows += [_retrieval_row(name, spec["columns"], row["values"], row["method"], row.get("recipe"), backbone,
                                preset, metrics) for row in b["rows"]]
        blocks.append(Block(key, b["title"], rows))
        paired = _paired_block(key, backbone, rows, spec["columns"], _retrieval_columns(preset, metrics), preset,
                               metrics, combined={"Avg": ["Tokyo", "ROxf", "RPar"]})
        if paired:
            blocks.append(paired)
    if "text" in spec:  # numbers quoted in the paper's text (LAB inversion, section 4.4)
        rows = [_retrieval_row(name, spec["columns"], row["values"], row["method"], row.get("recipe"), "vgg16",
                               preset, metrics) for row in spec["text"]]
        blocks.append(Block("text", "Quoted in the text (section 4.4)", rows))
    return Table(name, spec["title"], list(spec["columns"]), blocks)


def _breakdown_table(preset: Preset, metrics: Metrics) -> Table:
    spec = paper_tables()["table6"]
    tokyo = preset.roles["tokyo"]
    blocks = []
    for key, b in spec["blocks"].items():
        entries = [(m, r, [None] * 6, True) for m, r in EXTRA_ROWS.get(("table6", key), [])]
        entries += [(row["method"], row["recipe"], row["values"], False) for row in b["rows"]]
        rows = []
        for method, recipe, paper_values, extra in entries:
            model, note = _model_note(preset, metrics, "vgg16", recipe, [tokyo])
            cells = []
            for col, paper in zip(spec["columns"], paper_values, strict=True):
                if not model:
                    cells.append(Cell(paper=paper, note=note))
                    continue
                pq = metrics.per_query(model, tokyo, BREAKDOWN[col])
                cells.append(_cell(paper, [pq[1]] if pq else None, preset,
                                   _seeds_note(metrics, model, tokyo) if pq else "dataset has no lighting breakdown"))
            rows.append(Row(method, recipe, cells, extra=extra))
        blocks.append(Block(key, b["title"], rows))
        paired = _paired_block(key, "vgg16", rows, spec["columns"],
                               lambda model, col: metrics.per_query(model, tokyo, BREAKDOWN[col]), preset, metrics)
        if paired:
            blocks.append(paired)
    return Table("table6", spec["title"], list(spec["columns"]), blocks)


def _localization_hits(run: dict[str, Any], t_m: float, t_deg: float) -> np.ndarray:
    """100 x (position and rotation within the thresholds) per query; unlocalised queries miss."""
    pq = run["localization"]["per_query"]
    pos = np.array([np.inf if v is None else v for v in pq["position_error_m"]], dtype=float)
    rot = np.array([np.inf if v is None else v for v in pq["rotation_error_deg"]], dtype=float)
    return 100.0 * ((pos <= t_m) & (rot <= t_deg))


def _localization_table(preset: Preset, metrics: Metrics) -> Table:
    """Table 3: paradigm 1 (pose of the top-1 image) is computed; 2a/2b need local features + COLMAP."""
    spec = paper_tables()["table3"]
    thresholds = [tuple(t) for t in spec["thresholds"]]
    columns = [f"{p} {t[0]}m,{t[1]}deg" for p in ("top-1", "2a", "2b") for t in thresholds]
    loc = list(preset.roles["localization"])
    datasets = {"aachen": loc[0] if loc else None, "robotcar": loc[1] if len(loc) > 1 else None}
    blocks = []
    for key, b in spec["blocks"].items():
        dataset, backbone = datasets[b["dataset"]], b["backbone"]
        entries = [(m, r, [[None] * 3] * 3, True) for m, r in EXTRA_ROWS.get(("table3", key), [])]
        entries += [(row["method"], row["recipe"], row["values"], False) for row in b["rows"]]
        rows = []
        for method, recipe, paper_values, extra in entries:
            flat_paper = [v for group in paper_values for v in group]
            if dataset is None:
                model, note = None, f"no {b['dataset']}-like localization dataset in preset {preset.name!r}"
            else:
                model, note = _model_note(preset, metrics, backbone, recipe, [dataset])
            cells = []
            for i, paper in enumerate(flat_paper):
                paradigm, (t_m, t_deg) = i // 3, thresholds[i % 3]
                if not model:
                    cells.append(Cell(paper=paper, note=note))
                elif paradigm > 0:
                    cells.append(Cell(paper=paper, note="paradigms 2a/2b need local features and COLMAP "
                                                        "(retrieval pairs are exported for kapture)"))
                else:
                    hits = np.mean([_localization_hits(metrics.get(m, dataset), t_m, t_deg)
                                    for m in metrics.seed_models(model, dataset)], axis=0)
                    cells.append(_cell(paper, [hits] if hits.size else None, preset,
                                       _seeds_note(metrics, model, dataset) if hits.size
                                       else "no query with a ground-truth pose"))
            rows.append(Row(method, recipe, cells, extra=extra))
        blocks.append(Block(key, b["title"], rows))
    return Table("table3", spec["title"], columns, blocks)


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _generator_table(preset: Preset, metrics: Metrics) -> Table:
    """Table 8 from the generator runs' own logs (``<metrics>/gans/<family>.json``): total and per-epoch
    training time (h:mm:ss on this machine; the paper's hours are on a Tesla P100), epochs trained,
    and parameters under the paper's counting convention (millions)."""
    spec = paper_tables()["table8"]
    blocks = []
    families = set(preset.raw["gan"]["families"])
    for key, b in spec["blocks"].items():
        rows = []
        for row in b["rows"]:
            fam = row["family"]
            path = metrics.root / "gans" / f"{fam}.json"
            reason = _unsupported(fam) or (None if fam in families else f"family {fam!r} not in preset {preset.name!r}")
            if reason is None and not path.is_file():
                reason = f"generator not trained by this preset's DAG (no gans/{fam}.json)"
            if reason:
                rows.append(Row(row["method"], fam, [Cell(paper=v, note=reason) for v in row["values"]]))
                continue
            g = json.loads(path.read_text(encoding="utf-8"))
            train_h, epoch_h, epochs, params = row["values"]
            where = f"measured on {g.get('device', '?')}, {g['images_per_s']:.1f} images/s"
            rows.append(Row(row["method"], fam, [
                Cell(paper=train_h, ours=g["train_s"] / 3600, display=_hms(g["train_s"]), note=where),
                Cell(paper=epoch_h, ours=g["epoch_s"] / 3600, display=_hms(g["epoch_s"]), note=where),
                Cell(paper=epochs, ours=float(g["epochs"]), display=str(g["epochs"])),
                Cell(paper=params, ours=float(g["params_paper_millions"]),
                     note="" if preset.name == "paper" else "parameters of this preset's (scaled-down) networks"),
            ]))
        blocks.append(Block(key, b["title"], rows))
    return Table("table8", spec["title"], list(spec["columns"]), blocks)


def build_table(name: str, preset: Preset, metrics_root: Path) -> Table:
    metrics = Metrics(metrics_root, preset.seeds)
    if name in RETRIEVAL_TABLES:
        return _retrieval_table(name, preset, metrics)
    if name == "table3":
        return _localization_table(preset, metrics)
    if name == "table6":
        return _breakdown_table(preset, metrics)
    if name == "table8":
        return _generator_table(preset, metrics)
    raise ValueError(f"unknown table {name!r} (known: {', '.join(ALL_TABLES)})")


def build_tables(preset: Preset, metrics_root: Path, out_dir: Path, tables: list[str] | None = None) -> list[Path]:
    """Write ``<out_dir>/<table>.{csv,md,tex}`` for each table; return the paths."""
    written: list[Path] = []
    for name in tables or ALL_TABLES:
        written += write_table(build_table(name, preset, metrics_root), out_dir)
    return written
