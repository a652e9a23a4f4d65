"""Teacher pre-training for the edge GAN families where no published weights exist (mini preset).

SPEC §3 item 4 (``pretrain_edges``): the paper's HED/RCF teachers carry BSDS weights; the synthetic
benchmark has none, and a randomly initialised teacher makes the edge-consistency loss meaningless.
So the mini preset trains the teacher itself on the benchmark's ground-truth edge maps, with the
HED/RCF recipe written from the papers' description (not from their code):

* class-balanced sigmoid cross-entropy per image: edge pixels weighted ``beta = |Y-| / |Y|``,
  non-edge pixels ``1 - beta`` (edges are the minority class, unweighted BCE learns "no edge");
* deep supervision: the same loss on each of the five side outputs and on the fused output;
* Adam, random square crops with a horizontal flip, everything seeded.

The network is built exactly as the families build their teacher (``build_detector`` with the
settings of ``edges.detectors.<kind>``), and the file is written in a key layout that
:func:`darkside.gan.edges.load_detector_file` accepts, so ``weights: <this file>`` works. Training
checkpoints every ``checkpoint_every`` steps and resumes from the last one (:mod:`darkside.training`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from darkside.atomic import atomic_write_json
from darkside.data.images import load_rgb
from darkside.data.manifest import ImageRecord, Manifest, load_manifest
from darkside.errors import ConfigError, DarksideError
from darkside.gan.edges import DETECTORS, DetectorGeometry, build_detector, detector_of
from darkside.settings import setting, to_plain
from darkside.state import save_torch
from darkside.training import checkpoint_path, load_checkpoint, preemptible, rng_states, save_checkpoint, set_rng_states

TEACHER_FORMAT = "darkside-edge-teacher/1"


@dataclass(frozen=True)
class EdgePretrainSettings:
    """``edges.pretrain``: every number of teacher pre-training."""

    crop: int = setting("square training crop side; smaller images are upscaled to fit", ge=1)
    batch_size: int = setting(ge=1)
    steps: int = setting("optimisation steps (no epochs: the data is tiny and cached)", ge=1)
    lr: float = setting("Adam", gt=0)
    beta1: float = setting(ge=0, lt=1)
    beta2: float = setting(ge=0, lt=1)
    weight_decay: float = setting(ge=0)
    side_weight: float = setting("weight of each of the five side-output losses (HED/RCF: 1)", ge=0)
    fuse_weight: float = setting("weight of the fused-output loss (HED/RCF: 1)", ge=0)
    hflip: bool = setting("random horizontal flip of the crop")
    split: str = setting("manifest split to train on", pattern=".")
    domains: tuple[Literal["day", "sunset", "night", "other"], ...] = setting(
        "manifest domains to train on (teachers see day light only)", min_items=1)
    log_every: int = setting("steps per entry of the loss log", ge=1)
    checkpoint_every: int = setting("steps between checkpoints (a preempted run resumes from the last)", ge=1)


# -- loss ---------------------------------------------------------------------------------------

def balanced_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """HED's class-balanced sigmoid cross-entropy (beta per image, see above), mean over pixels and batch.

    An image without edges has beta 1 and contributes nothing (as in HED). Mean rather than HED's sum
    keeps the loss scale independent of the crop size.
    """
    target = target.to(logits.dtype)
    n = target[0].numel()
    pos = target.flatten(1).sum(1)
    beta = ((n - pos) / n).view(-1, *([1] * (target.ndim - 1)))
    weight = torch.where(target > 0.5, beta, 1.0 - beta)
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=weight, reduction="none")
    return bce.flatten(1).mean(1).mean()


@contextlib.contextmanager
def _capture_fusion_input(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record the input of the 1x1 fusion conv: the five side outputs, already at input size.

    Hooking rather than re-implementing the forward keeps one definition of HED/RCF (edges.hed,
    edges.rcf); the side maps are exactly what the fusion sees.
    """
    fusion = getattr(model, detector_of(model).fusion)
    seen: list[torch.Tensor] = []
    handle = fusion.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    try:
        yield seen
    finally:
        handle.remove()


def side_and_fused_logits(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sides (B, 5, H, W), fused (B, 1, H, W)) logits of RGB ``x`` in [0, 1]."""
    with _capture_fusion_input(model) as seen:
        fused = model(x, logits=True)
    return seen[-1], fused


def deep_supervision_loss(model: nn.Module, x: torch.Tensor, target: torch.Tensor, side_weight: float,
                          fuse_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    """side_weight * sum of the five side losses + fuse_weight * fused loss; also the parts."""
    sides, fused = side_and_fused_logits(model, x)
    side_losses = [balanced_bce(sides[:, k:k + 1], target) for k in range(sides.shape[1])]
    fuse_loss = balanced_bce(fused, target)
    total = side_weight * torch.stack(side_losses).sum() + fuse_weight * fuse_loss
    return total, {"fused": float(fuse_loss.detach()), "sides": float(torch.stack(side_losses).sum().detach())}


# -- data ---------------------------------------------------------------------------------------

def image_and_edges(man: Manifest, r: ImageRecord) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image, bool edges) of a record; the synthetic benchmark's ground-truth edge map of an
    image is ``<dataset>/edges/<its path>`` (any non-zero pixel is an edge)."""
    img = np.asarray(load_rgb(man.image_path(r)))
    ep = man.root / "edges" / r.path
    if not ep.is_file():
        raise DarksideError(f"{ep}: ground-truth edge map missing (only the synthetic benchmark has them)")
    edges = np.asarray(load_rgb(ep))[..., 0] > 0
    if edges.shape != img.shape[:2]:
        raise DarksideError(f"{ep}: edge map {edges.shape} does not match its image {img.shape[:2]}")
    return img, edges


