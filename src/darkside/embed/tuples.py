"""Training tuples (anchor, positive, hard negatives) from a manifest, one set per epoch.

Order of operations per image, as in gandtr (anchors-retrieval.md §1.5):
resize to max side -> (anchor only, if selected) frozen generator -> CLAHE (if the recipe says C)
-> ImageNet normalisation. Anchors are translated BEFORE mining, so both diverse-anchor mining and
hard-negative mining see the night version; positives and negatives are never translated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from darkside.data.images import load_rgb
from darkside.data.manifest import GroundTruth, Manifest
from darkside.data.photometric import clahe, resize_max_side
from darkside.embed.mining import diverse_anchors, hard_negatives, hash_selected
from darkside.errors import ManifestError
from darkside.gan.translator import Translator, ViewTranslator
from darkside.recipes import FinetuneSettings, Recipe

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


@dataclass(frozen=True)
class TrainingTuple:
    """One tuple: image ids, and whether the anchor goes through the generator."""

    anchor: str
    positive: str
    negatives: tuple[str, ...]
    translate: bool = False

    @property
    def labels(self) -> torch.Tensor:
        """1 for the positive, 0 per negative (the anchor itself carries no label)."""
        return torch.tensor([1] + [0] * len(self.negatives), dtype=torch.float32)


def split_pairs(gt: GroundTruth, split: str) -> list[tuple[str, str]]:
    """(anchor, positive) pairs of ``split`` (the day pairs of the SfM 3D models)."""
    return list(gt.pairs.get(split, []))


def split_day_night_pairs(gt: GroundTruth, manifest: Manifest, split: str) -> list[tuple[str, str]]:
    """The N/D (night anchor, day positive) pairs of ``split``.

    The N/D pairs are one flat list in the ground truth; a pair belongs to the split of its
    night anchor, so validation never sees training N/D pairs and vice versa.
    """
    return [(a, b) for a, b in gt.day_night_pairs if manifest.records[manifest.index(a)].split == split]


def candidate_pairs(pairs: Sequence[tuple[str, str]], night_pairs: Sequence[tuple[str, str]], count: int,
                    night_fraction: float, rng: np.random.Generator) -> tuple[list[tuple[str, str]], np.ndarray]:
    """One epoch's anchor candidates: ``count`` pairs of which ``round(night_fraction * count)`` are N/D.

    Day pairs are a random subset (cirtorch draws anchors without replacement); N/D pairs are
    drawn without replacement too while there are enough, else with replacement, so the night
    share of an epoch is the recipe's whatever the size of the N/D set (the paper keeps 25%
    night anchors for SfM N/D as for translation). Returns the pairs and a mask of the N/D ones.
    """
    n_night = round(night_fraction * count) if night_pairs else 0
    perm = rng.permutation(len(pairs))[: max(0, count - n_night)]
    night = rng.choice(len(night_pairs), size=n_night, replace=n_night > len(night_pairs)) if n_night else []
    chosen = [pairs[i] for i in perm] + [night_pairs[i] for i in night]
    return chosen, np.array([False] * len(perm) + [True] * n_night, dtype=bool)


def image_name(record_path: str) -> str:
    """Base name without extension - what gandtr hashes (the SfM cid)."""
    return Path(record_path).stem


def translation_flags(anchor_ids: Sequence[str], manifest: Manifest, recipe: Recipe,
                      rng: np.random.Generator) -> np.ndarray:
    """Which anchors go through the generator: the hashed fixed subset or a fresh per-epoch draw."""
    if not recipe.translates:
        return np.zeros(len(anchor_ids), dtype=bool)
    if recipe.translate_selection == "hash":
        names = [image_name(manifest.records[manifest.index(a)].path) for a in anchor_ids]
        return np.array([hash_selected(n, recipe.translate_fraction) for n in names], dtype=bool)
    return rng.random(len(anchor_ids)) < recipe.translate_fraction


class ImagePipeline:
    """Loads, resizes, (translates), CLAHEs and normalises images; caches what is deterministic.

    With ``cache`` the resized images are kept in memory as uint8 and the finished tensors too,
    translated anchors included (the mini datasets are small; on the paper preset 22,000 pool images
    per epoch would not fit, so the cache is a setting). Caching a translation is exact: every
    translator is a function of its input alone (frozen, eval mode; DRIT++ and MDUIT draw their night
    attribute from a generator seeded by the anchor's pixels, ``gan.family.input_seeds``; the oracle
    renders the view's own night), so an anchor translated again, in the same epoch's mining and
    training or in a later epoch, would give the same bytes. A translated anchor costs a generator
    forward at the training size; without the cache every GAN recipe of the mini suite paid ~1 s of
    its ~3 s epoch for translations it had made before.
    """

    def __init__(self, manifest: Manifest, image_size: int, clahe: tuple[float, int] | None,
                 translator: Translator | ViewTranslator | None, cache: bool) -> None:
        self.manifest = manifest
        self.image_size = image_size
        self.clahe = clahe
        self.translator = translator
        self.cache = cache
        self._rgb: dict[str, np.ndarray] = {}
        self._done: dict[tuple[str, bool], torch.Tensor] = {}

    def rgb(self, image_id: str) -> np.ndarray:
        """Resized RGB float32 (H, W, 3) in [0, 1]."""
        arr = self._rgb.get(image_id)
        if arr is None:
            record = self.manifest.records[self.manifest.index(image_id)]
            pil = resize_max_side(load_rgb(self.manifest.image_path(record)), self.image_size)
            arr = np.asarray(pil, dtype=np.uint8)
            if self.cache:
                self._rgb[image_id] = arr
        return arr.astype(np.float32) / 255.0

    def tensor(self, image_id: str, translate: bool = False) -> torch.Tensor:
        """The network input (3, H, W): ImageNet-normalised, CLAHE'd where the recipe says so."""
        translate = bool(translate)
        done = self._done.get((image_id, translate))
        if done is not None:
            return done
        rgb = self.rgb(image_id)
        if translate:
            if self.translator is None:
                raise ValueError("translate requested but the recipe has no generator")
            if isinstance(self.translator, ViewTranslator):
                rgb = self.translator.translate_view(self.manifest, image_id, self.image_size)
            else:
                x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0)
                y = self.translator.translate(x)[0].detach().cpu().clamp(0.0, 1.0)
                rgb = np.ascontiguousarray(y.permute(1, 2, 0).numpy(), dtype=np.float32)
        if self.clahe is not None:
            clip, grid = self.clahe
            rgb = np.asarray(clahe(rgb, clip, (grid, grid)), dtype=np.float32)
        t = (torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1) - IMAGENET_MEAN) / IMAGENET_STD
        if self.cache:
            self._done[image_id, translate] = t
        return t

    def tuple_tensors(self, t: TrainingTuple) -> list[torch.Tensor]:
        """Anchor (translated if selected), positive, negatives."""
        return [self.tensor(t.anchor, t.translate), self.tensor(t.positive),
                *(self.tensor(n) for n in t.negatives)]


