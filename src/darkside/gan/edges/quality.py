"""Edge-map quality against ground truth: HED vs HED^N, RCF vs RCF^N on night (and day) images.

The paper shows this only qualitatively (Figure 2: "RCF and HED ... do not detect some edges in
the night"); the synthetic benchmark has ground-truth edges, so the mini preset can measure it.

Scoring is BSDS-like but simpler (stated here so nobody compares the numbers with BSDS's):
a predicted edge pixel is correct when a ground-truth edge lies within ``tolerance_px`` (disk),
a ground-truth pixel is recalled when a prediction lies within the same distance; there is no
thinning / non-maximum suppression and no one-to-one matching. Counts are accumulated over the
images of a set per threshold, then the best F over thresholds is reported (ODS), together with
the per-image-best variant (OIS) and the average precision (AP, area under the P-R steps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch import nn

from darkside.atomic import atomic_write_json
from darkside.data.manifest import load_manifest
from darkside.errors import DarksideError
from darkside.evaluate.bootstrap import bootstrap_ci
from darkside.gan.edges.pretrain import image_and_edges
from darkside.settings import setting

DEFAULT_THRESHOLDS = np.linspace(0.01, 0.99, 99)
# columns of a count array: predicted pixels near GT, predicted pixels, GT pixels near a prediction, GT pixels
MATCHED_PRED, PRED, MATCHED_GT, GT = range(4)


@dataclass(frozen=True)
class EdgeQualitySettings:
    """``edges.quality``: how the edge report is scored."""

    tolerance_px: int = setting("match distance in pixels (0 = exact pixels)", ge=0)
    thresholds: int = setting("number of thresholds, evenly spaced in [0.01, 0.99]", ge=2)
    domains: tuple[Literal["day", "sunset", "night", "other"], ...] = setting("manifest domains to score",
                                                                              min_items=1)
    split: str | None = setting("manifest split (null: every split)")
    limit: int | None = setting("first N images per domain in manifest order (null: all)", ge=1)

    @property
    def threshold_values(self) -> np.ndarray:
        return np.linspace(0.01, 0.99, self.thresholds)


def _disk(radius: int) -> np.ndarray:
    """Structuring element of a pixel distance tolerance (a disk; radius 1 is the 3x3 cross)."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Bool mask grown by ``radius`` pixels (no-op for 0)."""
    if radius <= 0:
        return mask.astype(bool)
    return cv2.dilate(mask.astype(np.uint8), _disk(radius)) > 0


def edge_counts(pred: np.ndarray, gt: np.ndarray, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                tolerance_px: int = 1) -> np.ndarray:
    """(T, 4) int64 counts per threshold: [matched predictions, predictions, matched GT, GT].

    ``pred``: H x W scores in [0, 1], an edge where ``pred >= t``; ``gt``: H x W, edge where > 0
    (bool, {0, 1} or {0, 255} PNGs alike).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt_mask = np.asarray(gt) > 0
    if pred.ndim != 2 or pred.shape != gt_mask.shape:
        raise DarksideError(f"edge_counts: prediction {pred.shape} and ground truth {gt_mask.shape} differ "
                            "(both must be H x W)")
    if tolerance_px < 0:
        raise DarksideError(f"edge_counts: tolerance_px must be >= 0, got {tolerance_px}")
    gt_near = dilate(gt_mask, tolerance_px)
    n_gt = int(gt_mask.sum())
    out = np.zeros((len(thresholds), 4), dtype=np.int64)
    for i, t in enumerate(thresholds):
        p = pred >= t
        out[i] = (int((p & gt_near).sum()), int(p.sum()), int((gt_mask & dilate(p, tolerance_px)).sum()), n_gt)
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (BSDS convention: no predictions = precision 0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _f(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    return _ratio(2 * p * r, p + r)


def _precision_recall(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of counts (..., 4) (one row per threshold, or one row)."""
    return _ratio(counts[..., MATCHED_PRED], counts[..., PRED]), _ratio(counts[..., MATCHED_GT], counts[..., GT])


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the P-R steps of arrays ordered by ascending threshold: walking the thresholds
    from high to low, each recall gain is weighted by the precision reached there. Recall can only
    grow as the threshold drops (the predicted sets are nested), so no sorting is needed."""
    r = np.asarray(recall, dtype=np.float64)[::-1]
    p = np.asarray(precision, dtype=np.float64)[::-1]
    gains = np.diff(np.concatenate([[0.0], np.maximum.accumulate(r)]))
    return float(np.sum(gains * p))


def scores_from_counts(counts: np.ndarray, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> dict[str, Any]:
    """ODS precision/recall/F (best fixed threshold over the accumulated counts) and AP."""
    p, r = _precision_recall(np.asarray(counts))
    f = _f(p, r)
    best = int(np.argmax(f))  # first maximum: the lowest threshold among ties
    return {"threshold": float(thresholds[best]), "precision": float(p[best]), "recall": float(r[best]),
            "f": float(f[best]), "ap": average_precision(p, r)}


def edge_scores(pred: np.ndarray, gt: np.ndarray, thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
                tolerance_px: int = 1) -> dict[str, Any]:
    """Scores of one edge map: {'threshold', 'precision', 'recall', 'f', 'ap'}."""
    return scores_from_counts(edge_counts(pred, gt, thresholds, tolerance_px), thresholds)


def dataset_scores(per_image: Sequence[np.ndarray], thresholds: Sequence[float] = DEFAULT_THRESHOLDS
                   ) -> dict[str, Any]:
    """ODS scores of summed counts plus OIS F (each image at its own best threshold, counts summed)."""
    if not per_image:
        raise DarksideError("edge scores: no images to score")
    total = np.sum(per_image, axis=0)
    out = scores_from_counts(total, thresholds)
    ois = np.sum([c[int(np.argmax(_f(*_precision_recall(c))))] for c in per_image], axis=0)
    out["ois_f"] = float(_f(*_precision_recall(ois)))
    out["images"] = len(per_image)
    # per image, for the paired comparison of two detectors on the same images
    out["per_image_ap"] = [scores_from_counts(c, thresholds)["ap"] for c in per_image]
    return out


def paired_ap_difference(a: Sequence[float], b: Sequence[float], samples: int = 1000, seed: int = 0
                         ) -> dict[str, Any]:
    """Per-image AP of detector ``a`` minus ``b`` on the same images: the mean with its 95% bootstrap
    interval over images, and how many images ``a`` scores higher / lower. The dataset-level AP of
    two detectors can differ by less than the spread over images; the paired interval says whether
    the difference is more than that."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size == 0:
        raise DarksideError("paired_ap_difference: no images")
    mean, lo, hi = bootstrap_ci(d, samples, seed)
    return {"mean": mean, "ci": [lo, hi], "images_higher": int((d > 0).sum()),
            "images_lower": int((d < 0).sum()), "images": int(d.size)}


