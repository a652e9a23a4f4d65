"""SYNTHIA-SEQS (DaCo): SUNSET vs RAINNIGHT frames paired by index. Registration-only download.

Place the sequences under ``data/raw/synthia-seqs/`` (from synthia-dataset.net, after accepting
the terms), e.g.::

    SYNTHIA-SEQS-02-SUNSET/RGB/Stereo_Left/Omni_{F,B,L,R}/000000.png ...
    SYNTHIA-SEQS-02-RAINNIGHT/RGB/Stereo_Left/Omni_{F,B,L,R}/000000.png ...

or DaCo's pre-arranged folders ``original/{domain_a,domain_b}/{train,val}/`` (domain_a SUNSET),
which carry DaCo's exact train/val split (60 val pairs). For the native layout, the i-th frame of
a sequence/camera/direction at SUNSET pairs with the i-th at RAINNIGHT (DaCo's rule: by index);
extra frames of the longer sequence are dropped and counted. DaCo's split of native frames is not
published, so ``val_pairs`` pairs are drawn as ``val`` with a seeded generator (stated in
``dataset.json``): the numbers are then comparable in kind, not identical to DaCo's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darkside.data.importers._common import DatasetEntry, daco_layout_pairs, has_daco_layout, paired_dataset
from darkside.errors import DarksideError
from darkside.settings import setting

_SEQ = re.compile(r"SYNTHIA-SEQS-(\d+)-(SUNSET|RAINNIGHT)$", re.IGNORECASE)


@dataclass(frozen=True)
class SynthiaSettings:
    val_pairs: int = setting("pairs (seeded by seed) that form split val for the native layout", ge=0, default=60)
    seed: int = setting(default=0)


def native_pairs(root: Path) -> tuple[list[tuple[Path, Path, str]], int]:
    """(sunset frame, rainnight frame, place) by index per sequence/camera/direction; frames dropped."""
    seqs: dict[tuple[str, str], Path] = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        m = _SEQ.match(d.name)
        if m:
            seqs[(m.group(1), m.group(2).upper())] = d
    pairs: list[tuple[Path, Path, str]] = []
    dropped = 0
    for (seq, cond), sunset in sorted(seqs.items()):
        if cond != "SUNSET" or (seq, "RAINNIGHT") not in seqs:
            continue
        night = seqs[(seq, "RAINNIGHT")]
        views = sorted({p.parent.relative_to(sunset) for p in sunset.glob("RGB/*/*/*.png")})
        for view in views:
            a = sorted((sunset / view).glob("*.png"))
            b = sorted((night / view).glob("*.png"))
            n = min(len(a), len(b))
            dropped += len(a) + len(b) - 2 * n
            place = f"seq{seq}/{view.as_posix()}"
            pairs += [(a[i], b[i], place) for i in range(n)]
    return pairs, dropped


def import_synthia(
    root: str | Path, out_dir: str | Path, settings: SynthiaSettings | None = None, name: str = "synthia-seqs"
) -> Path:
    """SUNSET (domain ``sunset``) / RAINNIGHT (domain ``night``) pairs."""
    settings = settings or SynthiaSettings()
    base = Path(root)
    if not base.is_dir():
        raise DarksideError(f"{base}: missing (registration-only download from synthia-dataset.net)")
    if has_daco_layout(base):
        pairs = [(s, a, b, "synthia") for s, a, b in daco_layout_pairs(base)]
        meta: dict[str, Any] = {"layout": "daco"}
    else:
        native, dropped = native_pairs(base)
        if not native:
            raise DarksideError(f"{base}: no SYNTHIA-SEQS-XX-SUNSET / -RAINNIGHT sequence pairs found")
        rng = np.random.default_rng(settings.seed)
        val = set(rng.choice(len(native), size=min(settings.val_pairs, len(native)), replace=False).tolist())
        pairs = [("val" if i in val else "train", a, b, place) for i, (a, b, place) in enumerate(native)]
        meta = {"layout": "synthia-seqs", "unpaired_frames_dropped": dropped,
                "val_rule": f"{len(val)} pairs drawn with numpy default_rng({settings.seed}); not DaCo's split"}
    return paired_dataset(pairs, ("sunset", "night"), base, Path(out_dir), name, "SYNTHIA-SEQS", metadata=meta)


def prepare(raw_root: Path, out_dir: Path, settings: SynthiaSettings | None = None) -> Path:
    """Registry entry point for ``synthia-seqs``."""
    return import_synthia(Path(raw_root) / "synthia-seqs", out_dir, settings)


#: the datasets this module imports (darkside.data.registry collects them)
DATASETS = (
    DatasetEntry(
        "synthia-seqs", prepare, "CC BY-NC-SA 3.0 (check the site); terms accepted on download",
        "several GB per sequence", "SYNTHIA-SEQS-XX-SUNSET/, SYNTHIA-SEQS-XX-RAINNIGHT/ (or DaCo's original/)",
        manual="download SYNTHIA-SEQS-XX-SUNSET and SYNTHIA-SEQS-XX-RAINNIGHT (DaCo: XX = 02, 05) from "
                "https://synthia-dataset.net/downloads/ and extract them into data/raw/synthia-seqs/",
        manual_check=("original", "domain_a", "SYNTHIA-SEQS-02-SUNSET", "SYNTHIA-SEQS-05-SUNSET"),
    ),
)
