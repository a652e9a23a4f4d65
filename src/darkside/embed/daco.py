"""DaCo's learner (Ren et al.; leftthomas/DaCo): contrastive learning across domains with translated views.

Every training image of both domains comes with its translation into the other domain (a frozen generator's
output, read from ``<translations>/<image path>``, DaCo's ``generated/`` tree). Each step draws a batch of
training images and makes four views with SimCLR's augmentations, drawn independently: o1, o2 of the image and
g1, g2 of its translation. The network is a trunk from random initialisation (DaCo: torchvision's ResNet-50
without ImageNet weights or its fc layer), global average pooling, and a projection head Linear(C, hidden, no
bias), BN, ReLU, Linear(hidden, C); the L2-normalised projections enter the loss
(:func:`darkside.embed.self_supervised_losses.daco_loss`: NT-Xent(o1, o2) + NT-Xent(g1, g2) +
λ [NT-Xent(o1, g1) + NT-Xent(o1, g2)]), the L2-normalised pooled feature is the retrieval descriptor.
λ = 0 trains with the translated views but without the cross-domain terms; ``translated_views: false`` is
SimCLR (NT-Xent(o1, o2) alone, DaCo's SimCLR baseline).

As DaCo did, the run is evaluated after every epoch (``iterations // (train images // batch)`` epochs) on the
evaluation pairs, and the checkpoint with the best mean of the three R@1 values (A->B, B->A, A<->B) is kept:
selection on the reported split, which the table says beside its numbers. A run checkpoints after every epoch
and resumes from the last one (:mod:`darkside.training`); the same seed gives the same weights on the CPU.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torch import nn

from darkside.atomic import atomic_write_json
from darkside.config import BackboneSettings, BackboneSpec
from darkside.data.images import load_rgb
from darkside.data.manifest import GroundTruth, Manifest, load_groundtruth, load_manifest
from darkside.embed.backbones import build_backbone
from darkside.embed.self_supervised_losses import daco_loss, nt_xent
from darkside.errors import DarksideError
from darkside.evaluate.recall import recall_at_k
from darkside.gan.family import GanVariant
from darkside.settings import setting, to_plain
from darkside.state import save_torch
from darkside.training import load_checkpoint, preemptible, reseed, rng_states, save_checkpoint, set_rng_states

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DacoSettings:
    """``daco``: DaCo's training recipe (its values in the paper preset), every number explicit."""

    translated_views: bool = setting("g1, g2 from the translation (DaCo); false: SimCLR on o1, o2 alone")
    lam: float = setting("weight of the two cross-domain terms (DaCo 0.8)", ge=0)
    temperature: float = setting("NT-Xent temperature (DaCo 0.1)", gt=0)
    hidden_dim: int = setting("projection head's hidden width (DaCo 512)", ge=1)
    batch_size: int = setting("images per step (DaCo 16; SimCLR 32)", ge=2)
    iterations: int = setting("optimiser steps (DaCo 10,000)", ge=1)
    lr: float = setting("Adam (DaCo 1e-3)", gt=0)
    weight_decay: float = setting("Adam (DaCo 1e-6)", ge=0)
    crop: int = setting("side of the random resized crops (DaCo 256)", ge=1)
    crop_scale: tuple[float, float] = setting("area fraction range of the crops (DaCo (0.2, 1))", gt=0, le=1)
    crop_ratio: tuple[float, float] = setting("aspect ratio range of the crops (torchvision's (3/4, 4/3))", gt=0)
    jitter: tuple[float, float, float, float] = setting("brightness, contrast, saturation, hue (DaCo 0.4 0.4 0.4 "
                                                        "0.1)", ge=0)
    jitter_p: float = setting("probability of the colour jitter (DaCo 0.8)", ge=0, le=1)
    grayscale_p: float = setting("probability of a grey view (DaCo 0.2)", ge=0, le=1)
    flip_p: float = setting("probability of a horizontal flip (DaCo 0.5)", ge=0, le=1)
    eval_resize: int = setting("evaluation images' shorter side (DaCo 256)", ge=1)
    translations: Literal["translator", "dataset"] = setting(
        "where the translated views come from (read by the DAG): the daco.translator trained on the task, or the "
        "translations/ folder shipped beside the pair set (the synthetic renderer's, the ceiling a translator can "
        "reach; for a real set, DaCo's published generated/ tree placed there)", default="translator")


