"""Backbone pre-training: the mini preset's stand-in for ImageNet weights.

The paper fine-tunes backbones that start from ImageNet. The mini preset cannot download them, and
a randomly initialised trunk fine-tuned for a CPU minute stays near chance on every test set (the
off-the-shelf Tokyo-like mAP of a random VGG16-mini is ~4, which leaves nothing for the recipes to
change). So, where no published weights can be had, the DAG first trains the trunk as a classifier
of scenes that the test sets do not contain (the synthetic whitening scenes), with the photometric
jitter an ImageNet recipe uses, and saves the trunk in cirtorch's key layout: the off-the-shelf
model then loads it exactly as it would load ``imagenet-caffe-vgg16-features-d369c8e.pth``.
Training checkpoints every ``checkpoint_every`` steps and resumes from the last one
(:mod:`darkside.training`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from darkside.atomic import atomic_write_json
from darkside.config import BackboneSpec
from darkside.data.images import load_rgb
from darkside.data.manifest import load_manifest
from darkside.embed.network import IMAGENET_MEAN, IMAGENET_STD, build_embedding_net
from darkside.errors import ConfigError, DarksideError
from darkside.settings import setting, to_plain
from darkside.state import save_torch
from darkside.training import checkpoint_path, load_checkpoint, preemptible, rng_states, save_checkpoint, set_rng_states

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackbonePretrainSettings:
    """``backbone_pretrain``: scene classification with an ImageNet-style augmentation, every number explicit."""

    steps: int | dict[str, int] = setting("one count for all backbones, or one per backbone name", ge=1,
                                          keys_of="backbones")
    batch_size: int = setting(ge=1)
    lr: float = setting(gt=0)
    image_size: int = setting("max side the images are loaded at", ge=1)
    crop: tuple[int, int] = setting("(height, width) of the training crops", ge=1)
    scale_min: float = setting("crops cover a random fraction in [scale_min, 1] of each side", gt=0, le=1)
    brightness: tuple[float, float] = setting("global gain range", ge=0)
    colour_gain: tuple[float, float] = setting("per-channel gain range (colour casts)", ge=0)
    contrast: tuple[float, float] = setting(ge=0)
    gamma: tuple[float, float] = setting("exponent range, drawn log-uniformly: under- and over-exposed tone curves",
                                         gt=0)
    grayscale: float = setting("probability of a grey copy (colour is not what identifies a place)", ge=0, le=1)
    logit_scale: float = setting("the classifier sees scaled L2-normalised descriptors (cosine classifier)", gt=0)
    split: str = setting(pattern=".")
    domains: tuple[Literal["day", "sunset", "night", "other"], ...] = setting(min_items=1)
    checkpoint_every: int = setting("steps between checkpoints (a preempted run resumes from the last)", ge=1)

    def steps_for(self, backbone: str) -> int:
        """Training steps of ``backbone`` (a deeper trunk may need more than a shallow one)."""
        if isinstance(self.steps, Mapping):
            if backbone not in self.steps:
                raise ConfigError(f"backbone_pretrain.steps: no entry for backbone {backbone!r} "
                                  f"(known: {', '.join(sorted(self.steps))})")
            return int(self.steps[backbone])
        return int(self.steps)


def _augment(img: np.ndarray, s: BackbonePretrainSettings, rng: np.random.Generator) -> torch.Tensor:
    """Random crop (resized to ``s.crop``) and photometric jitter of one HxWx3 float image in [0, 1]."""
    h, w = img.shape[:2]
    ch, cw = (max(1, round(n * rng.uniform(s.scale_min, 1.0))) for n in (h, w))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    x = torch.from_numpy(np.ascontiguousarray(img[y0:y0 + ch, x0:x0 + cw])).permute(2, 0, 1)[None]
    x = F.interpolate(x, size=tuple(s.crop), mode="bilinear", align_corners=False)[0]
    x = x * float(rng.uniform(*s.brightness))
    x = x * torch.from_numpy(rng.uniform(*s.colour_gain, size=(3, 1, 1)).astype(np.float32))
    mean = x.mean()
    x = ((x - mean) * float(rng.uniform(*s.contrast)) + mean).clamp(0, 1)
    lo, hi = np.log(s.gamma[0]), np.log(s.gamma[1])
    x = x ** float(np.exp(rng.uniform(lo, hi)))
    if rng.random() < s.grayscale:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True).expand(3, -1, -1)
    return x.contiguous()


def pretrain_backbone(spec: BackboneSpec, dataset_dir: str | Path, settings: BackbonePretrainSettings,
                      out_path: str | Path, device: str = "cpu", seed: int = 0) -> Path:
    """Train ``spec``'s trunk (from seeded random init) as a scene classifier; write the trunk's state
    dict (cirtorch layout) atomically to ``out_path`` and a log beside it; return ``out_path``."""
    manifest = load_manifest(dataset_dir)
    records = [r for r in manifest.records if r.split == settings.split and r.domain in settings.domains]
    if not records:
        raise DarksideError(f"{manifest.root}: no {'/'.join(settings.domains)} images in split {settings.split!r}")
    classes = sorted({r.cluster for r in records})
    label = {c: i for i, c in enumerate(classes)}
    from darkside.data.photometric import resize_max_side

    images = [np.asarray(resize_max_side(load_rgb(manifest.image_path(r)), settings.image_size), np.float32) / 255
              for r in records]
    targets = np.array([label[r.cluster] for r in records])
    random_spec = BackboneSpec(spec.arch, spec.width, spec.blocks, "random", None, spec.name)
    net = build_embedding_net(random_spec, seed=seed).to(device).train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = nn.Linear(net.dim, len(classes), bias=False).to(device)
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=settings.lr)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    rng = np.random.default_rng(seed)
    out = Path(out_path)
    ckpt_path = checkpoint_path(out)
    config = {"backbone": to_plain(spec), "settings": to_plain(settings), "seed": seed, "classes": classes}
    losses, start, t0 = [], 0, time.perf_counter()
    state = load_checkpoint(ckpt_path, config)
    if state is not None:
        net.load_state_dict(state["net"])
        head.load_state_dict(state["head"])
        opt.load_state_dict(state["optimizer"])
        set_rng_states(state["rng"], rng)
        losses, start = list(state["losses"]), int(state["step"])
    total = settings.steps_for(spec.name)
    with preemptible():
        for step in tqdm(range(start + 1, total + 1), desc=f"pretrain {spec.name}", disable=None):
            idx = rng.integers(0, len(images), settings.batch_size)
            x = torch.stack([_augment(images[i], settings, rng) for i in idx]).to(device)
            logits = settings.logit_scale * F.linear(net((x - mean) / std), F.normalize(head.weight, dim=1))
            loss = F.cross_entropy(logits, torch.from_numpy(targets[idx]).to(device))
            if not torch.isfinite(loss):
                raise DarksideError(f"pretrain-backbone {spec.name}: the loss became {loss.item()} (lower lr)")
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if step % settings.checkpoint_every == 0 and step < total:
                save_checkpoint(ckpt_path, config, {"step": step, "net": net.state_dict(), "head": head.state_dict(),
                                                    "optimizer": opt.state_dict(), "rng": rng_states(rng),
                                                    "losses": losses})
    wall = time.perf_counter() - t0
    save_torch(out, {k: v.detach().cpu().contiguous() for k, v in net.backbone.state_dict().items()})
    quarter = max(1, len(losses) // 4)
    first, last = float(np.mean(losses[:quarter])), float(np.mean(losses[-quarter:]))
    atomic_write_json(out.with_suffix(".json"), {
        "backbone": spec.name, "dataset": manifest.name, "classes": len(classes), "images": len(images),
        "seed": seed, "settings": to_plain(settings), "wall_s": wall,
        "loss_first_quarter": first, "loss_last_quarter": last})
    log.info("pretrained %s on %d scenes in %.0f s (loss %.3f -> %.3f)", spec.name, len(classes), wall, first, last)
    ckpt_path.unlink(missing_ok=True)
    return out
