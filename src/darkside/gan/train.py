"""Resumable generator training: ``train_gan`` runs one family on day/night image lists (a multi-domain
family, MDUIT: on every image of every lighting domain, ``domains``).

Outputs in ``out_dir``: ``checkpoint.pt`` (after every epoch: all nets, optimisers, pools, torch RNG,
epoch, log), ``log.json`` (per-epoch mean losses, lr factor, images/s, wall time),
``samples/epoch_NNN.png`` (day inputs over their translations) and, at the end, ``generator.pt``
(the day->night generator the translator loads). Every file is written atomically.

Resume: the data of epoch e is drawn from a Generator seeded by (seed, e), so redoing an epoch from
the last complete checkpoint reproduces it exactly; SIGTERM (SLURM preemption) stops the run and keeps
the last complete checkpoint (:mod:`darkside.training`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from darkside.atomic import atomic_path, atomic_write_json
from darkside.data.images import load_rgb
from darkside.errors import DarksideError
from darkside.gan.crops import domain_pairs, epoch_pairs, paired_crop, to_tensor_batch
from darkside.gan.family import NIGHT, DomainBatch, GanBundle, GanSetup, build, family_class, save_generator
from darkside.training import load_checkpoint, preemptible, save_checkpoint

CHECKPOINT = "checkpoint.pt"
GENERATOR = "generator.pt"
LOG = "log.json"


class _ImageSource:
    """Decoded training images as uint8 arrays, cached in memory when asked (small sets)."""

    def __init__(self, paths: Sequence[str | Path], cache: bool) -> None:
        self.paths = [Path(p) for p in paths]
        self.cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        arr = np.asarray(load_rgb(self.paths[i]))
        if self.cache is not None:
            self.cache[i] = arr
        return arr


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The data RNG of one epoch: a pure function of (seed, epoch), hence reproducible on resume."""
    return np.random.default_rng([seed, epoch])


def _squares(images: _ImageSource, side: int) -> Iterator[torch.Tensor]:
    """(1, 3, side, side) centre squares in [-1, 1] of every image, in list order, decoded as they are read."""
    return (torch.from_numpy(to_tensor_batch([_center_square(images[i], side)])) for i in range(len(images)))