@torch.no_grad()
def predict_edges(detector: nn.Module, image: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """H x W edge probabilities of one RGB uint8 image (detector in eval mode, full image)."""
    x = torch.from_numpy(np.ascontiguousarray(image).astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    y = detector(x.to(torch.device(device)))
    return y[0, 0].float().cpu().numpy()


def score_detectors(dataset_dir: str | Path, detectors: Mapping[str, nn.Module], domain: str = "night",
                    split: str | None = None, limit: int | None = None, device: torch.device | str = "cpu",
                    thresholds: Sequence[float] = DEFAULT_THRESHOLDS, tolerance_px: int = 1) -> dict[str, Any]:
    """{name: scores} of each detector on the dataset's images of ``domain`` (and ``split``; None =
    every split), the first ``limit`` in manifest order, against ``<dataset>/edges/<path>``."""
    man = load_manifest(dataset_dir)
    recs = man.select(split=split, domain=domain)[:limit]
    if not recs:
        raise DarksideError(f"{man.root / 'manifest.csv'}: no images of domain {domain!r}"
                            + (f" in split {split!r}" if split else ""))
    counts: dict[str, list[np.ndarray]] = {name: [] for name in detectors}
    for net in detectors.values():
        net.eval()
    for r in recs:
        img, gt = image_and_edges(man, r)
        for name, net in detectors.items():
            counts[name].append(edge_counts(predict_edges(net, img, device), gt, thresholds, tolerance_px))
    return {name: dataset_scores(c, thresholds) for name, c in counts.items()}


# -- detectors of finished GAN runs ------------------------------------------------------------

def run_student(run_dir: str | Path, device: torch.device | str = "cpu") -> nn.Module | None:
    """The night-adapted student detector (HED^N / RCF^N) of a finished generator run, from its declared
    ``generator.pt`` (its checkpoint is gone once the run finishes, and never reaches a DVC remote); None
    when the run's family trains none."""
    from darkside.gan.family import student_of
    from darkside.gan.train import GENERATOR

    student = student_of(Path(run_dir) / GENERATOR)
    return None if student is None else student.to(torch.device(device))


def night_students(run_dirs: Sequence[str | Path], device: torch.device | str = "cpu") -> dict[str, nn.Module]:
    """The night-adapted students among finished generator runs, named ``<KIND>^N`` after their
    detector (``<KIND>^N (<family>)`` when several runs adapt the same one); runs of families
    without a student are left out. The DAG hands every run of a detector's families, so which
    family trains a student is the families' business, not a list of names in the workflow."""
    found = []
    for run in map(Path, run_dirs):
        student = run_student(run, device)
        if student is not None:
            found.append((type(student).__name__.upper(), run.name, student))
    kinds = [k for k, _, _ in found]
    return {f"{k}^N" if kinds.count(k) == 1 else f"{k}^N ({name})": net for k, name, net in found}


def edge_quality_report(out_path: str | Path, dataset_dir: str | Path, detectors: Mapping[str, nn.Module],
                        domains: Sequence[str] = ("day", "night"), split: str | None = None,
                        limit: int | None = None, device: torch.device | str = "cpu",
                        thresholds: Sequence[float] = DEFAULT_THRESHOLDS, tolerance_px: int = 1) -> Path:
    """Score every detector on every domain and write the JSON report (atomic); returns its path.

    Layout: {"dataset", "split", "limit", "tolerance_px", "thresholds": {min, max, n},
    "scores": {domain: {detector: {threshold, precision, recall, f, ap, ois_f, images, per_image_ap}}},
    "paired": {domain: {"<X>^N - <X>": paired_ap_difference(...)}}} - each adapted student against the
    detector it was trained from, where both are scored.
    """
    scores = {d: score_detectors(dataset_dir, detectors, d, split, limit, device, thresholds, tolerance_px)
              for d in domains}
    pairs = [(name, name[:-2]) for name in detectors if name.endswith("^N") and name[:-2] in detectors]
    paired = {d: {f"{s} - {t}": paired_ap_difference(scores[d][s]["per_image_ap"], scores[d][t]["per_image_ap"])
                  for s, t in pairs} for d in domains} if pairs else {}
    th = np.asarray(thresholds, dtype=np.float64)
    report = {"dataset": str(dataset_dir), "split": split, "limit": limit, "tolerance_px": tolerance_px,
              "thresholds": {"min": float(th.min()), "max": float(th.max()), "n": int(th.size)},
              "scores": scores, "paired": paired}
    return atomic_write_json(out_path, report)