@dataclass(frozen=True)
class Normalisation:
    """A dataset's input normalisation (DaCo computed one per dataset, on its training images)."""

    mean: tuple[float, float, float] = setting("per channel, RGB in [0, 1] (DaCo: Tokyo 0.334 0.332 0.320)")
    std: tuple[float, float, float] = setting("per channel (DaCo: Tokyo 0.241 0.237 0.242)", gt=0)


@dataclass(frozen=True)
class DacoVariant:
    """``daco.variants.<name>``: another run of a learner with some settings replaced (DaCo's Table 4 lambda sweep,
    its Table 6 augmentation ablation), trained and scored like a learner under its own name."""

    learner: str = setting("the learner whose entry gives every setting the overrides leave", key_in="daco.learners")
    overrides: dict[str, Any] = setting("settings of the learner's entry replaced for this run (checked as a "
                                        "learner's own settings)")


@dataclass(frozen=True)
class DacoSection:
    """``daco``: the contrastive learners of DaCo's tables (DaCo itself, and its SimCLR baseline), each a named
    entry of every setting, trained by ``darkside train-daco --learner <name>`` per task (``runs``) into
    ``results/daco/models/<name>/<dataset>``, and the generator that translates each task's training images."""

    seed: int = setting("the runs' seed (DaCo's main.py: 1)", ge=0)
    backbone: BackboneSettings = setting("the trunk, from random initialisation (DaCo: torchvision's ResNet-50 "
                                         "without ImageNet weights, its fc layer dropped)")
    normalisation: dict[str, Normalisation] = setting("prepared dataset -> its normalisation (a dataset a run "
                                                      "trains on needs one)")
    learners: dict[str, DacoSettings] = setting("learner name -> its settings (the model's name)")
    variants: dict[str, DacoVariant] = setting("further runs of a learner with some settings replaced: name -> "
                                               "learner and overrides")
    translator: GanVariant = setting(
        "the generator trained once per task on its pair set's training images (domain A as the family's day, B "
        "as its night; DaCo: ForkGAN) with the family's gan.families entry, overrides applied; it translates every "
        "training image into the other domain once (`darkside train-daco-translator`)")
    runs: dict[str, tuple[str, ...]] = setting("cross_domain role -> the learners and variants the DAG trains and "
                                               "scores on that role's dataset", keys_of="data.roles.cross_domain")


