"""The contrastive learners of DaCo's tables (Ren et al.; leftthomas/DaCo): DaCo itself and its self-supervised
baselines (SimCLR, MoCo, NPID, SimSiam), one training loop and one evaluation, the objective a module of
:mod:`darkside.embed.objectives`.

Every training image of both domains may come with its translation into the other domain (a frozen generator's
output, read from ``<translations>/<image path>``, DaCo's ``generated/`` tree). Each step draws a batch of
training images and makes the views its objective reads with SimCLR's augmentations, drawn independently: o1, o2
of the image and g1, g2 of its translation. The network is a trunk from random initialisation (DaCo: torchvision's
ResNet-50 without ImageNet weights or its fc layer), global average pooling, and a projection head Linear(C,
hidden, no bias), BN, ReLU, Linear(hidden, C); the L2-normalised projections (and, for SimSiam, features) enter
the objective, the L2-normalised pooled feature is the retrieval descriptor.

As DaCo did, the run is evaluated after every epoch (``iterations // (train images // batch)`` epochs) on the
evaluation pairs, and the checkpoint with the best mean of the three R@1 values (A->B, B->A, A<->B) is kept:
selection on the reported split, which the table says beside its numbers. A run checkpoints after every epoch
(the objective's state with it: MoCo's queue and key encoder, NPID's bank) and resumes from the last one
(:mod:`darkside.training`); the same seed gives the same weights on the CPU.
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
from torch import nn

from darkside.atomic import atomic_write_json
from darkside.config import BackboneSpec
from darkside.data.manifest import GroundTruth, Manifest, load_groundtruth, load_manifest
from darkside.embed.backbones import build_backbone
from darkside.embed.objectives import VIEWS, Views, build_objective, objective_class, objective_settings
from darkside.errors import ConfigError, DarksideError
from darkside.evaluate.recall import recall_at_k
from darkside.image_ops import grey, image_tensor, normalise, resize_short_side, resized_crop, rgb_to_hsv
from darkside.settings import setting, to_plain
from darkside.state import save_torch
from darkside.training import load_checkpoint, preemptible, reseed, rng_states, save_checkpoint, set_rng_states

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AveragePooling:
    """Global average pooling of the trunk's map (DaCo and its contrastive baselines): C-dimensional features."""


@dataclass(frozen=True)
class NetVladPooling:
    """NetVLAD pooling (:class:`darkside.embed.pooling.NetVLAD`, K x C-dimensional features; DaCo's NetVLAD row),
    initialised before the first step as the authors do: k-means centres of unit trunk features of the first
    training images, the assignment from them."""

    clusters: int = setting("K, the centres (NetVLAD 64)", ge=2)
    init_images: int = setting("first training images whose trunk features the centres are k-means'd from", ge=1)
    init_features: int = setting("locations drawn from each of them (all where an image has fewer)", ge=1)
    kmeans_iterations: int = setting("Lloyd iterations of the centres' k-means", ge=1)
    assignment_ratio: float = setting("a feature weighs its nearest centre this many times its second nearest, on "
                                      "average (the authors' 100)", gt=1)


def _poolings() -> dict[str, type]:
    return {"average": AveragePooling, "netvlad": NetVladPooling}