def iterate_epoch(day: _ImageSource, night: _ImageSource, setup: GanSetup, seed: int,
                  epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of (day, night) crops in [-1, 1]; pairs_per_epoch // batch_size full batches of random pairs."""
    rng = epoch_rng(seed, epoch)
    s, c = setup.settings, setup.common
    pairs = epoch_pairs(len(day), len(night), s.pairs_per_epoch, rng)
    for b in range(s.pairs_per_epoch // s.batch_size):
        crops = [paired_crop(day[int(di)], night[int(ni)], c.crop, c.scale_min, rng)
                 for di, ni in pairs[b * s.batch_size:(b + 1) * s.batch_size]]
        days, nights = zip(*crops, strict=True)
        yield torch.from_numpy(to_tensor_batch(list(days))), torch.from_numpy(to_tensor_batch(list(nights)))


def iterate_domain_epoch(images: _ImageSource, domains: Sequence[str], setup: GanSetup, seed: int, epoch: int,
                         bundle: GanBundle) -> Iterator[DomainBatch]:
    """A multi-domain family's epoch: pairs_per_epoch // batch_size full :class:`DomainBatch` es of (source,
    target) crops of images of different domains (``domains``: each image's). The pairs are the ``bundle``'s
    choice where it makes one (MDUIT's content similarity), else drawn at random; each pair is cut by one
    window (:func:`paired_crop`), like a (day, night) pair."""
    rng = epoch_rng(seed, epoch)
    s, c = setup.settings, setup.common
    names = sorted(set(domains))
    ids = np.array([names.index(d) for d in domains])
    pairs = bundle.choose_pairs(_squares(images, c.crop), ids, s.pairs_per_epoch, rng)
    if pairs is None:
        pairs = domain_pairs(ids, s.pairs_per_epoch, rng)
    for b in range(s.pairs_per_epoch // s.batch_size):
        chunk = [(int(si), int(ti)) for si, ti in pairs[b * s.batch_size:(b + 1) * s.batch_size]]
        if any(domains[si] == domains[ti] for si, ti in chunk):
            raise DarksideError(f"{bundle.title}: a training pair within one lighting domain")
        crops = [paired_crop(images[si], images[ti], c.crop, c.scale_min, rng) for si, ti in chunk]
        sources, targets = zip(*crops, strict=True)
        yield DomainBatch(torch.from_numpy(to_tensor_batch(list(sources))),
                          torch.from_numpy(to_tensor_batch(list(targets))),
                          tuple(domains[si] for si, _ in chunk), tuple(domains[ti] for _, ti in chunk))


def _center_square(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    m = min(h, w)
    top, left = (h - m) // 2, (w - m) // 2
    sq = Image.fromarray(np.ascontiguousarray(img[top:top + m, left:left + m]))
    return np.asarray(sq.resize((side, side), Image.BILINEAR))


def write_sample_grid(bundle: GanBundle, day: _ImageSource, path: Path) -> Path:
    """PNG grid: the first ``sample_images`` day images (centre square at the crop size) on the top
    row, their translations (generator in eval mode, as used downstream) below."""
    c = bundle.setup.common
    n = min(c.sample_images, len(day))
    inputs = [_center_square(day[i], c.crop) for i in range(n)]
    x = torch.from_numpy(to_tensor_batch(inputs)).to(bundle.device)
    gen = bundle.generator()
    was_training = gen.training
    gen.eval()
    with torch.no_grad():
        y = gen(x)
    gen.train(was_training)
    out = ((y.cpu().numpy().transpose(0, 2, 3, 1) + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
    grid = np.concatenate([np.concatenate(inputs, axis=1), np.concatenate(list(out), axis=1)], axis=0)
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
    return path


def train_gan(setup: GanSetup, day_paths: Sequence[str | Path], night_paths: Sequence[str | Path],
              out_dir: str | Path, device: torch.device | str = "cpu", seed: int = 0,
              *, domains: Sequence[tuple[str | Path, str]] | None = None,
              on_step: Callable[[int, int], None] | None = None) -> Path:
    """Train ``setup.family`` (resuming from ``out_dir/checkpoint.pt``) and return the generator.pt path.

    A multi-domain family (``GanBundle.multi_domain``) trains on ``domains``, (image, lighting domain) for every
    training image (filter-day-night's domains.tsv; None: the day and the night list as the domains ``day``
    and ``night``); the others ignore it. The day list gives the sample grids, the night list a translator's
    night references. ``on_step(epoch, step)`` is called after every optimisation step (progress, tests).
    """
    if not day_paths or not night_paths:
        raise DarksideError("train_gan: the day and the night image lists must not be empty")
    multi = family_class(setup.family).multi_domain
    if multi:
        if domains is None:
            domains = [*((p, "day") for p in day_paths), *((p, NIGHT) for p in night_paths)]
        if len({d for _, d in domains}) < 2:
            raise DarksideError(f"train_gan: {setup.family} needs images of at least two lighting domains, got "
                                f"{sorted({d for _, d in domains}) or 'none'}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, gen_path = out / CHECKPOINT, out / GENERATOR
    s = setup.settings
    config = {"setup": setup.to_plain(), "seed": seed}

    bundle = build(setup, device, seed)
    log: list[dict[str, Any]] = []
    start = 0  # number of completed epochs
    ckpt = load_checkpoint(ckpt_path, config)
    if ckpt is None:
        torch.manual_seed(seed)  # a fresh run's global draws must not depend on what the process did before
    else:
        bundle.load_training_state(ckpt["bundle"])
        torch.set_rng_state(ckpt["torch_rng"])
        log, start = list(ckpt["log"]), int(ckpt["epoch"])
    if start >= s.epochs and gen_path.is_file():
        return gen_path

    day, night = (_ImageSource(paths, setup.common.cache_images) for paths in (day_paths, night_paths))
    images = _ImageSource([p for p, _ in domains], setup.common.cache_images) if multi else None
    labels = [d for _, d in domains] if multi else []

    def batches(epoch: int) -> Iterator[Any]:
        if images is None:
            return iterate_epoch(day, night, setup, seed, epoch)
        return iterate_domain_epoch(images, labels, setup, seed, epoch, bundle)

    bundle.train()
    with preemptible():
        for epoch in range(start, s.epochs):
            bundle.set_epoch(epoch)
            t0 = time.perf_counter()
            sums: dict[str, float] = {}
            counts: dict[str, int] = {}  # a loss is averaged over the steps that report it (DRIT's D-only steps)
            steps = 0
            for step, batch in enumerate(batches(epoch)):
                for k, v in bundle.train_step(batch).items():
                    sums[k] = sums.get(k, 0.0) + v
                    counts[k] = counts.get(k, 0) + 1
                steps += 1
                if on_step is not None:
                    on_step(epoch, step)
            wall = time.perf_counter() - t0
            log.append({"epoch": epoch + 1, "steps": steps, "lr_factor": bundle.lr_factor(epoch), "wall_s": wall,
                "images_per_s": steps * s.batch_size / wall if wall > 0 else float("inf"),
                "losses": {k: v / counts[k] for k, v in sums.items()}})
            write_sample_grid(bundle, day, out / "samples" / f"epoch_{epoch + 1:03d}.png")
            bundle.epoch = epoch + 1
            save_checkpoint(ckpt_path, config, {"epoch": epoch + 1, "bundle": bundle.training_state(),
                                                "torch_rng": torch.get_rng_state(), "log": log})
            atomic_write_json(out / LOG, {"family": setup.family, "seed": seed, "epochs": log})
    bundle.prepare_translator(t.to(bundle.device) for t in _squares(night, setup.common.crop))
    return save_generator(bundle, gen_path)
