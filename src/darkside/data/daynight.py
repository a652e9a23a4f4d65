"""Day/night filtering of the generator-training images (the DAG's ``filter_day_night`` stage).

Where the manifest has day/night labels (the paper: gandtr's published ``train_day.txt`` /
``train_night.txt`` lists, imported into the ``domain`` column) they are used as they are;
images labelled ``other`` are classified automatically from image statistics. Images whose
smaller side is below ``min_side`` are dropped (paper: 512 px, leaving 86,385 day and 10,039
night images). The classifier's accuracy is measured on the labelled images and reported, so a
user can judge how far to trust it on unlabelled data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from darkside.atomic import atomic_write_json, atomic_write_text
from darkside.data.images import load_rgb
from darkside.data.manifest import ImageRecord, Manifest
from darkside.settings import setting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DayNightSettings:
    """``day_night``: which generator-training images are kept, and the classifier of unlabelled ones."""

    min_side: int = setting("images whose smaller side is below this are dropped (paper 512)", ge=0)
    night_max_median_lightness: float = setting("unlabelled images: night if the median L* (0-100) is below this",
                                                ge=0, le=100)


def median_lightness(rgb: np.ndarray) -> float:
    """Median CIE L* (0-100) of an RGB image (uint8 or float in [0, 1])."""
    img = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2Lab)
    return float(np.median(lab[..., 0]))


def is_night(rgb: np.ndarray, settings: DayNightSettings) -> bool:
    """Image-statistics classifier: a night photograph is dominated by dark pixels.

    Lit windows and lamps are small bright areas, so the median lightness (not the mean, which
    they inflate) separates night from day and sunset.
    """
    return median_lightness(rgb) < settings.night_max_median_lightness


def _classify(manifest: Manifest, record: ImageRecord, settings: DayNightSettings) -> bool:
    return is_night(np.asarray(load_rgb(manifest.image_path(record))), settings)


def filter_day_night(manifest: Manifest, settings: DayNightSettings, split: str = "train", accuracy_sample: int = 2000,
                     seed: int = 0) -> tuple[list[ImageRecord], list[ImageRecord], dict[str, Any]]:
    """Split the ``split`` images into day and night lists; return (day, night, report).

    Labels win where present; ``other`` images are classified. The report holds the counts, the
    number dropped by the size rule, and the classifier's accuracy on (a seeded sample of at most
    ``accuracy_sample``) labelled day/night images.
    """
    records = manifest.select(split=split)
    if not records:
        raise ValueError(f"{manifest.root}: no images in split {split!r}")
    day: list[ImageRecord] = []
    night: list[ImageRecord] = []
    too_small = classified = 0
    for r in tqdm(records, desc=f"day/night {manifest.name}", disable=None):
        if min(r.width, r.height) < settings.min_side:
            too_small += 1
            continue
        if r.domain in ("day", "night"):
            (night if r.domain == "night" else day).append(r)
        elif r.domain == "other":
            classified += 1
            (night if _classify(manifest, r, settings) else day).append(r)
        # sunset images are neither day nor night: the generators translate day -> night
    labelled = [r for r in records if r.domain in ("day", "night")]
    rng = np.random.default_rng(seed)
    if len(labelled) > accuracy_sample:
        labelled = [labelled[i] for i in sorted(rng.choice(len(labelled), accuracy_sample, replace=False))]
    correct = sum(_classify(manifest, r, settings) == (r.domain == "night") for r in labelled)
    accuracy = (100.0 * correct / len(labelled)) if labelled else None
    classifier = {"rule": f"night if median L* < {settings.night_max_median_lightness}",
                  "labelled_evaluated": len(labelled), "accuracy": accuracy}
    report = {"dataset": manifest.name, "split": split, "images": len(records), "day": len(day), "night": len(night),
              "dropped_min_side": too_small, "min_side": settings.min_side, "classified_unlabelled": classified,
              "classifier": classifier}
    return day, night, report


def write_day_night_lists(manifest: Manifest, settings: DayNightSettings, out_dir: str | Path, report_path: str | Path,
                          split: str = "train") -> Path:
    """Write ``day.txt`` / ``night.txt`` (image paths relative to the image root, as gandtr's lists)
    and the JSON report; return ``out_dir``."""
    day, night, report = filter_day_night(manifest, settings, split=split)
    out = Path(out_dir)
    atomic_write_text(out / "day.txt", "".join(f"{r.path}\n" for r in day))
    atomic_write_text(out / "night.txt", "".join(f"{r.path}\n" for r in night))
    atomic_write_json(report_path, report)
    log.info("day/night: %d day, %d night, %d dropped (< %d px), classifier accuracy %s",
             report["day"], report["night"], report["dropped_min_side"], settings.min_side,
             report["classifier"]["accuracy"])
    return out
