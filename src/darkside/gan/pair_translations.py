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

import torch

from darkside.atomic import shared_temp_dir
from darkside.data.manifest import Manifest, load_groundtruth, load_manifest
from darkside.errors import DarksideError
from darkside.gan.family import GanSetup, load_generator
from darkside.gan.train import train_gan
from darkside.gan.translator import translate_image

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


def _image_paths(manifest: Manifest, ids: list[str]) -> list[Path]:
    return [manifest.image_path(manifest.records[manifest.index(i)]) for i in ids]


def _write(generator_file: Path, manifest: Manifest, ids_a: list[str], ids_b: list[str], out_dir: str | Path,
           device: torch.device | str) -> Path:
    forward = load_generator(generator_file, device)
    backward = load_generator(generator_file, device, night_to_day=True)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = shared_temp_dir(out.parent, f".{out.name}.")
    try:
        for translator, ids in ((forward, ids_a), (backward, ids_b)):
            for image_id, src in zip(ids, _image_paths(manifest, ids), strict=True):
                dst = stage / manifest.records[manifest.index(image_id)].path
                dst.parent.mkdir(parents=True, exist_ok=True)
                translate_image(translator, src).save(dst, format="PNG")
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    log.info("translations of %d + %d training images of %s -> %s", len(ids_a), len(ids_b), manifest.name, out)
    return out


def write_translations(generator_file: str | Path, dataset_dir: str | Path, out_dir: str | Path,
                       device: torch.device | str = "cpu") -> Path:
    """Translate every training image of pair set ``dataset_dir`` with the two-way generator of
    ``generator_file`` into ``out_dir/<manifest path>`` (PNG bytes whatever the source's extension: the learner
    reads the path, not the format); return ``out_dir``."""
    manifest, ids_a, ids_b = training_images(dataset_dir)
    return _write(Path(generator_file), manifest, ids_a, ids_b, out_dir, device)


def train_and_translate(setup: GanSetup, dataset_dir: str | Path, run_dir: str | Path, out_dir: str | Path,
                        device: torch.device | str = "cpu", seed: int = 0) -> Path:
    """Train ``setup`` (resuming from ``run_dir``) on the pair set's training images, A as day and B as night,
    then write their translations as :func:`write_translations` does; return ``out_dir``."""
    manifest, ids_a, ids_b = training_images(dataset_dir)
    generator = train_gan(setup, _image_paths(manifest, ids_a), _image_paths(manifest, ids_b), Path(run_dir),
                          device, seed=seed)
    return _write(generator, manifest, ids_a, ids_b, out_dir, device)
