"""Teacher pre-training for the edge GAN families where no published weights exist (mini preset).

SPEC §3 item 4 (``pretrain_edges``): the paper's HED/RCF teachers carry BSDS weights; the synthetic
benchmark has none, and a randomly initialised teacher makes the edge-consistency loss meaningless.
So the mini preset trains the teacher itself on the benchmark's ground-truth edge maps, with the
HED/RCF recipe written from the papers' description (not from their code):

* class-balanced sigmoid cross-entropy per image: edge pixels weighted ``beta = |Y-| / |Y|``,
  non-edge pixels ``1 - beta`` (edges are the minority class, unweighted BCE learns "no edge");
* deep supervision: the same loss on each of the five side outputs and on the fused output;
* Adam, random square crops with a horizontal flip, everything seeded.

The network is built exactly as the families build their teacher (``build_detector`` with the gan
section's ``detector_width`` / ``detector_input``), and the file is written in a key layout that
:func:`darkside.gan.edges.load_detector_file` accepts, so ``detector_weights: <this file>`` works.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from darkside.atomic import atomic_path, atomic_write_json
from darkside.config import check_keys
from darkside.data.images import load_rgb
from darkside.data.manifest import load_manifest
from darkside.errors import ConfigError, DarksideError
from darkside.gan.edges import DETECTORS, HED, RCF, build_detector

TEACHER_FORMAT = "darkside-edge-teacher/1"


@dataclass(frozen=True)
class EdgePretrainSettings:
    """Every number of teacher pre-training (params ``presets.<p>.edges``)."""

    crop: int                  # square training crop side; smaller images are upscaled to fit
    batch_size: int
    steps: int                 # optimisation steps (no epochs: the data is tiny and cached)
    lr: float                  # Adam
    beta1: float
    beta2: float
    weight_decay: float
    side_weight: float         # weight of each of the five side-output losses (HED/RCF: 1)
    fuse_weight: float         # weight of the fused-output loss (HED/RCF: 1)
    hflip: bool                # random horizontal flip of the crop
    split: str                 # manifest split to train on
    domains: tuple[str, ...]   # manifest domains to train on (teachers see day light only)
    log_every: int             # steps per entry of the loss log

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "edges") -> EdgePretrainSettings:
        """Strict constructor: unknown/missing keys and wrong types raise ConfigError naming the key."""
        check_keys(d, [f.name for f in dataclasses.fields(cls)], where)
        ints = ("crop", "batch_size", "steps", "log_every")
        floats = ("lr", "beta1", "beta2", "weight_decay", "side_weight", "fuse_weight")
        values: dict[str, Any] = {}
        for key in ints:
            v = d[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{where}.{key}: expected an integer >= 1, got {v!r}")
            values[key] = v
        for key in floats:
            v = d[key]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{where}.{key}: expected a number >= 0, got {v!r}")
            values[key] = float(v)
        if not isinstance(d["hflip"], bool):
            raise ConfigError(f"{where}.hflip: expected a boolean, got {d['hflip']!r}")
        if not isinstance(d["split"], str) or not d["split"]:
            raise ConfigError(f"{where}.split: expected a split name, got {d['split']!r}")
        doms = d["domains"]
        if not isinstance(doms, (list, tuple)) or not doms or not all(isinstance(x, str) for x in doms):
            raise ConfigError(f"{where}.domains: expected a non-empty list of domain names, got {doms!r}")
        if values["lr"] <= 0:
            raise ConfigError(f"{where}.lr: must be > 0")
        for key in ("beta1", "beta2"):
            if not values[key] < 1:
                raise ConfigError(f"{where}.{key}: must be in [0, 1)")
        return cls(**values, hflip=d["hflip"], split=d["split"], domains=tuple(doms))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["domains"] = list(self.domains)
        return out


def teacher_geometry(gan_section: Mapping[str, Any], kind: str) -> tuple[float, str]:
    """(detector_width, detector_input) that every family with ``detector: kind`` builds its teacher
    with, read from a params ``gan`` section; they must agree, since one teacher file serves all."""
    from darkside.gan.families import settings_for

    found: set[tuple[float, str]] = set()
    for family in (gan_section.get("families") or {}):
        s = settings_for(gan_section, family)
        if s.detector == kind:
            found.add((s.detector_width, s.detector_input))
    if not found:
        raise ConfigError(f"gan.families: no family uses detector {kind!r}")
    if len(found) > 1:
        raise ConfigError(f"gan.families: families using {kind!r} disagree on detector_width/detector_input "
                          f"{sorted(found)}")
    return found.pop()


# -- loss ---------------------------------------------------------------------------------------

def balanced_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """HED's class-balanced sigmoid cross-entropy, mean over pixels, averaged over the batch.

    Per image, ``beta = |Y-| / |Y|`` weights the edge pixels and ``1 - beta`` the others; an image
    without edges has beta 1 and contributes nothing (as in HED). Mean rather than HED's sum keeps
    the loss scale independent of the crop size.
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
    if isinstance(model, HED):
        fusion = model.fusion
    elif isinstance(model, RCF):
        fusion = model.score_fuse
    else:
        raise DarksideError(f"side outputs: {type(model).__name__} is not HED or RCF")
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

def edge_path(dataset_dir: Path, rel: str) -> Path:
    """Ground-truth edge map of an image of the synthetic benchmark: ``<dataset>/edges/<rel>``."""
    return Path(dataset_dir) / "edges" / rel


def load_edge_map(path: Path) -> np.ndarray:
    """A ground-truth edge PNG as a bool array (any non-zero pixel is an edge)."""
    img = load_rgb(path)
    return np.asarray(img)[..., 0] > 0


