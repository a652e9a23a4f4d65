"""Chance levels of a prepared dataset: the scores of random unit descriptors under the dataset's own
protocol (the same scorer as a model's), averaged over seeded draws. A mini-suite number means
something only against this floor; the README and the closing notes of calibration work quote it.

``chance_levels`` returns (and ``darkside chance`` writes)::

    {"dataset", "protocol", "draws", "dim", "seed",
     "metrics": {<headline>: mean over draws},                 # e.g. mAP, or medium.mAP (flattened)
     "breakdown": {<query class -> positive class>: mean mAP},  # tokyo only
     "spread": {<same keys as metrics and breakdown>: std over draws}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from darkside.atomic import atomic_write_json
from darkside.config import ScoreSettings
from darkside.data.manifest import load_groundtruth, load_manifest
from darkside.errors import DarksideError
from darkside.evaluate.score import PROTOCOLS
from darkside.extract.hdf5 import DescriptorSet


def random_descriptors(ids: list[str], dim: int, rng: np.random.Generator) -> np.ndarray:
    """(len(ids), dim) float32 rows drawn uniformly on the unit sphere."""
    x = rng.standard_normal((len(ids), dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested dict as ``a.b`` keys, counts (``n_*``) left out."""
    out: dict[str, float] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith("n_"):
            out[f"{prefix}{k}"] = float(v)
    return out


def chance_levels(dataset_dir: Path, settings: ScoreSettings, draws: int = 20, dim: int = 128,
                  seed: int = 0) -> dict[str, Any]:
    """Mean (and std) over ``draws`` of every headline metric and breakdown cell for random descriptors."""
    if draws < 1 or dim < 1:
        raise DarksideError(f"chance: draws and dim must be >= 1 (got {draws}, {dim})")
    root = Path(dataset_dir)
    manifest = load_manifest(root, check_files=False)
    gt = load_groundtruth(root, manifest)
    scorer = PROTOCOLS.get(gt.protocol)
    if scorer is None:
        raise DarksideError(f"{root / 'groundtruth.json'}: protocol {gt.protocol!r} has no queries to score")
    ids = [r.image_id for r in manifest.records]
    qids = [q.query for q in gt.queries] if gt.queries and any(q.bbox is not None for q in gt.queries) else None
    rng = np.random.default_rng(seed)
    runs: list[dict[str, float]] = []
    for _ in range(draws):
        ds = DescriptorSet(ids, random_descriptors(ids, dim, rng), qids,
                           random_descriptors(qids, dim, rng) if qids is not None else None)
        body = scorer(manifest, gt, ds, settings, root / "groundtruth.json", root / "<random descriptors>", None)
        flat = {f"metrics.{k}": v for k, v in _flat(body.get("metrics", {})).items()}
        flat.update({f"breakdown.{k}": float(v["mAP"]) for k, v in body.get("breakdown", {}).items()})
        runs.append(flat)
    keys = sorted(set.intersection(*(set(r) for r in runs)))
    mean = {k: float(np.mean([r[k] for r in runs])) for k in keys}
    return {"dataset": manifest.name, "protocol": gt.protocol, "draws": draws, "dim": dim, "seed": seed,
            "metrics": {k.removeprefix("metrics."): v for k, v in mean.items() if k.startswith("metrics.")},
            "breakdown": {k.removeprefix("breakdown."): v for k, v in mean.items() if k.startswith("breakdown.")},
            "spread": {k: float(np.std([r[k] for r in runs])) for k in keys}}


def write_chance_levels(dataset_dir: Path, settings: ScoreSettings, out_json: Path, draws: int = 20,
                        dim: int = 128, seed: int = 0) -> Path:
    """:func:`chance_levels` to ``out_json`` (atomically); return the path."""
    return atomic_write_json(Path(out_json), chance_levels(dataset_dir, settings, draws, dim, seed))
