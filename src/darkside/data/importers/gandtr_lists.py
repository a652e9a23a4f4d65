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

from darkside.data.importers._common import cid_to_path, first_existing, probe_image, require, write_prepared
from darkside.data.manifest import GroundTruth, ImageRecord
from darkside.errors import DarksideError

PAPER_COUNTS: dict[str, int] = {"day": 86385, "night": 10039}


@dataclass(frozen=True)
class DayNightListSettings:
    """``min_side``: images whose smaller side is below it are dropped (paper: 512)."""

    min_side: int = 512

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DayNightListSettings:
        unknown = set(d) - {"min_side"}
        if unknown:
            raise DarksideError(f"daynight_lists: unknown key {sorted(unknown)[0]!r}")
        value = d.get("min_side", cls.min_side)
        if not isinstance(value, int) or value < 0:
            raise DarksideError("daynight_lists.min_side: expected a non-negative integer")
        return cls(min_side=value)


def read_cid_list(path: str | Path) -> list[str]:
    """cids of a gandtr list (one path per line; blank lines and '#' comments skipped), in order."""
    p = require(Path(path), "gandtr day/night list")
    cids = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            cids.append(line.replace("\\", "/").rsplit("/", 1)[-1])
    return cids


def filter_min_side(cids: list[str], image_dir: Path, min_side: int) -> tuple[list[ImageRecord], int]:
    """Records of the images whose smaller side is >= ``min_side``, and how many were dropped."""
    kept: list[ImageRecord] = []
    dropped = 0
    seen: set[str] = set()
    for cid in cids:
        if cid in seen:
            continue
        seen.add(cid)
        rel = cid_to_path(cid)
        w, h = probe_image(image_dir / rel)
        if min(w, h) < min_side:
            dropped += 1
            continue
        kept.append(ImageRecord(rel, cid, "gan", "day", "0", "0", w, h))
    return kept, dropped


def import_daynight_lists(
    day_list: str | Path,
    night_list: str | Path,
    image_dir: str | Path,
    out_dir: str | Path,
    settings: DayNightListSettings | None = None,
    name: str = "sfm120k-daynight",
) -> Path:
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
        kept, dropped = filter_min_side(cids, images, settings.min_side)
        records += [
            ImageRecord(r.path, r.image_id, r.split, domain, r.cluster, r.place, r.width, r.height) for r in kept
        ]
        counts[domain] = {"listed": len(set(cids)), "kept": len(kept), "dropped_small": dropped}
    return write_prepared(
        out_dir,
        name,
        records,
        GroundTruth(protocol="training"),
        images,
        source="gandtr train_day.txt / train_night.txt",
        metadata={"counts": counts},
    )


def prepare(raw_root: Path, out_dir: Path, settings: DayNightListSettings | None = None) -> Path:
    """Registry entry point: lists and images from ``<raw_root>/sfm120k``."""
    raw = Path(raw_root) / "sfm120k"
    image_dir = first_existing(
        [raw / "ims" / "ims", raw / "ims"], "SfM-120k images (darkside download --dataset sfm120k)"
    )
    return import_daynight_lists(raw / "train_day.txt", raw / "train_night.txt", image_dir, out_dir, settings)