@dataclass(frozen=True)
class DacoSettings:
    """``daco``: DaCo's training recipe (its values in the paper preset), every number explicit."""

    objective: dict[str, Any] = setting(
        "the objective, one entry: its name (a module of darkside.embed.objectives: daco, simclr, moco, npid, "
        "simsiam) -> its settings", keyed=objective_settings, min_items=1, max_items=1)
    pooling: dict[str, Any] = setting("one entry: average (DaCo and the contrastive baselines) or netvlad (DaCo's "
                                      "NetVLAD row) -> its settings", keyed=_poolings, min_items=1, max_items=1)
    hidden_dim: int = setting("projection head's hidden width (DaCo 512)", ge=1)
    batch_size: int = setting("images per step (DaCo 16; SimCLR, MoCo, SimSiam 32; NPID 64)", ge=2)
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
    translations: Literal["translator", "dataset", "none"] = setting(
        "where the translated views come from (read by the DAG): the daco.translator trained on the task, the "
        "translations/ folder shipped beside the pair set (the synthetic renderer's, the ceiling a translator can "
        "reach; for a real set, DaCo's published generated/ tree placed there), or none for an objective that "
        "reads no translated view")

    @property
    def objective_name(self) -> str:
        return next(iter(self.objective))

    def check(self, where: str) -> None:
        """An objective that reads translated views has translations, one that reads none has none."""
        reads = objective_class(self.objective_name).reads_translations()
        if reads == (self.translations == "none"):
            need = "reads translated views: translations translator or dataset" if reads else \
                "reads no translated view: translations none"
            raise ConfigError(f"{where}: objective {self.objective_name!r} {need}, not {self.translations!r}")


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


class DacoNet(nn.Module):
    """Trunk, pooling (global average, or NetVLAD), projection head; ``forward`` gives (feature, projection), both
    unit norm. The head maps the D-dimensional feature to ``hidden_dim`` and back to the trunk's C channels."""

    def __init__(self, trunk: nn.Module, channels: int, hidden_dim: int, pool: nn.Module | None = None,
                 dim: int | None = None) -> None:
        super().__init__()
        self.trunk, self.pool = trunk, pool
        dim = channels if dim is None else dim
        self.head = nn.Sequential(nn.Linear(dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim),
                                  nn.ReLU(inplace=True), nn.Linear(hidden_dim, channels))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.trunk(x)
        return fmap.mean(dim=(2, 3)) if self.pool is None else self.pool(fmap)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        return nn.functional.normalize(f, dim=1), nn.functional.normalize(self.head(f), dim=1)


def build_daco_net(backbone: BackboneSpec, hidden_dim: int, seed: int,
                   pooling: dict[str, Any] | None = None) -> DacoNet:
    """The network of a run: the trunk as ``backbone`` says (DaCo: random), the pooling a learner's ``pooling``
    entry names (None: average), the head from a seed of its own."""
    trunk, channels = build_backbone(backbone, seed)
    ((kind, p),) = (pooling or {"average": AveragePooling()}).items()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        if kind == "netvlad":
            from darkside.embed.pooling import NetVLAD
            return DacoNet(trunk, channels, hidden_dim, NetVLAD(channels, p.clusters), p.clusters * channels)
        return DacoNet(trunk, channels, hidden_dim)


@torch.no_grad()
def init_netvlad(net: DacoNet, inputs: list[torch.Tensor], p: NetVladPooling, seed: int, device: str) -> float:
    """NetVLAD's initialisation (its authors'): centres by k-means of unit trunk features of the first
    ``init_images`` inputs (``init_features`` random locations of each), the assignment from them; returns alpha."""
    from darkside.embed.networks.netvlad import init_from_locations
    from darkside.embed.pooling import l2n

    was = net.training
    net.eval()
    rows = [l2n(net.trunk(x[None].to(device)).float().flatten(2)[0].t()).cpu() for x in inputs[: p.init_images]]
    net.train(was)
    return init_from_locations(net.pool, rows, p.clusters, p.init_features, p.kmeans_iterations,  # type: ignore[arg-type]
                               p.assignment_ratio, torch.Generator().manual_seed(seed))


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
    net = build_daco_net(backbone, settings.hidden_dim, int(config.get("seed", 0)), settings.pooling)
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


@dataclass(frozen=True)
class ViewDraw:
    """The random parts of one SimCLR view: crop box, colour jitter (order and factors, or None), grey, flip."""

    box: tuple[int, int, int, int]
    jitter: tuple[tuple[int, ...], tuple[float, float, float, float]] | None
    grey: bool
    flip: bool


