"""Resumable generator training: ``train_gan`` runs one family on day/night image lists (a multi-domain
family, MDUIT: on every image of every lighting domain, ``domains``).

Outputs in ``out_dir``: ``checkpoint.pt`` (after every epoch: all nets, optimisers, pools, torch RNG,
epoch, log), ``log.json`` (per-epoch mean losses, lr factor, images/s, wall time), ``losses.csv`` (the
same, one row per epoch: the file ``dvc plots`` draws), ``samples/epoch_NNN.png`` (day inputs over their
translations) and, at the end, ``training_curve.png`` (the losses per epoch) and ``generator.pt`` (the
day->night generator the translator loads). Every file is written atomically. Each epoch logs one line
(mean losses, images/s, seconds) and shows a progress bar where there is a terminal.

Resume: the data of epoch e is drawn from a Generator seeded by (seed, e), so redoing an epoch from
the last complete checkpoint reproduces it exactly; SIGTERM (SLURM preemption) stops the run and keeps
the last complete checkpoint (:mod:`darkside.training`). Everything but the checkpoint is an output the
workflow declares, and Snakemake deletes a failed (preempted) job's declared outputs before it reruns
it; so the sample grid of a finished epoch, which cannot be redrawn later, is kept with the checkpoint
(``checkpoint-samples/``, undeclared like ``checkpoint.pt``) and hard-linked into ``samples/``, and the
run's end rewrites every declared output from the checkpoint's state.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from darkside.atomic import atomic_path, atomic_write_json, atomic_write_text
from darkside.data.images import load_rgb
from darkside.errors import DarksideError
from darkside.gan.crops import domain_pairs, epoch_pairs, paired_crop, to_tensor_batch
from darkside.gan.family import NIGHT, DomainBatch, GanBundle, GanSetup, build, family_class, save_generator
from darkside.training import autocast, load_checkpoint, preemptible, save_checkpoint

CHECKPOINT = "checkpoint.pt"
GENERATOR = "generator.pt"
LOG = "log.json"
LOSSES = "losses.csv"
CURVE = "training_curve.png"
SAMPLES = "samples"
# the sample grids of finished epochs, kept with the checkpoint (see the module docstring)
CHECKPOINT_SAMPLES = "checkpoint-samples"

logger = logging.getLogger(__name__)


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


def sample_name(epoch: int) -> str:
    """The sample grid of (1-based) ``epoch``: ``epoch_NNN.png``, as the workflow lists them."""
    return f"epoch_{epoch:03d}.png"


def _link_sample(kept: Path, path: Path) -> Path:
    """Put the kept grid ``kept`` at ``path``: a hard link (no second copy), a copy where links fail."""
    if path.is_file() and os.path.samefile(kept, path):
        return path  # linked already (and renaming one link onto another of the same file would do nothing)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.unlink(missing_ok=True)
        try:
            os.link(kept, tmp)
        except OSError:  # another file system, or one without hard links
            shutil.copyfile(kept, tmp)
    return path


def loss_columns(log: Sequence[dict[str, Any]]) -> list[str]:
    """The columns of ``losses.csv``: epoch, every loss a family reports (sorted), lr factor, images/s, seconds."""
    losses = sorted({k for e in log for k in e["losses"]})
    return ["epoch", *losses, "lr_factor", "images_per_s", "wall_s"]


def write_losses(log: Sequence[dict[str, Any]], path: Path) -> Path:
    """``losses.csv``: one row per epoch of ``log`` (log.json's entries), the losses as columns. A loss an
    epoch did not report is left empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns = loss_columns(log)
    writer.writerow(columns)
    for e in log:
        row = {**e["losses"], "epoch": e["epoch"], "lr_factor": e["lr_factor"], "images_per_s": e["images_per_s"],
               "wall_s": e["wall_s"]}
        writer.writerow([f"{row[c]:.6g}" if isinstance(row.get(c), float) else row.get(c, "") for c in columns])
    return atomic_write_text(path, buf.getvalue())


def write_loss_curve(log: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    """PNG of every loss per epoch (one line each, log scale where all are positive)."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    fig = Figure(figsize=(5.5, 3.4), dpi=100)
    ax = fig.add_subplot()
    epochs = [e["epoch"] for e in log]
    names = sorted({k for e in log for k in e["losses"]})
    for name in names:
        points = [(x, e["losses"][name]) for x, e in zip(epochs, log, strict=True) if name in e["losses"]]
        ax.plot(*zip(*points, strict=True), "o-", ms=3, label=name)
    if names and all(v > 0 for e in log for v in e["losses"].values()):
        ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="mean loss per step")
    ax.set_title(title, fontsize=9)
    if names:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _log_line(family: str, entry: dict[str, Any], epochs: int) -> str:
    losses = ", ".join(f"{k} {v:.4g}" for k, v in sorted(entry["losses"].items()))
    return (f"{family} epoch {entry['epoch']}/{epochs}: {losses}; {entry['images_per_s']:.1f} images/s, "
            f"{entry['wall_s']:.1f} s")


def _write_outputs(out: Path, family: str, seed: int, log: list[dict[str, Any]], grids: Iterable[int],
                   final: bool) -> None:
    """The declared outputs that follow from the checkpoint's log and kept grids: log.json, losses.csv, the
    sample grids of the epochs ``grids``; ``final``: also the loss curve."""
    atomic_write_json(out / LOG, {"family": family, "seed": seed, "epochs": log})
    write_losses(log, out / LOSSES)
    for e in grids:
        kept, shown = out / CHECKPOINT_SAMPLES / sample_name(e), out / SAMPLES / sample_name(e)
        if not kept.is_file():
            if not shown.is_file():
                raise DarksideError(f"{kept}: the sample grid of finished epoch {e} is gone (and {shown} too); "
                                    f"delete {out / CHECKPOINT} to train afresh")
            _link_sample(shown, kept)  # a run from before grids were kept with the checkpoint
        _link_sample(kept, shown)
    if final:
        write_loss_curve(log, out / CURVE, family)


def train_gan(setup: GanSetup, day_paths: Sequence[str | Path], night_paths: Sequence[str | Path],
              out_dir: str | Path, device: torch.device | str = "cpu", seed: int = 0,
              *, domains: Sequence[tuple[str | Path, str]] | None = None,
              on_step: Callable[[int, int], None] | None = None, variant: str | None = None) -> Path:
    """Train ``setup.family`` (resuming from ``out_dir/checkpoint.pt``) and return the generator.pt path.

    A multi-domain family (``GanBundle.multi_domain``) trains on ``domains``, (image, lighting domain) for every
    training image (filter-day-night's domains.tsv; None: the day and the night list as the domains ``day``
    and ``night``); the others ignore it. The day list gives the sample grids, the night list a translator's
    night references. ``on_step(epoch, step)`` is called after every optimisation step (progress, tests).
    ``variant``: the ``gan.variants`` name of the run (recorded in the generator file).
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
        _write_outputs(out, setup.family, seed, log, range(1, s.epochs + 1), final=True)
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
            # disable=None: a bar on a terminal only; the epoch's log line is what a SLURM log shows
            bar = tqdm(total=s.pairs_per_epoch // s.batch_size, desc=f"{setup.family} epoch {epoch + 1}/{s.epochs}",
                       leave=False, disable=None)
            for step, batch in enumerate(batches(epoch)):
                with autocast(setup.common.precision, device):
                    losses = bundle.train_step(batch)
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                    counts[k] = counts.get(k, 0) + 1
                steps += 1
                bar.update(1)
                if on_step is not None:
                    on_step(epoch, step)
            bar.close()
            wall = time.perf_counter() - t0
            log.append({"epoch": epoch + 1, "steps": steps, "lr_factor": bundle.lr_factor(epoch), "wall_s": wall,
                "images_per_s": steps * s.batch_size / wall if wall > 0 else float("inf"),
                "losses": {k: v / counts[k] for k, v in sums.items()}})
            # the grid goes with the checkpoint first: a preempted job's samples/ is deleted by the workflow
            write_sample_grid(bundle, day, out / CHECKPOINT_SAMPLES / sample_name(epoch + 1))
            bundle.epoch = epoch + 1
            save_checkpoint(ckpt_path, config, {"epoch": epoch + 1, "bundle": bundle.training_state(),
                                                "torch_rng": torch.get_rng_state(), "log": log})
            _write_outputs(out, setup.family, seed, log, [epoch + 1], final=False)
            logger.info("%s", _log_line(setup.family, log[-1], s.epochs))
    # also where the loop had nothing left to do (preempted after the last checkpoint): the outputs the
    # workflow deleted come back from the checkpoint's log and kept grids
    _write_outputs(out, setup.family, seed, log, range(1, s.epochs + 1), final=True)
    bundle.prepare_translator(t.to(bundle.device) for t in _squares(night, setup.common.crop))
    save_generator(bundle, gen_path, variant=variant)
    # the checkpoint goes once the generator is written (a full-width one holds every network's Adam state:
    # 0.3-0.9 GB each; the paper preset's twelve would keep ~7 GB nobody reads again)
    ckpt_path.unlink(missing_ok=True)
    return gen_path
