"""Foggy Cityscapes (DaCo's "FoggyDBF"): clear vs foggy pairs. Registration-only download.

Place one of these under ``data/raw/foggy-cityscapes/`` (from cityscapes-dataset.com, after
registering and accepting the Cityscapes terms)::

    leftImg8bit/{train,val}/<city>/<stem>_leftImg8bit.png                 (leftImg8bit_trainvaltest.zip)
    leftImg8bit_foggyDBF/{train,val}/<city>/<stem>_leftImg8bit_foggy_beta_<beta>.png
                                                                          (leftImg8bit_trainvaltest_foggyDBF.zip)

or DaCo's pre-arranged folders ``original/{domain_a,domain_b}/{train,val}/`` (domain_a clear).
A clear image pairs with the foggy image of the same stem at the chosen fog density ``beta``
(Cityscapes publishes 0.005, 0.01, 0.02); DaCo's folders pair by sorted index. Expected: 2,975
train and 500 val pairs. Clear images get domain ``day``, foggy ones ``other``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from darkside.data.importers._common import DatasetEntry, daco_layout_pairs, has_daco_layout, paired_dataset
from darkside.errors import DarksideError
from darkside.settings import setting

BETAS = ("0.005", "0.01", "0.02")


@dataclass(frozen=True)
class FoggySettings:
    beta: str = setting("fog density of the foggy images paired with the clear ones", choices=BETAS, default="0.02")


def native_pairs(root: Path, beta: str) -> list[tuple[str, Path, Path, str]]:
    """(split, clear, foggy, city) for every clear train/val image; a missing foggy twin is an error."""
    pairs = []
    for split in ("train", "val"):
        clear_dir = root / "leftImg8bit" / split
        for clear in sorted(clear_dir.glob("*/*_leftImg8bit.png")):
            stem, city = clear.name[: -len("_leftImg8bit.png")], clear.parent.name
            foggy = root / "leftImg8bit_foggyDBF" / split / city / f"{stem}_leftImg8bit_foggy_beta_{beta}.png"
            if not foggy.is_file():
                raise DarksideError(f"{foggy}: missing foggy counterpart of {clear.name}")
            pairs.append((split, clear, foggy, city))
    return pairs


def import_foggy_cityscapes(
    root: str | Path, out_dir: str | Path, settings: FoggySettings | None = None, name: str = "foggy-cityscapes"
) -> Path:
    """Clear/foggy pairs from the native Cityscapes layout or DaCo's folders."""
    settings = settings or FoggySettings()
    base = Path(root)
    if (base / "leftImg8bit").is_dir():
        pairs, layout = native_pairs(base, settings.beta), f"cityscapes (beta {settings.beta})"
    elif has_daco_layout(base):
        pairs = [(s, a, b, "cityscapes") for s, a, b in daco_layout_pairs(base)]
        layout = "daco"
    else:
        raise DarksideError(
            f"{base}: missing leftImg8bit/ + leftImg8bit_foggyDBF/ (registration-only download "
            "from cityscapes-dataset.com) or DaCo's original/domain_a|domain_b folders"
        )
    if not pairs:
        raise DarksideError(f"{base}: no clear/foggy image pairs found")
    return paired_dataset(pairs, ("day", "other"), base, Path(out_dir), name, "Foggy Cityscapes",
                          metadata={"layout": layout})


def prepare(raw_root: Path, out_dir: Path, settings: FoggySettings | None = None) -> Path:
    """Registry entry point for ``foggy-cityscapes``."""
    return import_foggy_cityscapes(Path(raw_root) / "foggy-cityscapes", out_dir, settings)


#: the datasets this module imports (darkside.data.registry collects them)
DATASETS = (
    DatasetEntry(
        "foggy-cityscapes", prepare, "Cityscapes terms: registration, non-commercial, no redistribution",
        "about 11 GB (leftImg8bit) + 30 GB (foggyDBF), unverified",
        "leftImg8bit/{train,val}/<city>/, leftImg8bit_foggyDBF/{train,val}/<city>/ (or DaCo's original/)",
        manual="register at https://www.cityscapes-dataset.com, download leftImg8bit_trainvaltest.zip and "
                "leftImg8bit_trainvaltest_foggyDBF.zip, extract both into data/raw/foggy-cityscapes/ (folders "
                "leftImg8bit/ and leftImg8bit_foggyDBF/)",
        manual_check=("leftImg8bit", "original", "domain_a"),
    ),
)
