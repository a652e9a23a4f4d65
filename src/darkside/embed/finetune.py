"""Resumable metric learning of a GeM embedding for one backbone and one recipe (SPEC §6).

The schedule is cirtorch's with gandtr's changes: BatchNorm frozen, Adam on two parameter groups
(GeM p: lr x10, no weight decay), one backward per tuple and one optimiser step per batch of
tuples (loss summed), ExponentialLR stepped at the END of each epoch, numpy/torch reseeded with
seed + epoch, validation loss every ``val_every`` epochs and the epoch with the lowest one kept.

Preemption (SLURM sends SIGTERM, :mod:`darkside.training`): a checkpoint with everything needed to
continue (weights, optimiser, scheduler, RNG states, epoch, best-so-far, log) is written atomically
after every epoch; SIGTERM abandons the running epoch at once (the CLI exits with status 143), so
the last complete checkpoint is what the requeued job resumes from. Because every epoch is a pure
function of (seed, epoch, weights, optimiser state), the resumed run ends with the same weights as
an uninterrupted one (CPU). The saved model records its test-time preprocessing (CLAHE or not).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from darkside.atomic import atomic_path, atomic_write_json, atomic_write_text
from darkside.data.manifest import load_groundtruth, load_manifest
from darkside.embed.losses import contrastive_loss
from darkside.embed.tuples import (
    ImagePipeline,
    TrainingTuple,
    embed_tensors,
    epoch_tuples,
    split_day_night_pairs,
    split_pairs,
)
from darkside.errors import ConfigError, DarksideError
from darkside.gan.translator import load_translator
from darkside.hashing import sha256_file
from darkside.recipes import FinetuneSettings, Recipe
from darkside.settings import to_plain
from darkside.training import (
    autocast,
    load_checkpoint,
    preemptible,
    reseed,
    rng_states,
    save_checkpoint,
    set_rng_states,
)

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
LOG = "training_log.json"
CURVE = "training_curve.png"
CURVE_DATA = "training_curve.csv"  # the curve as data, one row per epoch: what `dvc plots` draws

logger = logging.getLogger(__name__)


def _network() -> ModuleType:
    """``darkside.embed.network`` (load_model, save_model, freeze_batchnorm), looked up at call time."""
    return importlib.import_module("darkside.embed.network")


def _networks() -> ModuleType:
    """``darkside.embed.networks`` (the registry of descriptor networks), looked up at call time."""
    return importlib.import_module("darkside.embed.networks")


# --------------------------------------------------------------------------------------------- helpers


def parameter_groups(net: nn.Module, settings: FinetuneSettings) -> list[dict[str, Any]]:
    """Adam groups: everything else at (lr, weight_decay); GeM p at lr x multiplier, own decay (cirtorch's
    convention, which gandtr keeps: p is one scalar that would barely move at the backbone's rate, and
    decaying it towards 0 would be meaningless)."""
    p = getattr(net.pool, "p", None)  # a head without GeM's exponent has one group
    # a submodule with an ``lr_multiplier`` (EdgeMAC's edge filter: gandtr trains its p and tau at lr x10) gets a
    # group at that multiple of the lr, with the optimiser's weight decay (gandtr's group sets only the lr)
    scaled = [(m, float(m.lr_multiplier)) for m in net.modules() if getattr(m, "lr_multiplier", None) is not None]
    own = {id(q) for m, _ in scaled for q in m.parameters()}
    rest = [q for q in net.parameters() if q.requires_grad and q is not p and id(q) not in own]
    groups: list[dict[str, Any]] = [{"params": rest, "lr": settings.lr,
                                     "weight_decay": settings.weight_decay}]
    if p is not None and p.requires_grad:
        groups.append({"params": [p], "lr": settings.lr * settings.gem_lr_multiplier,
                       "weight_decay": settings.gem_weight_decay})
    for m, mult in scaled:
        if params := [q for q in m.parameters() if q.requires_grad]:
            groups.append({"params": params, "lr": settings.lr * mult, "weight_decay": settings.weight_decay})
    return groups


def train_mode(net: nn.Module) -> None:
    """Train mode with every BatchNorm in eval mode (frozen running statistics, as cirtorch)."""
    net.train()
    _network().freeze_batchnorm(net)


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic torch kernels where they exist (warn elsewhere), restored afterwards."""
    before = torch.are_deterministic_algorithms_enabled()
    warn_before = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_before)