def draw_view(h: int, w: int, s: DacoSettings, rng: np.random.Generator) -> ViewDraw:
    """The draws of one view, in torchvision's order (crop; ColorJitter's order, then its four factors; grey;
    flip)."""
    box = _crop_box(h, w, s, rng)
    jitter = None
    if rng.random() < s.jitter_p:
        order = tuple(int(i) for i in rng.permutation(4))
        b, c, sat, hue = s.jitter
        jitter = (order, (float(rng.uniform(max(0.0, 1 - b), 1 + b)), float(rng.uniform(max(0.0, 1 - c), 1 + c)),
                          float(rng.uniform(max(0.0, 1 - sat), 1 + sat)), float(rng.uniform(-hue, hue))))
    return ViewDraw(box, jitter, bool(rng.random() < s.grayscale_p), bool(rng.random() < s.flip_p))


def _blend(x: torch.Tensor, y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (f * x + (1.0 - f) * y).clamp(0, 1)


def _hue(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """torchvision's adjust_hue (RGB -> HSV, hue shifted by ``f`` turns, back), the way back by the closed form
    channel = v - v s clamp(min(k, 4 - k), 0, 1), k = (n + 6 h) mod 6, n = 5, 3, 1 for R, G, B: the same colours
    as torchvision's sector table, a few times faster on a batch."""
    h, sat, v = rgb_to_hsv(x).unbind(dim=-3)
    h6 = ((h + f[:, 0]) % 1.0)[:, None] * 6.0
    k = (torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype).view(1, 3, 1, 1) + h6) % 6.0
    return v[:, None] - (v * sat)[:, None] * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


# torchvision's adjust_brightness, _contrast, _saturation and _hue of float images, one factor per image of a batch
_JITTER = (lambda x, f: _blend(x, torch.zeros_like(x), f),
           lambda x, f: _blend(x, grey(x).mean(dim=(-3, -2, -1), keepdim=True), f),
           lambda x, f: _blend(x, grey(x), f),
           _hue)


def simclr_views(imgs: list[torch.Tensor], s: DacoSettings, norm: Normalisation,
                 rng: np.random.Generator) -> torch.Tensor:
    """SimCLR views (B, 3, crop, crop) of (3, H, W) float images in [0, 1], one each: crop, jitter (random order,
    as torchvision's ColorJitter), grey, flip, normalise. Every draw comes from ``rng``, image by image, so a
    seeded run repeats exactly; the jitter runs on the batch, each operation on the views that take it at that
    step of their order, with their own factors."""
    draws = [draw_view(img.shape[1], img.shape[2], s, rng) for img in imgs]
    x = torch.stack([resized_crop(img, *d.box, (s.crop, s.crop)) for img, d in zip(imgs, draws,
                                                                                                      strict=True)])
    for step in range(4):
        for op, adjust in enumerate(_JITTER):
            rows = [i for i, d in enumerate(draws) if d.jitter is not None and d.jitter[0][step] == op]
            if rows:
                f = torch.tensor([draws[i].jitter[1][op] for i in rows], dtype=x.dtype).view(-1, 1, 1, 1)
                x[rows] = adjust(x[rows], f)
    grey_rows = [i for i, d in enumerate(draws) if d.grey]
    if grey_rows:
        x[grey_rows] = grey(x[grey_rows], channels=3)
    flip = [i for i, d in enumerate(draws) if d.flip]
    if flip:
        x[flip] = x[flip].flip(-1)
    return normalise(x.clamp(0, 1), norm.mean, norm.std)


def simclr_view(img: torch.Tensor, s: DacoSettings, norm: Normalisation, rng: np.random.Generator) -> torch.Tensor:
    """One SimCLR view of a (3, H, W) float image in [0, 1] (:func:`simclr_views` of one image)."""
    return simclr_views([img], s, norm, rng)[0]


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


def eval_input(img: torch.Tensor, s: DacoSettings, norm: Normalisation) -> torch.Tensor:
    """DaCo's evaluation transform of a (3, H, W) image in [0, 1]: the whole image, shorter side resized to
    ``eval_resize``, normalised."""
    return normalise(resize_short_side(img, s.eval_resize), norm.mean, norm.std)


def eval_inputs(paths: list[Path], s: DacoSettings, norm: Normalisation) -> list[torch.Tensor]:
    """The evaluation's network inputs of image files (:func:`eval_input`)."""
    return [eval_input(image_tensor(p), s, norm) for p in paths]


@torch.no_grad()
def features_of(net: DacoNet, inputs: list[torch.Tensor], device: str = "cpu", batch_size: int = 64) -> np.ndarray:
    """Unit-norm pooled features of ``inputs``; inputs of one shape go through the network together, ``batch_size``
    at a time (in eval mode batch norm uses its running statistics, so a batch gives each image what it would get
    alone)."""
    net.eval()
    out: list[np.ndarray | None] = [None] * len(inputs)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, x in enumerate(inputs):
        by_shape.setdefault(tuple(x.shape), []).append(i)
    for rows in by_shape.values():
        for k in range(0, len(rows), batch_size):
            chunk = rows[k:k + batch_size]
            f = nn.functional.normalize(net.features(torch.stack([inputs[i] for i in chunk]).to(device)), dim=1)
            for i, row in zip(chunk, f.cpu().numpy(), strict=True):
                out[i] = row
    return np.asarray(out, dtype=np.float32).reshape(len(inputs), -1)


def descriptors(net: DacoNet, paths: list[Path], s: DacoSettings, norm: Normalisation,
                device: str = "cpu") -> np.ndarray:
    """Unit-norm pooled features of whole images as DaCo evaluated them (:func:`eval_inputs`)."""
    return features_of(net, eval_inputs(paths, s, norm), device)


def evaluate_pairs(net: DacoNet, val_a: list[torch.Tensor], val_b: list[torch.Tensor],
                   device: str = "cpu") -> dict[str, float]:
    """R@1 of the three settings on the evaluation pairs' inputs (fractions) and their mean: DaCo's selection
    score."""
    rec = recall_at_k(features_of(net, val_a, device), features_of(net, val_b, device), (1,), 4096)
    r1 = {mode: rr.recall[1] for mode, rr in rec.items()}
    return {**r1, "mean": float(np.mean(list(r1.values())))}


CURVE = "training_curve.png"


def write_daco_curve(history: list[dict[str, Any]], best_epoch: int, path: Path, title: str) -> Path:
    """Training-curve PNG of a run: the objective's loss per epoch (left) and the evaluation pairs' R@1 of the three
    settings (right), the kept epoch marked."""
    from matplotlib.figure import Figure

    from darkside.atomic import atomic_path

    epochs = [e["epoch"] for e in history]
    fig = Figure(figsize=(8, 3.2), dpi=100)
    loss, recall = fig.subplots(1, 2)
    loss.plot(epochs, [e["loss"] for e in history], "o-", ms=2)
    loss.set(xlabel="epoch", ylabel="loss (mean per step)")
    for mode in ("A->B", "B->A", "A<->B"):
        recall.plot(epochs, [100 * e["R@1"][mode] for e in history], "-", label=mode)
    recall.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"kept (epoch {best_epoch})")
    recall.set(xlabel="epoch", ylabel="R@1 (%), evaluation pairs")
    recall.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def train_daco(dataset_dir: str | Path, translations: str | Path | None, backbone: BackboneSpec, settings: DacoSettings,
               normalisation: Normalisation, out_dir: str | Path, seed: int, device: str = "cpu") -> Path:
    """Train on a prepared ``cross_domain`` pair set; write ``model.pt`` (the best epoch's state dict and its
    settings), ``training_log.json`` and ``training_curve.png`` under ``out_dir``; return the model's path."""
    s, root, out = settings, Path(dataset_dir), Path(out_dir)
    s.check("daco learner")
    objective_type = objective_class(s.objective_name)
    reads = objective_type.reads_translations()
    if reads and translations is None:
        raise DarksideError(f"daco: objective {s.objective_name!r} needs the translations of its training images")
    manifest = load_manifest(root)
    data = _pairs(manifest, load_groundtruth(root, manifest), root,
                  Path(translations) if reads and translations is not None else None)
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
    images = [image_tensor(p) for p in data.train]
    translated = [image_tensor(p) for p in data.translated]
    val_a, val_b = eval_inputs(data.val_a, s, norm), eval_inputs(data.val_b, s, norm)  # read once, not per epoch
    net = build_daco_net(backbone, s.hidden_dim, seed, s.pooling).to(device)
    ((pool_kind, pool_settings),) = s.pooling.items()
    if pool_kind == "netvlad":  # centres from the untrained trunk, before the objective copies the network (MoCo)
        init_netvlad(net, [eval_input(x, s, norm) for x in images[: pool_settings.init_images]], pool_settings, seed,
                     device)
    objective = build_objective(s.objective, net, len(data.train)).to(device)
    opt = torch.optim.Adam([*net.parameters(), *objective.trainable()], lr=s.lr, weight_decay=s.weight_decay)
    rng = np.random.default_rng(seed)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"mean": -1.0}
    best_state: dict[str, torch.Tensor] = {}
    start = 0
    ckpt = load_checkpoint(ckpt_path, config)
    if ckpt is not None:
        net.load_state_dict(ckpt["net"])
        objective.load_state_dict(ckpt["objective"])
        opt.load_state_dict(ckpt["optimizer"])
        set_rng_states(ckpt["rng"], rng)
        history, best, best_state, start = ckpt["history"], ckpt["best"], ckpt["best_state"], int(ckpt["epoch"])
        log.info("daco: resuming after epoch %d of %d", start, epochs)
    sources = {"o1": images, "o2": images, "g1": translated, "g2": translated}
    with preemptible():
        for epoch in range(start, epochs):
            t0, losses = time.perf_counter(), []
            net.train()
            order = rng.permutation(len(images))
            for step in range(steps_per_epoch):
                idx = order[step * s.batch_size:(step + 1) * s.batch_size]
                # the views in a fixed order (o1, o2, g1, g2), each image's drawn in turn: a seeded run repeats
                views = {v: simclr_views([sources[v][i] for i in idx], s, norm, rng).to(device)
                         for v in VIEWS if v in objective_type.views}
                batch = Views(index=torch.as_tensor(idx, dtype=torch.long), **views)
                loss = objective.loss(net, batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                objective.after_step(net, batch)
                losses.append(float(loss.detach()))
            score = evaluate_pairs(net, val_a, val_b, device)
            entry = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "R@1": score,
                     "seconds": round(time.perf_counter() - t0, 3)}
            history.append(entry)
            if score["mean"] > best["mean"]:
                best = {"epoch": epoch + 1, "mean": score["mean"]}
                best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            log.info("%s epoch %d/%d: loss %.4f, R@1 A->B %.1f B->A %.1f A<->B %.1f (best epoch %d)",
                     s.objective_name, epoch + 1, epochs, entry["loss"], 100 * score["A->B"], 100 * score["B->A"],
                     100 * score["A<->B"], best["epoch"])
            save_checkpoint(ckpt_path, config, {"net": net.state_dict(), "objective": objective.state_dict(),
                                                "optimizer": opt.state_dict(), "rng": rng_states(rng),
                                                "history": history, "best": best, "best_state": best_state,
                                                "epoch": epoch + 1})
    model = save_torch(out / "model.pt", {"config": config, "state_dict": best_state, "best": best})
    atomic_write_json(out / "training_log.json", {"config": config, "epochs": history, "best": best,
                                                  "selection": "best mean R@1 of A->B, B->A, A<->B on the "
                                                               "evaluation pairs (DaCo's rule)"})
    write_daco_curve(history, int(best["epoch"]), out / CURVE, f"{s.objective_name} on {manifest.name}")
    ckpt_path.unlink(missing_ok=True)
    return model
