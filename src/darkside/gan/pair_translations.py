"""DaCo's translator: a two-way generator trained on one cross-domain task and the translations it makes.

DaCo (Ren et al.) trains on each training image and its translation into the other domain by a frozen ForkGAN
(``generated/``, made once before training). Here a family (``daco.translator``: ForkGAN) trains on the
training images of a ``cross_domain`` pair set, domain A as its day and B as its night (the pairs are not used:
translation is unpaired), and then writes every training image's translation at its manifest path under the
output folder: A through the day->night generator, B through the night->day one. The folder is staged and
renamed into place, so an interrupted run leaves no partial tree that the learner could read.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from darkside.atomic import shared_temp_dir
from darkside.data.images import load_rgb
from darkside.data.manifest import Manifest, load_groundtruth, load_manifest
from darkside.errors import DarksideError
from darkside.gan.family import GeneratorTranslator, load_generator

log = logging.getLogger(__name__)


def training_images(dataset_dir: str | Path) -> tuple[Manifest, list[str], list[str]]:
    """The manifest and the image ids of domain A and of domain B of a ``cross_domain`` pair set's training
    pairs (every split but the evaluation one), each pair stored as (B, A) as the protocol stores it."""
    root = Path(dataset_dir)
    manifest = load_manifest(root)
    gt = load_groundtruth(root, manifest)
    if gt.protocol != "cross_domain":
        raise DarksideError(f"{root}: protocol {gt.protocol!r}; a DaCo translator trains on a cross_domain pair set")
    pairs = [p for split, plist in sorted(gt.pairs.items()) if split != gt.database_split for p in plist]
    if not pairs:
        raise DarksideError(f"{root}: no training pairs (every split but {gt.database_split!r} trains)")
    return manifest, [a for _, a in pairs], [b for b, _ in pairs]


def _translate_file(translator: GeneratorTranslator, src: Path, dst: Path) -> None:
    x = torch.from_numpy(np.asarray(load_rgb(src), dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    y = translator.translate(x)[0].permute(1, 2, 0).numpy()
    dst.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.rint(y * 255.0).astype(np.uint8)).save(dst, format="PNG")


def write_translations(generator_file: str | Path, dataset_dir: str | Path, out_dir: str | Path,
                       device: torch.device | str = "cpu") -> Path:
    """Translate every training image of pair set ``dataset_dir`` with the two-way generator of
    ``generator_file`` into ``out_dir/<manifest path>`` (PNG bytes whatever the source's extension: the learner
    reads the path, not the format); return ``out_dir``."""
    manifest, ids_a, ids_b = training_images(dataset_dir)
    forward = load_generator(generator_file, device)
    backward = load_generator(generator_file, device, night_to_day=True)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = shared_temp_dir(out.parent, f".{out.name}.")
    try:
        for translator, ids in ((forward, ids_a), (backward, ids_b)):
            for image_id in ids:
                record = manifest.records[manifest.index(image_id)]
                _translate_file(translator, manifest.image_path(record), stage / record.path)
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    log.info("translations of %d + %d training images of %s -> %s", len(ids_a), len(ids_b), manifest.name, out)
    return out