def _backbone_name(net: nn.Module, backbone: str | None, settings: FinetuneSettings, source: Path) -> str:
    if backbone is not None:
        return backbone
    spec = getattr(net, "spec", None)
    name = getattr(spec, "name", None) or getattr(net, "backbone_name", None)
    if name is None:
        if len(settings.margins) == 1:
            return next(iter(settings.margins))
        raise ConfigError(f"{source}: cannot tell the model's backbone (pass backbone=) to choose its margin")
    return str(name)


def _load_net(path: Path) -> nn.Module:
    if not Path(path).is_file():
        raise DarksideError(f"{path}: input model does not exist (run the init stage)")
    return _network().load_model(path)


def _config(recipe: Recipe, settings: FinetuneSettings, seed: int, backbone: str, model_in: Path,
            translator_checkpoint: Path | None, network_settings: Any = None) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the starting weights and the generator count too
    (a re-trained generator or re-initialised backbone makes the old run meaningless)."""
    config = {"recipe": to_plain(recipe), "finetune": to_plain(settings), "seed": seed, "backbone": backbone,
              "network": {"name": recipe.network, "settings": to_plain(network_settings)},
              "init_sha256": sha256_file(model_in),
              "generator_sha256": sha256_file(translator_checkpoint) if translator_checkpoint else None}
    # a network's own input files (EdgeMAC's detector weights): a retrained detector restarts the run
    files = network_settings.input_files() if network_settings is not None else ()
    if files:
        config["network_files_sha256"] = {f: sha256_file(Path(f)) if Path(f).is_file() else None for f in files}
    return config


# --------------------------------------------------------------------------------------------- one epoch


def train_epoch(net: nn.Module, pipeline: ImagePipeline, tuples: list[TrainingTuple],
                optimizer: torch.optim.Optimizer, margin: float, tuples_per_batch: int,
                device: torch.device, desc: str = "train", precision: str = "fp32",
                backward: str = "tuple") -> float:
    """One pass over ``tuples``; returns the mean loss per tuple.

    gandtr's "fake batch": one optimiser step per ``tuples_per_batch`` tuples on the gradient of their summed
    loss. ``backward``: ``tuple`` (gandtr) runs a forward and a backward per tuple, gradients accumulating, so
    only one tuple's activations are held; ``batch`` runs one forward of the batch's images (same-size ones
    stacked across tuples) and one backward of the summed loss: the same gradient up to the order of float
    summation, fewer and larger operations (faster on a CPU), the activations of the whole batch held.
    """
    if backward not in ("tuple", "batch"):
        raise ConfigError(f"finetune.backward: expected 'tuple' or 'batch', got {backward!r}")
    train_mode(net)
    total = 0.0
    bar = tqdm(total=len(tuples), desc=desc, leave=False, disable=None)
    for start in range(0, len(tuples), tuples_per_batch):
        optimizer.zero_grad(set_to_none=True)
        batch = tuples[start:start + tuples_per_batch]
        # a forward and a backward per group: each tuple alone (gandtr), or the whole fake batch at once
        for group in ([[t] for t in batch] if backward == "tuple" else [batch]):
            tensors = [pipeline.tuple_tensors(t) for t in group]
            with autocast(precision, device):
                d = embed_tensors(net, [x for ts in tensors for x in ts], device).float()
            losses, at = [], 0
            for t, ts in zip(group, tensors, strict=True):
                losses.append(contrastive_loss(d[at], d[at + 1:at + len(ts)], t.labels.to(d.device), margin))
                at += len(ts)
            torch.stack(losses).sum().backward()
            total += sum(float(x.detach()) for x in losses)
            bar.update(len(group))
        optimizer.step()
    bar.close()
    return total / max(len(tuples), 1)


@torch.no_grad()
def validation_loss(net: nn.Module, pipeline: ImagePipeline, tuples: list[TrainingTuple], margin: float,
                    device: torch.device, precision: str = "fp32") -> float:
    """Mean contrastive loss per validation tuple (eval mode, no gradients)."""
    net.eval()
    total = 0.0
    for t in tuples:
        with autocast(precision, device):
            d = embed_tensors(net, pipeline.tuple_tensors(t), device).float()
        total += float(contrastive_loss(d[0], d[1:], t.labels.to(d.device), margin))
    return total / max(len(tuples), 1)


# --------------------------------------------------------------------------------------------- outputs


def write_curve(log: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Training-curve PNG: training loss per epoch, validation loss where it was computed."""
    # the object-oriented API without pyplot: no global figure state, no GUI backend, faster import
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2), dpi=100)
    ax = fig.add_subplot()
    ax.plot([e["epoch"] for e in log], [e["loss"] for e in log], "o-", ms=3, label="train")
    val = [(e["epoch"], e["val_loss"]) for e in log if e["val_loss"] is not None]
    if val:
        ax.plot(*zip(*val, strict=True), "s--", ms=4, label="validation")
    ax.set(xlabel="epoch", ylabel="contrastive loss / tuple")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def write_curve_data(log: list[dict[str, Any]], path: Path) -> Path:
    """``training_curve.csv``: epoch, training loss and, where it was computed, validation loss (empty else)."""
    lines = ["epoch,loss,val_loss"]
    lines += [f"{e['epoch']},{e['loss']:.6g},{'' if e['val_loss'] is None else format(e['val_loss'], '.6g')}"
              for e in log]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def _log_line(name: str, entry: dict[str, Any], epochs: int) -> str:
    val = "not computed" if entry["val_loss"] is None else f"{entry['val_loss']:.4g}"
    return f"{name} epoch {entry['epoch']}/{epochs}: loss {entry['loss']:.4g}, val loss {val}, {entry['seconds']:.1f} s"