def training_pairs(dataset_dir: Path, split: str, domains: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`image_and_edges` of every manifest row of ``split`` in ``domains``, manifest order."""
    man = load_manifest(dataset_dir)
    recs = [r for r in man.records if r.split == split and r.domain in domains]
    if not recs:
        raise DarksideError(f"{Path(dataset_dir) / 'manifest.csv'}: no images of split {split!r} in domains "
                            f"{list(domains)}")
    return [image_and_edges(man, r) for r in recs]


def random_crop(img: np.ndarray, edges: np.ndarray, crop: int, hflip: bool,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A ``crop`` x ``crop`` window at a uniform offset (optionally mirrored) from an image and its
    edges; an image smaller than the crop is first upscaled (edges nearest, to stay binary)."""
    h, w = edges.shape
    if min(h, w) < crop:
        f = crop / min(h, w)
        size = (max(crop, round(w * f)), max(crop, round(h * f)))
        img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
        edges = cv2.resize(edges.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        h, w = edges.shape
    top = int(rng.integers(0, h - crop + 1))
    left = int(rng.integers(0, w - crop + 1))
    img = img[top:top + crop, left:left + crop]
    edges = edges[top:top + crop, left:left + crop]
    if hflip and rng.random() < 0.5:
        img, edges = img[:, ::-1], edges[:, ::-1]
    return np.ascontiguousarray(img), np.ascontiguousarray(edges)


def sample_batch(pairs: Sequence[tuple[np.ndarray, np.ndarray]], s: EdgePretrainSettings,
                 rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, crop, crop) RGB in [0, 1] and (B, 1, crop, crop) {0, 1} targets, images drawn with
    replacement."""
    crops = [random_crop(*pairs[int(i)], s.crop, s.hflip, rng) for i in rng.integers(0, len(pairs), s.batch_size)]
    x = torch.from_numpy(np.stack([im for im, _ in crops]).astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.stack([ed for _, ed in crops]).astype(np.float32)).unsqueeze(1)
    return x, y


# -- training -----------------------------------------------------------------------------------

def train_detector(model: nn.Module, pairs: Sequence[tuple[np.ndarray, np.ndarray]], s: EdgePretrainSettings,
                   device: torch.device | str, seed: int, checkpoint: Path | None = None,
                   config: dict[str, Any] | None = None) -> list[dict[str, float]]:
    """Train ``model`` in place; returns the loss log (means over ``log_every`` steps). With
    ``checkpoint``, resumes from it (when written for ``config``) and writes it every
    ``checkpoint_every`` steps."""
    dev = torch.device(device)
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=s.lr, betas=(s.beta1, s.beta2), weight_decay=s.weight_decay)
    rng = np.random.default_rng([seed, 1])  # data stream separate from the init stream
    log: list[dict[str, float]] = []
    acc = {"loss": 0.0, "fused": 0.0, "sides": 0.0}
    start = 0
    state = load_checkpoint(checkpoint, config or {}) if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        set_rng_states(state["rng"], rng)
        start, log, acc = int(state["step"]), list(state["log"]), dict(state["acc"])
    with preemptible():
        for step in range(start + 1, s.steps + 1):
            x, y = sample_batch(pairs, s, rng)
            loss, parts = deep_supervision_loss(model, x.to(dev), y.to(dev), s.side_weight, s.fuse_weight)
            if not torch.isfinite(loss):
                raise DarksideError(f"pretrain_edges: loss is {float(loss)} at step {step} (lower edges.lr)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for name, v in {"loss": float(loss.detach()), **parts}.items():
                acc[name] += v
            if step % s.log_every == 0 or step == s.steps:
                k = (step - 1) % s.log_every + 1
                log.append({"step": step, **{name: v / k for name, v in acc.items()}})
                acc = dict.fromkeys(acc, 0.0)
            if checkpoint is not None and step % s.checkpoint_every == 0 and step < s.steps:
                save_checkpoint(checkpoint, config or {}, {
                    "step": step, "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "rng": rng_states(rng), "log": log, "acc": acc})
    model.eval()
    return log


def pretrain_edges(kind: str, dataset_dir: str | Path, settings: EdgePretrainSettings, out_path: str | Path,
                   geometry: DetectorGeometry, device: torch.device | str = "cpu", seed: int = 0) -> Path:
    """Train a ``kind`` teacher (a key of DETECTORS) on the dataset's ground-truth edges; write ``out_path``.

    ``geometry``: ``edges.detectors.<kind>``'s width and input scaling, so the file loads into the
    families' teacher. The file holds ``state_dict`` plus metadata (format, kind, width, input_mode,
    settings, seed, loss log); a training summary is written beside it as ``<out_path stem>.json``.
    """
    if kind not in DETECTORS:
        raise ConfigError(f"pretrain_edges: kind {kind!r} is not one of {list(DETECTORS)}")
    t0 = time.perf_counter()
    pairs = training_pairs(Path(dataset_dir), settings.split, settings.domains)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_detector(kind, geometry.width, geometry.input)
    out = Path(out_path)
    config = {"kind": kind, "geometry": to_plain(geometry), "settings": to_plain(settings), "seed": int(seed)}
    log = train_detector(model, pairs, settings, device, seed, checkpoint_path(out), config)
    wall = time.perf_counter() - t0
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    meta = {"format": TEACHER_FORMAT, "kind": kind, "width": float(geometry.width), "input_mode": geometry.input,
            "settings": to_plain(settings), "seed": int(seed), "dataset": str(dataset_dir),
            "images": len(pairs), "wall_s": wall, "log": log}
    save_torch(out, {**meta, "state_dict": state})
    atomic_write_json(out.with_suffix(".json"), meta)
    checkpoint_path(out).unlink(missing_ok=True)
    return out
