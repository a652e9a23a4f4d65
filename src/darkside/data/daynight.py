"""Day/night filtering of the generator-training images (the DAG's ``filter_day_night`` stage).

Where the manifest has day/night labels (the paper: gandtr's published ``train_day.txt`` /
``train_night.txt`` lists, imported into the ``domain`` column) they are used as they are;
images labelled ``other`` are classified automatically from image statistics. Images whose
smaller side is below ``min_side`` are dropped (paper: 512 px, leaving 86,385 day and 10,039
night images). The classifier's accuracy is measured on the labelled images and reported, so a
user can judge how far to trust it on unlabelled data.

The two lists are what the day->night families train on. A multi-domain family (MDUIT) trains on every
lighting domain: ``domains.tsv`` (a header line ``path<TAB>domain``, then one line per kept image in manifest
order) labels every kept image, the day and night ones as in the two lists (an ``other`` image under the
domain the classifier gave it) and every further labelled domain (``sunset``) under its own label, by the
same ``min_side`` rule.
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
from darkside.errors import DarksideError
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


DOMAINS_HEADER = "path\tdomain"


def filter_domains(manifest: Manifest, settings: DayNightSettings, split: str = "train", accuracy_sample: int = 2000,
                   seed: int = 0) -> tuple[list[ImageRecord], list[ImageRecord], list[tuple[ImageRecord, str]],
                                           dict[str, Any]]:
    """:func:`filter_day_night`, and every kept image with its lighting domain (manifest order): returns
    (day, night, domains, report); the report's ``domains`` counts the images of each domain."""
    records = manifest.select(split=split)
    if not records:
        raise ValueError(f"{manifest.root}: no images in split {split!r}")
    day: list[ImageRecord] = []
    night: list[ImageRecord] = []
    domains: list[tuple[ImageRecord, str]] = []
    too_small = classified = 0
    for r in tqdm(records, desc=f"day/night {manifest.name}", disable=None):
        if min(r.width, r.height) < settings.min_side:
            too_small += 1
            continue
        if r.domain in ("day", "night"):
            domain = r.domain
        elif r.domain == "other":
            classified += 1
            domain = "night" if _classify(manifest, r, settings) else "day"
        else:  # sunset is neither day nor night (the day->night lists): only a multi-domain family sees it
            domains.append((r, r.domain))
            continue
        (night if domain == "night" else day).append(r)
        domains.append((r, domain))
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
              "classifier": classifier, "domains": {d: sum(x == d for _, x in domains)
                                                    for d in sorted({x for _, x in domains})}}
    return day, night, domains, report


def filter_day_night(manifest: Manifest, settings: DayNightSettings, split: str = "train", accuracy_sample: int = 2000,
                     seed: int = 0) -> tuple[list[ImageRecord], list[ImageRecord], dict[str, Any]]:
    """Split the ``split`` images into day and night lists; return (day, night, report).

    Labels win where present; ``other`` images are classified. The report holds the counts (also per
    lighting domain, see :func:`filter_domains`), the number dropped by the size rule, and the classifier's
    accuracy on (a seeded sample of at most ``accuracy_sample``) labelled day/night images.
    """
    day, night, _, report = filter_domains(manifest, settings, split, accuracy_sample, seed)
    return day, night, report


def read_domains(path: str | Path, image_root: str | Path) -> list[tuple[Path, str]]:
    """The (image path under ``image_root``, domain) lines of a ``domains.tsv`` (:func:`write_day_night_lists`);
    a one-line :class:`DarksideError` naming the file (and line) when it is missing or malformed."""
    p = Path(path)
    if not p.is_file():
        raise DarksideError(f"{p}: lighting-domain list does not exist (written by `darkside filter-day-night`)")
    lines = p.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != DOMAINS_HEADER:
        raise DarksideError(f"{p}:1: not a lighting-domain list (header `path<TAB>domain` expected)")
    out: list[tuple[Path, str]] = []
    for i, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 2 or not all(f.strip() for f in fields):
            raise DarksideError(f"{p}:{i}: not `path<TAB>domain`: {line[:80]!r}")
        out.append((Path(image_root) / fields[0].strip(), fields[1].strip()))
    if not out:
        raise DarksideError(f"{p}: lighting-domain list has no images")
    return out


def write_day_night_lists(manifest: Manifest, settings: DayNightSettings, out_dir: str | Path, report_path: str | Path,
                          split: str = "train") -> Path:
    """Write ``day.txt`` / ``night.txt`` (image paths relative to the image root, as gandtr's lists),
    ``domains.tsv`` (every kept image with its lighting domain, :func:`filter_domains`) and the JSON report;
    return ``out_dir``."""
    day, night, domains, report = filter_domains(manifest, settings, split=split)
    out = Path(out_dir)
    atomic_write_text(out / "day.txt", "".join(f"{r.path}\n" for r in day))
    atomic_write_text(out / "night.txt", "".join(f"{r.path}\n" for r in night))
    atomic_write_text(out / "domains.tsv", "".join([f"{DOMAINS_HEADER}\n", *(f"{r.path}\t{d}\n" for r, d in domains)]))
    atomic_write_json(report_path, report)
    log.info("day/night: %d day, %d night, %d dropped (< %d px), classifier accuracy %s; domains %s",
             report["day"], report["night"], report["dropped_min_side"], settings.min_side,
             report["classifier"]["accuracy"], report["domains"])
    return out
