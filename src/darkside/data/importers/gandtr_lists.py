"""gandtr's generator-training lists ``train_day.txt`` / ``train_night.txt`` and the 512 px filter.

Each line is an SfM-120k image path relative to ``ims/`` (``8a/b3/ab/<cid>``); we key images by
the cid (the last path component) and rebuild the path with the cid rule, so a list written with
or without the folder prefix reads the same. The paper drops images whose smaller side is below
512 px and reports 86,385 day and 10,039 night images; the importer writes its own counts next
to the paper's (``dataset.json`` metadata) instead of assuming them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darkside.data.importers._common import DatasetEntry, probe_cid, require, sfm_images, write_prepared
from darkside.data.manifest import GroundTruth, ImageRecord
from darkside.errors import DarksideError
from darkside.settings import setting

PAPER_COUNTS: dict[str, int] = {"day": 86385, "night": 10039}


@dataclass(frozen=True)
class DayNightListSettings:
    min_side: int = setting("images whose smaller side is below it are dropped (paper 512)", ge=0, default=512)


def read_cid_list(path: str | Path) -> list[str]:
    """cids of a gandtr list (one path per line; blank lines and '#' comments skipped), in order."""
    p = require(Path(path), "gandtr day/night list")
    cids = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            cids.append(line.replace("\\", "/").rsplit("/", 1)[-1])
    return cids


def filter_min_side(cids: list[str], image_dir: Path, min_side: int, domain: str) -> tuple[list[ImageRecord], int]:
    """Records (split ``gan``) of the images whose smaller side is >= ``min_side``, and how many were dropped."""
    kept: list[ImageRecord] = []
    dropped = 0
    for cid in dict.fromkeys(cids):  # a repeated cid is one image
        rel, w, h = probe_cid(image_dir, cid)
        if min(w, h) < min_side:
            dropped += 1
            continue
        kept.append(ImageRecord(rel, cid, "gan", domain, "0", "0", w, h))
    return kept, dropped


def import_daynight_lists(day_list: str | Path, night_list: str | Path, image_dir: str | Path, out_dir: str | Path,
                          settings: DayNightListSettings | None = None, name: str = "sfm120k-daynight") -> Path:
    """Prepared dataset of the generator-training images: split ``gan``, domain day/night.

    An image in both lists is refused (it cannot be both). Counts before and after the
    ``min_side`` filter go to ``dataset.json`` metadata beside :data:`PAPER_COUNTS`.
    """
    settings = settings or DayNightListSettings()
    images = Path(image_dir)
    day_cids, night_cids = read_cid_list(day_list), read_cid_list(night_list)
    both = set(day_cids) & set(night_cids)
    if both:
        raise DarksideError(f"{night_list}: image {sorted(both)[0]} is also in {day_list}")
    records: list[ImageRecord] = []
    counts: dict[str, Any] = {"min_side": settings.min_side, "paper": dict(PAPER_COUNTS)}
    for domain, cids in (("day", day_cids), ("night", night_cids)):
        kept, dropped = filter_min_side(cids, images, settings.min_side, domain)
        records += kept
        counts[domain] = {"listed": len(set(cids)), "kept": len(kept), "dropped_small": dropped}
    return write_prepared(out_dir, name, records, GroundTruth(protocol="training"), images,
                          source="gandtr train_day.txt / train_night.txt", metadata={"counts": counts})


def prepare(raw_root: Path, out_dir: Path, settings: DayNightListSettings | None = None) -> Path:
    """Registry entry point: lists and images from ``<raw_root>/sfm120k``."""
    raw = Path(raw_root) / "sfm120k"
    return import_daynight_lists(raw / "train_day.txt", raw / "train_night.txt", sfm_images(raw), out_dir, settings)


#: the datasets this module imports (darkside.data.registry collects them)
DATASETS = (
    DatasetEntry(
        "sfm120k-daynight", prepare, "gandtr release (MIT code); images as sfm120k",
        "none of its own (lists and images from sfm120k)", "../sfm120k/train_day.txt, train_night.txt, ims/",
        requires=("sfm120k",),
        notes="generator-training lists after the 512 px minimum side filter (paper: 86,385 day, 10,039 night)",
    ),
)