def embed_tensors(net: nn.Module, tensors: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """(K, D) descriptors of images of possibly different sizes, same-size ones batched together.

    BatchNorm is frozen, so a batched forward gives each image the same descriptor as a
    forward on its own (cirtorch's one-image-at-a-time loop), only faster.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault(tuple(t.shape), []).append(i)
    out: list[torch.Tensor | None] = [None] * len(tensors)
    for idx in groups.values():
        desc = net(torch.stack([tensors[i] for i in idx]).to(device))
        for k, i in enumerate(idx):
            out[i] = desc[k]
    return torch.stack(out)  # type: ignore[arg-type]


@torch.no_grad()
def describe(net: nn.Module, pipeline: ImagePipeline, ids: Sequence[str], translate: Sequence[bool],
             device: torch.device, batch_size: int) -> np.ndarray:
    """(N, D) float32 mining descriptors with the net in eval mode (the caller restores train mode)."""
    net.eval()
    chunks = []
    for s in range(0, len(ids), batch_size):
        chunk = zip(ids[s:s + batch_size], translate[s:s + batch_size], strict=True)
        tensors = [pipeline.tensor(i, bool(f)) for i, f in chunk]
        chunks.append(embed_tensors(net, tensors, device).float().cpu().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def epoch_tuples(net: nn.Module, pipeline: ImagePipeline, pairs: Sequence[tuple[str, str]],
                 split_ids: Sequence[str], recipe: Recipe, settings: FinetuneSettings,
                 rng: np.random.Generator, device: torch.device, all_pairs: bool = False,
                 progress: Callable[[str], None] | None = None,
                 night_pairs: Sequence[tuple[str, str]] = ()) -> list[TrainingTuple]:
    """The tuples of one epoch (``all_pairs``: validation - every pair, every image in the pool).

    ``night_pairs`` are the N/D pairs; a recipe with ``day_night_pairs`` draws
    ``day_night_fraction`` of its anchor candidates from them. Their night anchors are real
    night images and never go through the generator.

    Random draws happen in a fixed order (pair permutation, per-epoch translation draw, diverse
    picks, negative pool) from ``rng`` alone, so an epoch is a pure function of (seed, epoch,
    weights) - what makes an interrupted run resume to identical weights.
    """
    night_pairs = list(night_pairs) if recipe.day_night_pairs else []
    if not pairs and not night_pairs:
        raise ManifestError(f"{pipeline.manifest.root / 'groundtruth.json'}: no pairs for this split")
    manifest = pipeline.manifest
    cluster = {r.image_id: r.cluster for r in manifest.records}
    if all_pairs:
        cand_pairs = list(pairs) + night_pairs
        is_night = np.array([False] * len(pairs) + [True] * len(night_pairs), dtype=bool)
    else:
        count = settings.anchor_pool if recipe.diverse_anchors else settings.anchors_per_epoch
        cand_pairs, is_night = candidate_pairs(pairs, night_pairs, count, recipe.day_night_fraction, rng)
    cand_anchors = [a for a, _ in cand_pairs]
    flags = translation_flags(cand_anchors, manifest, recipe, rng) & ~is_night
    cand_desc = describe(net, pipeline, cand_anchors, flags, device, settings.mining_batch_size)
    pick = (diverse_anchors(cand_desc, settings.anchors_per_epoch, rng, settings.band)
            if recipe.diverse_anchors and not all_pairs else np.arange(len(cand_pairs)))
    if progress:
        progress(f"anchors: {len(pick)} of {len(cand_pairs)} candidates, {int(flags[pick].sum())} translated, "
                 f"{int(is_night[pick].sum())} N/D night anchors")
    size = min(settings.negative_pool, len(split_ids))
    pool = list(split_ids) if all_pairs else [split_ids[i] for i in rng.choice(len(split_ids), size, replace=False)]
    pool_desc = describe(net, pipeline, pool, [False] * len(pool), device, settings.mining_batch_size)
    anchors = [cand_anchors[i] for i in pick]
    # ranked on the model's device where it is not the CPU (there numpy's float64 ranking, bit for bit as before)
    negs = hard_negatives(cand_desc[pick], pool_desc, [cluster[a] for a in anchors],
                          [cluster[p] for p in pool], settings.negatives,
                          device=None if torch.device(device).type == "cpu" else device)
    return [TrainingTuple(anchor=anchors[k], positive=cand_pairs[i][1],
                          negatives=tuple(pool[j] for j in negs[k]), translate=bool(flags[i]))
            for k, i in enumerate(pick)]
