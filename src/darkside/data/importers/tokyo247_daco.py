"""Tokyo 24/7 as DaCo's day<->night pairs: 375 scenes, 300 training and 75 evaluation pairs.

DaCo (leftthomas/DaCo) pairs ``day_00001 ... day_00375`` with ``night_00001 ... night_00375`` and trains on the
first 300, evaluating on the last 75 (its reported recalls are multiples of 1/75). Its files are not the
published ones, so the pairing is rebuilt from Tokyo 24/7's own layout (:mod:`.tokyo247`): sorted by name, each
consecutive triple of ``247query_v3`` is one scene (one place seen in one direction) with one day, one sunset
and one night image; pair k is scene k's day and night image, scenes in name order. That DaCo numbered its scenes
in the same order is our reading (its numbering is not published); the split sizes are DaCo's. DaCo's own folders
(``original/{domain_a,domain_b}/{train,val}/``, day = domain A) are read as they are when placed under
``data/raw/tokyo247-daco/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from darkside.data.importers._common import DatasetEntry, daco_layout_pairs, has_daco_layout, index_images, paired_dataset, require
from darkside.data.importers.tokyo247 import check_scene_triples, read_lighting
from darkside.errors import DarksideError

#: DaCo's split: the first 300 scenes train, the remaining 75 are evaluated
TRAIN_PAIRS: int = 300
SCENES: int = 375


@dataclass(frozen=True)
class _Scene:
    day: Path
    night: Path


def native_scenes(images: Path) -> list[_Scene]:
    """The day and night image of every scene of ``247query_v3`` (name order, scene rule checked)."""
    files = index_images(images)
    names = sorted(files)
    labels = [read_lighting(files[n].with_suffix(".csv")) for n in names]
    check_scene_triples(names, labels, images)
    scenes = []
    for start in range(0, len(names), 3):
        by_light = {labels[i]: files[names[i]] for i in range(start, start + 3)}
        scenes.append(_Scene(by_light["day"], by_light["night"]))
    return scenes


def import_tokyo247_daco(root: str | Path, out_dir: str | Path, name: str = "tokyo247-daco",
                         train_pairs: int = TRAIN_PAIRS) -> Path:
    """Day (domain A) / night (domain B) pairs, protocol ``cross_domain``; ``root`` is Tokyo's raw folder
    (``247query_v3`` inside) or DaCo's pre-arranged one."""
    base = Path(root)
    if has_daco_layout(base):
        pairs = [(s, a, b, "tokyo") for s, a, b in daco_layout_pairs(base)]
        return paired_dataset(pairs, ("day", "night"), base, Path(out_dir), name, "Tokyo 24/7 (DaCo's folders)",
                              metadata={"layout": "daco"})
    images = require(base / "247query_v3", "247query_v3.zip extracted")
    scenes = native_scenes(images)
    if len(scenes) <= train_pairs:
        raise DarksideError(f"{images}: {len(scenes)} scenes, but DaCo's split trains on the first {train_pairs} "
                            "and evaluates on the rest")
    pairs = [("train" if k < train_pairs else "val", s.day, s.night, f"place{k // 3:04d}")
             for k, s in enumerate(scenes)]
    meta = {"layout": "247query_v3", "scenes": len(scenes), "expected_scenes": SCENES,
            "split_rule": f"scenes in name order: the first {train_pairs} train, the rest val (DaCo's sizes)"}
    return paired_dataset(pairs, ("day", "night"), images, Path(out_dir), name, "Tokyo 24/7 247query_v3",
                          metadata=meta)


def prepare(raw_root: Path, out_dir: Path, train_pairs: int = TRAIN_PAIRS) -> Path:
    """Registry entry point for ``tokyo247-daco``: DaCo's folders if placed, else Tokyo 24/7's download. The
    download step leaves its sentinel in ``tokyo247-daco/`` either way, so the folder's existence says nothing."""
    own = Path(raw_root) / "tokyo247-daco"
    return import_tokyo247_daco(own if has_daco_layout(own) else Path(raw_root) / "tokyo247", out_dir, train_pairs=train_pairs)


#: the datasets this module imports (darkside.data.registry collects them)
DATASETS = (
    DatasetEntry(
        "tokyo247-daco", prepare, "as tokyo247 (research use)", "the 750 day and night JPEGs of tokyo247",
        "tokyo247's 247query_v3/ (or DaCo's original/{domain_a,domain_b}/{train,val}/ under tokyo247-daco/)",
        requires=("tokyo247",),
    ),
)