def training_pairs(dataset_dir: Path, split: str, domains: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB uint8 image, bool edges) of every manifest row of ``split`` in ``domains``, manifest order."""
    man = load_manifest(dataset_dir)
    recs = [r for r in man.records if r.split == split and r.domain in domains]
    if not recs:
        raise DarksideError(f"{Path(dataset_dir) / 'manifest.csv'}: no images of split {split!r} in domains "
                            f"{list(domains)}")
    pairs = []
    for r in recs:
        img = np.asarray(load_rgb(man.image_path(r)))
        ep = edge_path(man.root, r.path)
        if not ep.is_file():
            raise DarksideError(f"{ep}: ground-truth edge map missing (only the synthetic benchmark has them)")
        edges = load_edge_map(ep)
        if edges.shape != img.shape[:2]:
            raise DarksideError(f"{ep}: edge map {edges.shape} does not match its image {img.shape[:2]}")
        pairs.append((img, edges))
    return pairs


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
    idx = rng.integers(0, len(pairs), s.batch_size)
    imgs, tgts = [], []
    for i in idx:
        im, ed = random_crop(*pairs[int(i)], s.crop, s.hflip, rng)
        imgs.append(im)
        tgts.append(ed)
    x = torch.from_numpy(np.stack(imgs).astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.stack(tgts).astype(np.float32)).unsqueeze(1)
    return x, y


# -- training -----------------------------------------------------------------------------------

def train_detector(model: nn.Module, pairs: Sequence[tuple[np.ndarray, np.ndarray]], s: EdgePretrainSettings,
                   device: torch.device | str, seed: int) -> list[dict[str, float]]:
    """Train ``model`` in place; returns the loss log (means over ``log_every`` steps)."""
    dev = torch.device(device)
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=s.lr, betas=(s.beta1, s.beta2), weight_decay=s.weight_decay)
    rng = np.random.default_rng([seed, 1])  # data stream separate from the init stream
    log: list[dict[str, float]] = []
    acc = {"loss": 0.0, "fused": 0.0, "sides": 0.0}
    for step in range(1, s.steps + 1):
        x, y = sample_batch(pairs, s, rng)
        loss, parts = deep_supervision_loss(model, x.to(dev), y.to(dev), s.side_weight, s.fuse_weight)
        if not torch.isfinite(loss):
            raise DarksideError(f"pretrain_edges: loss is {float(loss)} at step {step} (lower edges.lr)")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc["loss"] += float(loss.detach())
        acc["fused"] += parts["fused"]
        acc["sides"] += parts["sides"]
        if step % s.log_every == 0 or step == s.steps:
            k = (step - 1) % s.log_every + 1
            log.append({"step": step, **{name: v / k for name, v in acc.items()}})
            acc = dict.fromkeys(acc, 0.0)
    model.eval()
    return log


def pretrain_edges(kind: str, dataset_dir: str | Path, settings: EdgePretrainSettings, out_path: str | Path,
                   device: torch.device | str = "cpu", seed: int = 0, *, width: float = 1.0,
                   input_mode: str = "caffe255") -> Path:
    """Train a ``kind`` ('hed' | 'rcf') teacher on the dataset's ground-truth edges; write ``out_path``.

    ``width`` / ``input_mode``: the gan section's ``detector_width`` / ``detector_input`` (see
    :func:`teacher_geometry`), so the file loads into the families' teacher. The file holds
    ``state_dict`` plus metadata (format, kind, width, input_mode, settings, seed, loss log); a
    training summary is written beside it as ``<out_path stem>.json``.
    """
    if kind not in DETECTORS:
        raise ConfigError(f"pretrain_edges: kind {kind!r} is not one of {list(DETECTORS)}")
    t0 = time.perf_counter()
    pairs = training_pairs(Path(dataset_dir), settings.split, settings.domains)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_detector(kind, width, input_mode)
    log = train_detector(model, pairs, settings, device, seed)
    wall = time.perf_counter() - t0
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    meta = {"format": TEACHER_FORMAT, "kind": kind, "width": float(width), "input_mode": input_mode,
            "settings": settings.to_dict(), "seed": int(seed), "dataset": str(dataset_dir),
            "images": len(pairs), "wall_s": wall, "log": log}
    out = Path(out_path)
    with atomic_path(out) as tmp:
        torch.save({**meta, "state_dict": state}, tmp)
    atomic_write_json(out.with_suffix(".json"), meta)
    return out


def load_teacher_file(path: str | Path, device: torch.device | str = "cpu", kind: str | None = None,
                      width: float | None = None, input_mode: str | None = None) -> nn.Module:
    """A detector (eval mode) from a weights file: a file written by :func:`pretrain_edges` carries
    its kind/width/input_mode; a published file needs them as arguments."""
    from darkside.gan.edges import load_detector_file

    p = Path(path)
    meta: dict[str, Any] = {}
    if p.is_file():
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DarksideError(f"{p}: cannot read detector weights ({type(exc).__name__})") from None
        if isinstance(obj, dict) and obj.get("format") == TEACHER_FORMAT:
            meta = obj
    kind = kind or meta.get("kind")
    if kind is None:
        raise DarksideError(f"{p}: not a darkside teacher file; give the detector kind (hed | rcf)")
    model = build_detector(kind, width if width is not None else float(meta.get("width", 1.0)),
                           input_mode or str(meta.get("input_mode", "caffe255")))
    load_detector_file(model, p)
    return model.to(torch.device(device)).eval()