def _write_log(out_dir: Path, config: dict[str, Any], log: list[dict[str, Any]], best: dict[str, Any],
               selection: str) -> Path:
    val = best.get("val_loss")
    val = val if val is not None and math.isfinite(val) else None  # strict JSON: no Infinity/NaN
    return atomic_write_json(out_dir / LOG, {**config, "epochs": log, "best_epoch": best.get("epoch"),
                                             "best_val_loss": val, "selection": selection})


# --------------------------------------------------------------------------------------------- driver


def finetune(model_in: Path, dataset_dir: Path, recipe: Recipe, settings: FinetuneSettings, out_dir: Path,
             device: torch.device | str = "cpu", translator_checkpoint: Path | None = None,
             seed: int | None = None, backbone: str | None = None, train_split: str = "train",
             val_split: str = "val", network_settings: Any = None) -> Path:
    """Fine-tune ``model_in`` with ``recipe`` on the prepared dataset; return ``out_dir/model.pt``.

    Resumes from ``out_dir/checkpoint.pt`` when it was written for the same recipe, settings, seed and
    backbone. ``seed`` defaults to ``settings.seed``; ``backbone`` (for the margin) to the loaded network's
    ``spec.name``. ``finetune=False`` recipes (off-the-shelf) save the input network unchanged. The recipe's
    network (``recipe.network``, with ``network_settings``: its params entry, default every default) is built
    around the input model's trunk, and its schedule departures replace the matching ``settings``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    seed = settings.seed if seed is None else int(seed)
    net = _load_net(Path(model_in))
    backbone = _backbone_name(net, backbone, settings, Path(model_in))
    networks = _networks()
    if network_settings is None:
        network_settings = networks.parse_network_settings(recipe.network, None, f"networks.{recipe.network}")
    net = networks.rebuild_around(net, recipe.network, network_settings)
    settings = network_settings.schedule(settings, backbone)
    config = _config(recipe, settings, seed, backbone, Path(model_in), translator_checkpoint, network_settings)
    # test images are prepared as the training images were: the model file says so (see network)
    net.preprocessing = {"clahe": {"clip_limit": settings.clahe_clip_limit, "grid": settings.clahe_grid}
                         if recipe.clahe else None}
    if not recipe.finetune:
        return _network().save_model(net, out_dir / MODEL, {**config, "best_epoch": None})
    margin = settings.margin(backbone)

    manifest = load_manifest(dataset_dir)
    gt = load_groundtruth(dataset_dir, manifest)
    translator = load_translator(recipe.generator, translator_checkpoint, dev) if recipe.translates else None
    clahe = (settings.clahe_clip_limit, settings.clahe_grid) if recipe.clahe else None
    pipeline = ImagePipeline(manifest, settings.image_size, clahe, translator, settings.cache_images)
    train_pairs, val_pairs = split_pairs(gt, train_split), split_pairs(gt, val_split)
    train_nd, val_nd = (split_day_night_pairs(gt, manifest, split) if recipe.day_night_pairs else []
                        for split in (train_split, val_split))
    if recipe.day_night_pairs and not train_nd:
        raise DarksideError(f"{Path(dataset_dir) / 'groundtruth.json'}: day_night_pairs: none in split "
                            f"{train_split!r}, but recipe {recipe.name!r} trains on N/D pairs")
    train_ids = [r.image_id for r in manifest.select(split=train_split)]
    val_ids = [r.image_id for r in manifest.select(split=val_split)]
    if not train_pairs and not train_nd:
        raise DarksideError(f"{Path(dataset_dir) / 'groundtruth.json'}: pairs.{train_split}: no pairs")
    validates = bool(val_pairs or val_nd)
    selection = "lowest validation loss" if validates else "last epoch (no validation pairs)"

    net.to(dev)
    optimizer = torch.optim.Adam(parameter_groups(net, settings), lr=settings.lr, betas=settings.betas)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=settings.lr_gamma)
    start, best, log = 0, {"epoch": None, "val_loss": math.inf, "state": None}, []
    ckpt_path = out_dir / CHECKPOINT
    state = load_checkpoint(ckpt_path, config)
    if state is not None:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_states(state["rng"])
        start, best, log = int(state["epoch"]), state["best"], list(state["log"])
    elif (prepare := networks.get_network(recipe.network).prepare) is not None:
        # a data-dependent initialisation (HOW's PCA of local descriptors): once, from the seed; a resumed run
        # has its result in the checkpoint's weights
        reseed(seed)
        with deterministic():
            prepare(net, pipeline, train_ids, dev)

    with preemptible(), deterministic():
        for epoch in range(start, settings.epochs):
            t0 = time.perf_counter()
            reseed(seed + epoch)
            rng = np.random.default_rng(seed + epoch)
            anchors: list[str] = []  # what the epoch's anchors are made of, after diverse picking
            with autocast(settings.precision, dev):  # the mining forward passes
                tuples = epoch_tuples(net, pipeline, train_pairs, train_ids, recipe, settings, rng, dev,
                                      night_pairs=train_nd, progress=anchors.append)
            logger.info("%s epoch %d: %s", recipe.name, epoch + 1, "; ".join(anchors))
            lr = optimizer.param_groups[0]["lr"]
            loss = train_epoch(net, pipeline, tuples, optimizer, margin, settings.tuples_per_batch, dev,
                               desc=f"{recipe.name} epoch {epoch + 1}/{settings.epochs}",
                               precision=settings.precision, backward=settings.backward)
            scheduler.step()
            val_loss = None
            last = epoch + 1 == settings.epochs
            if validates and ((epoch + 1) % settings.val_every == 0 or last):
                vrng = np.random.default_rng((seed, epoch, 1))
                with autocast(settings.precision, dev):
                    vt = epoch_tuples(net, pipeline, val_pairs, val_ids, recipe, settings, vrng, dev,
                                      all_pairs=True, night_pairs=val_nd)
                val_loss = validation_loss(net, pipeline, vt, margin, dev, settings.precision)
            if (val_loss is not None and val_loss < best["val_loss"]) or (not validates and last):
                best = {"epoch": epoch + 1, "val_loss": val_loss if val_loss is not None else math.nan,
                        "state": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}
            log.append({"epoch": epoch + 1, "loss": loss, "val_loss": val_loss, "lr": lr,
                        "seconds": round(time.perf_counter() - t0, 3), "anchors": "; ".join(anchors)})
            # tqdm shows nothing without a terminal (disable=None): this line is a SLURM log's progress
            logger.info("%s", _log_line(f"{backbone} {recipe.name}", log[-1], settings.epochs))
            save_checkpoint(ckpt_path, config, {
                "epoch": epoch + 1, "model": net.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": rng_states(), "best": best, "log": log})
            _write_log(out_dir, config, log, best, selection)

    if best["state"] is not None:
        net.load_state_dict(best["state"])
    write_curve(log, out_dir / CURVE, f"{backbone} {recipe.name}")
    write_curve_data(log, out_dir / CURVE_DATA)
    _write_log(out_dir, config, log, best, selection)
    extra = {**config, "best_epoch": best["epoch"], "best_val_loss": best["val_loss"]}
    path = _network().save_model(net.cpu(), out_dir / MODEL, extra)
    # the checkpoint goes once the model is written: model, best state and Adam moments, 3-4x the model file
    # (0.24 GB for VGG16, 0.68 GB for ResNet-101; the paper preset fine-tunes 40 models)
    ckpt_path.unlink(missing_ok=True)
    return path