class DacoNet(nn.Module):
    """Trunk, global average pooling, projection head; ``forward`` gives (feature, projection), both unit norm."""

    def __init__(self, trunk: nn.Module, channels: int, hidden_dim: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.head = nn.Sequential(nn.Linear(channels, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim),
                                  nn.ReLU(inplace=True), nn.Linear(hidden_dim, channels))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return nn.functional.normalize(f, dim=1), nn.functional.normalize(self.head(f), dim=1)


def build_daco_net(backbone: BackboneSpec, hidden_dim: int, seed: int) -> DacoNet:
    """The network of a run: the trunk as ``backbone`` says (DaCo: random), the head from a seed of its own."""
    trunk, channels = build_backbone(backbone, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return DacoNet(trunk, channels, hidden_dim)


def load_daco_model(path: str | Path) -> tuple[DacoNet, DacoSettings, Normalisation]:
    """The network of a ``train-daco`` model file, with the settings and normalisation it was trained with
    (tensors and plain values only: read with ``weights_only``)."""
    from darkside.settings import parse
    from darkside.state import load_checked_state, read_state_file

    p = Path(path)
    state = read_state_file(p, "DaCo model")
    try:
        config = torch.load(p, map_location="cpu", weights_only=True)["config"]
        settings = parse(DacoSettings, config["settings"], f"{p}: settings")
        norm = parse(Normalisation, config["normalisation"], f"{p}: normalisation")
        backbone = parse(BackboneSpec, config["backbone"], f"{p}: backbone")
    except (KeyError, TypeError):
        raise DarksideError(f"{p}: not a train-daco model file (no config with settings, normalisation, "
                            "backbone)") from None
    net = build_daco_net(backbone, settings.hidden_dim, int(config.get("seed", 0)))
    load_checked_state(net, state, str(p))
    return net.eval(), settings, norm


def _crop_box(h: int, w: int, s: DacoSettings, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box: 10 tries of a random area and log-uniform ratio, else the centre."""
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*s.crop_scale)
        ratio = math.exp(rng.uniform(math.log(s.crop_ratio[0]), math.log(s.crop_ratio[1])))
        cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
    ch, cw = h, w  # torchvision falls back to the whole image clipped to the ratio range
    if w / h < s.crop_ratio[0]:
        ch = round(w / s.crop_ratio[0])
    elif w / h > s.crop_ratio[1]:
        cw = round(h * s.crop_ratio[1])
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def simclr_view(img: torch.Tensor, s: DacoSettings, norm: Normalisation, rng: np.random.Generator) -> torch.Tensor:
    """One SimCLR view of a (3, H, W) float image in [0, 1]: crop, jitter (random order, as torchvision's
    ColorJitter), grey, flip, normalise. Every draw comes from ``rng``, so a seeded run repeats exactly."""
    top, left, ch, cw = _crop_box(img.shape[1], img.shape[2], s, rng)
    x = TF.resized_crop(img, top, left, ch, cw, [s.crop, s.crop], antialias=True)
    if rng.random() < s.jitter_p:
        # torchvision's ColorJitter: the order first, then the four factors
        order = rng.permutation(4)
        b, c, sat, hue = s.jitter
        factors = (rng.uniform(max(0.0, 1 - b), 1 + b), rng.uniform(max(0.0, 1 - c), 1 + c),
                   rng.uniform(max(0.0, 1 - sat), 1 + sat), rng.uniform(-hue, hue))
        adjust = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
        for i in order:
            x = adjust[int(i)](x, float(factors[int(i)]))
    if rng.random() < s.grayscale_p:
        x = TF.rgb_to_grayscale(x, num_output_channels=3)
    if rng.random() < s.flip_p:
        x = TF.hflip(x)
    return TF.normalize(x.clamp(0, 1), list(norm.mean), list(norm.std))


def _tensor(path: Path) -> torch.Tensor:
    return TF.pil_to_tensor(load_rgb(path)).float().div_(255.0)


@dataclass(frozen=True)
class _Pairs:
    train: list[Path]       # every training image of both domains
    translated: list[Path]  # its translation, same order
    val_a: list[Path]
    val_b: list[Path]


def _pairs(manifest: Manifest, gt: GroundTruth, root: Path, translations: Path | None) -> _Pairs:
    if gt.protocol != "cross_domain":
        raise DarksideError(f"{root}: protocol {gt.protocol!r}; DaCo trains on a cross_domain pair set")
    path = {r.image_id: manifest.image_path(r) for r in manifest.records}
    rel = {r.image_id: r.path for r in manifest.records}
    train_ids = [i for split, plist in sorted(gt.pairs.items()) if split != gt.database_split
                 for pair in plist for i in pair]
    if not train_ids:
        raise DarksideError(f"{root}: no training pairs (every split but {gt.database_split!r} trains)")
    translated = [translations / rel[i] for i in train_ids] if translations is not None else []
    val = gt.pairs[gt.database_split or ""]
    return _Pairs([path[i] for i in train_ids], translated, [path[a] for _, a in val], [path[b] for b, _ in val])


@torch.no_grad()
def descriptors(net: DacoNet, paths: list[Path], s: DacoSettings, norm: Normalisation,
                device: str = "cpu") -> np.ndarray:
    """Unit-norm pooled features of whole images, shorter side resized to ``eval_resize`` (DaCo's evaluation);
    images of different shapes go one by one."""
    net.eval()
    out = []
    for p in paths:
        x = TF.normalize(TF.resize(_tensor(p), s.eval_resize, antialias=True), list(norm.mean), list(norm.std))
        out.append(nn.functional.normalize(net.features(x[None].to(device)), dim=1)[0].cpu().numpy())
    return np.asarray(out, dtype=np.float32).reshape(len(paths), -1)


def evaluate_pairs(net: DacoNet, data: _Pairs, s: DacoSettings, norm: Normalisation,
                   device: str = "cpu") -> dict[str, float]:
    """R@1 of the three settings on the evaluation pairs (fractions) and their mean: DaCo's selection score."""
    rec = recall_at_k(descriptors(net, data.val_a, s, norm, device), descriptors(net, data.val_b, s, norm, device),
                      (1,), 4096)
    r1 = {mode: rr.recall[1] for mode, rr in rec.items()}
    return {**r1, "mean": float(np.mean(list(r1.values())))}


def train_daco(dataset_dir: str | Path, translations: str | Path | None, backbone: BackboneSpec, settings: DacoSettings,
               normalisation: Normalisation, out_dir: str | Path, seed: int, device: str = "cpu") -> Path:
    """Train on a prepared ``cross_domain`` pair set; write ``model.pt`` (the best epoch's state dict and its
    settings) and ``training_log.json`` under ``out_dir``; return the model's path."""
    s, root, out = settings, Path(dataset_dir), Path(out_dir)
    if s.translated_views and translations is None:
        raise DarksideError("daco.translated_views: the run needs the translations of its training images")
    manifest = load_manifest(root)
    data = _pairs(manifest, load_groundtruth(root, manifest), root, Path(translations) if s.translated_views
                  and translations is not None else None)
    missing = next((p for p in data.translated if not p.is_file()), None)
    if missing is not None:
        raise DarksideError(f"{missing}: translation of a training image missing")
    steps_per_epoch = max(1, len(data.train) // s.batch_size)
    epochs = max(1, s.iterations // steps_per_epoch)
    norm = normalisation
    config = {"settings": to_plain(s), "normalisation": to_plain(norm), "backbone": to_plain(backbone), "seed": seed,
              "dataset": manifest.name}
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    reseed(seed)
    net = build_daco_net(backbone, s.hidden_dim, seed).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    rng = np.random.default_rng(seed)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"mean": -1.0}
    best_state: dict[str, torch.Tensor] = {}
    start = 0
    ckpt = load_checkpoint(ckpt_path, config)
    if ckpt is not None:
        net.load_state_dict(ckpt["net"])
        opt.load_state_dict(ckpt["optimizer"])
        set_rng_states(ckpt["rng"], rng)
        history, best, best_state, start = ckpt["history"], ckpt["best"], ckpt["best_state"], int(ckpt["epoch"])
        log.info("daco: resuming after epoch %d of %d", start, epochs)
    images = [_tensor(p) for p in data.train]
    translated = [_tensor(p) for p in data.translated]
    with preemptible():
        for epoch in range(start, epochs):
            t0, losses = time.perf_counter(), []
            net.train()
            order = rng.permutation(len(images))
            for step in range(steps_per_epoch):
                idx = order[step * s.batch_size:(step + 1) * s.batch_size]
                o1 = torch.stack([simclr_view(images[i], s, norm, rng) for i in idx]).to(device)
                o2 = torch.stack([simclr_view(images[i], s, norm, rng) for i in idx]).to(device)
                _, z1 = net(o1)
                _, z2 = net(o2)
                if s.translated_views:
                    _, y1 = net(torch.stack([simclr_view(translated[i], s, norm, rng) for i in idx]).to(device))
                    _, y2 = net(torch.stack([simclr_view(translated[i], s, norm, rng) for i in idx]).to(device))
                    loss = daco_loss(z1, z2, y1, y2, s.lam, s.temperature)
                else:
                    loss = nt_xent(z1, z2, s.temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
            score = evaluate_pairs(net, data, s, norm, device)
            entry = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "R@1": score,
                     "seconds": round(time.perf_counter() - t0, 3)}
            history.append(entry)
            if score["mean"] > best["mean"]:
                best = {"epoch": epoch + 1, "mean": score["mean"]}
                best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            log.info("daco epoch %d/%d: loss %.4f, R@1 A->B %.1f B->A %.1f A<->B %.1f (best epoch %d)", epoch + 1,
                     epochs, entry["loss"], 100 * score["A->B"], 100 * score["B->A"], 100 * score["A<->B"],
                     best["epoch"])
            save_checkpoint(ckpt_path, config, {"net": net.state_dict(), "optimizer": opt.state_dict(),
                                                "rng": rng_states(rng), "history": history, "best": best,
                                                "best_state": best_state, "epoch": epoch + 1})
    model = save_torch(out / "model.pt", {"config": config, "state_dict": best_state, "best": best})
    atomic_write_json(out / "training_log.json", {"config": config, "epochs": history, "best": best,
                                                  "selection": "best mean R@1 of A->B, B->A, A<->B on the "
                                                               "evaluation pairs (DaCo's rule)"})
    ckpt_path.unlink(missing_ok=True)
    return model
