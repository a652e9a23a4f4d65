"""Multi-scale GeM descriptors of image lists and datasets, written to HDF5 (SPEC §7).

Per image (cirtorch / gandtr order): load; crop queries to their box and shrink by the factor
the full image would get; shrink to max side ``image_size`` (PIL thumbnail, Lanczos); CLAHE
if enabled (after resizing); ImageNet mean/std. Then for each scale s: bilinear resize of
the tensor (align_corners False), forward, unit GeM vector f_s; combine
v = (mean_s f_s^p)^(1/p) with the network's GeM p; L2. Whitening (if any) and L2 again.

:func:`extract_descriptors` batches images of equal preprocessed size (nothing is padded);
:func:`extract_descriptors_reference` is the per-image fp32 loop it must reproduce.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from darkside.config import BackboneSpec, ExtractSettings
from darkside.data.images import load_rgb
from darkside.data.manifest import GroundTruth, load_groundtruth, load_manifest
from darkside.data.photometric import ClaheSettings, pil_to_float, resize_max_side
from darkside.embed.network import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    EmbeddingNet,
    build_embedding_net,
    load_model,
    save_model,
)
from darkside.embed.whitening import apply_whitening, learn_whitening, load_whitening, save_whitening
from darkside.errors import DarksideError, ImageError
from darkside.extract.hdf5 import DescriptorSet, write_descriptors
from darkside.gan.translator import Translator, translate_image
from darkside.hashing import sha256_file
from darkside.training import resolve_device

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class TranslatedImage:
    """An image file translated when it is loaded (translation at test time: night images to day before the
    network sees them), at its own resolution, so query boxes keep their coordinates."""

    path: Path
    translator: Translator

    def load(self) -> Image.Image:
        return translate_image(self.translator, self.path)

    def __str__(self) -> str:
        return f"{self.path} (translated)"


ImageLike = str | os.PathLike[str] | Image.Image | TranslatedImage
BBox = tuple[float, float, float, float]
T = TypeVar("T")
R = TypeVar("R")

_MEAN = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)


# ----------------------------------------------------------------------------------- preprocessing

def load_image(item: ImageLike) -> Image.Image:
    """A PIL image as RGB (paths through :func:`load_rgb`: one-line ImageError naming the file)."""
    if isinstance(item, Image.Image):
        return item if item.mode == "RGB" else item.convert("RGB")
    if isinstance(item, TranslatedImage):
        return item.load()
    return load_rgb(item)


def normalize(rgb: np.ndarray) -> torch.Tensor:
    """float32 HxWx3 RGB in [0, 1] -> (3, H, W) tensor normalised with ImageNet mean/std."""
    t = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)
    return (t - _MEAN) / _STD


def prepare_image(img: Image.Image, image_size: int, clahe: ClaheSettings,
                  bbox: BBox | None = None) -> torch.Tensor:
    """Crop (queries), shrink to ``image_size``, CLAHE, normalise: the network input (3, H, W).

    A query crop is shrunk by ``image_size * crop_long / full_long``, i.e. by the same factor
    as its full image, as cirtorch does (never enlarged; PIL rounds the box coordinates).
    """
    size: float = image_size
    if bbox is not None:
        full_long = max(img.size)
        img = img.crop(tuple(bbox))
        size = image_size * max(img.size) / full_long
    img = resize_max_side(img, size)
    return normalize(clahe.apply(pil_to_float(img)))


# ----------------------------------------------------------------------------------- multi-scale

def multiscale_descriptor(net: EmbeddingNet, x: torch.Tensor, scales: Sequence[float],
                          p: float | None = None) -> torch.Tensor:
    """Descriptors (B, D) float32 of a batch x (B, 3, H, W): GeM power mean over scales, then L2.

    Scales at which the image would be smaller than the trunk accepts (``net.min_side``, e.g.
    16 px for VGG16) are left out of the mean; an image already too small at scale 1 is first
    enlarged (bilinear) to that side. Neither happens at the paper's sizes (1024 px).
    """
    p = net.multiscale_p if p is None else float(p)
    min_side = int(getattr(net, "min_side", 1))
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if min(h, w) < min_side:
        f = min_side / min(h, w)
        h, w = max(min_side, math.ceil(h * f)), max(min_side, math.ceil(w * f))
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    # interpolate(scale_factor=s) produces floor(side * s) pixels
    if not scales:
        raise DarksideError("extract.scales: at least one scale is needed")
    usable = [s for s in scales if s == 1.0 or min(math.floor(h * s), math.floor(w * s)) >= min_side] or [1.0]
    acc: torch.Tensor | None = None
    for s in usable:
        xs = x if s == 1.0 else F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
        f_s = net(xs).float().pow(p)
        acc = f_s if acc is None else acc + f_s
    assert acc is not None
    v = (acc / len(usable)).pow(1.0 / p)
    return v / torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(1e-12)


@contextlib.contextmanager
def _eval_mode(net: torch.nn.Module) -> Iterator[None]:
    """Eval mode (and no grad) for the duration; restores every module's own flag afterwards.

    Restoring per module (not ``net.train(was_training)``) keeps a caller's frozen BatchNorm
    layers frozen when extraction runs inside a training loop (hard-negative mining).
    """
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in modes:
            m.training = mode


def _skip(exc: ImageError, settings: ExtractSettings, i: int, skipped: list[int] | None) -> None:
    """Re-raise an unreadable image's error, or (``on_corrupt: skip``) log it and record its index."""
    if settings.on_corrupt == "error":
        raise exc
    log.warning("skipping %s", exc)
    if skipped is not None:
        skipped.append(i)


def _check_bboxes(images: Sequence[ImageLike], bboxes: Sequence[BBox | None] | None) -> list[BBox | None]:
    if bboxes is None:
        return [None] * len(images)
    if len(bboxes) != len(images):
        raise DarksideError(f"extract: {len(bboxes)} bounding boxes for {len(images)} images")
    return list(bboxes)


def _name(item: ImageLike, i: int) -> str:
    return f"image #{i}" if isinstance(item, Image.Image) else str(item)


def extract_descriptors_reference(net: EmbeddingNet, images: Sequence[ImageLike], settings: ExtractSettings,
                                  clahe: ClaheSettings, device: str | torch.device = "cpu",
                                  bboxes: Sequence[BBox | None] | None = None, progress: bool = False,
                                  skipped: list[int] | None = None) -> np.ndarray:
    """The cirtorch way: one image at a time, fp32, no buckets (contract of :func:`extract_descriptors`)."""
    dev = resolve_device(device)
    boxes = _check_bboxes(images, bboxes)
    net.to(dev)
    rows: list[np.ndarray] = []
    with _eval_mode(net):
        for i, item in enumerate(tqdm(images, desc="extract (reference)", disable=not progress)):
            try:
                img = load_image(item)
            except ImageError as exc:
                _skip(exc, settings, i, skipped)
                continue
            x = prepare_image(img, settings.image_size, clahe, boxes[i])[None].to(dev)
            rows.append(multiscale_descriptor(net, x, settings.scales).cpu().numpy()[0])
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, net.dim), np.float32)


def _prefetch(fn: Callable[[T], R], items: Iterable[T], workers: int, depth: int) -> Iterator[Future[R] | R]:
    """``fn`` over items in order, at most ``depth`` in flight on ``workers`` threads (0: inline).

    Threads help because PIL decoding/resizing and OpenCV release the GIL; the bounded queue
    keeps memory independent of the number of images.
    """
    if workers <= 0:
        for it in items:
            yield fn(it)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: collections.deque[Future[R]] = collections.deque()
        for it in items:
            pending.append(pool.submit(fn, it))
            if len(pending) >= depth:
                yield pending.popleft()
        while pending:
            yield pending.popleft()


PRECISIONS = ("auto", "fp32", "bf16")


def _autocast_dtype() -> torch.dtype:
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def extract_descriptors(net: EmbeddingNet, images: Sequence[ImageLike], settings: ExtractSettings,
                        clahe: ClaheSettings, device: str | torch.device = "cpu",
                        bboxes: Sequence[BBox | None] | None = None, progress: bool = True,
                        skipped: list[int] | None = None, num_workers: int = 0,
                        precision: str = "auto") -> np.ndarray:
    """Multi-scale descriptors (N_kept, dim) float32 of ``images`` in input order, batched by size.

    Images that preprocess to the same H x W go into one batch (up to ``settings.batch_size``);
    at most a few batches' worth of images wait in their buckets (the fullest is flushed
    first), so memory is bounded. With ``settings.on_corrupt == "skip"`` an unreadable image
    is left out of the result, logged, and its input index appended to ``skipped``.
    ``precision``: ``auto`` = autocast (bf16, else fp16) on CUDA, fp32 on CPU; ``fp32`` forces fp32
    everywhere; ``bf16`` autocasts to bf16 on any device, the CPU included (oneDNN's bf16 kernels on CPUs
    with AVX512-BF16/AMX; at the paper's sizes on a 2-core CPU 1.7x (VGG16) and 1.5x (ResNet-101) the
    per-image fp32 loop, unit descriptors within 7e-4 of fp32's: benchmarks/bench_extraction.py; no
    preset uses it by default, since it moves the paper's numbers). The network computes in channels-last
    memory format on every device. The result equals :func:`extract_descriptors_reference` (allclose,
    atol 1e-5) in fp32. ``num_workers`` threads decode and preprocess ahead.
    """
    if precision not in PRECISIONS:
        raise DarksideError(f"extract: precision {precision!r} is not one of {list(PRECISIONS)}")
    dev = resolve_device(device)
    boxes = _check_bboxes(images, bboxes)
    mixed = (precision == "auto" and dev.type == "cuda") or precision == "bf16"
    dtype = torch.bfloat16 if precision == "bf16" else (_autocast_dtype() if mixed else None)
    net.to(dev)
    p = net.multiscale_p
    out = np.full((len(images), net.dim), np.nan, dtype=np.float32)
    done = np.zeros(len(images), dtype=bool)
    bsz = settings.batch_size
    max_pending = 4 * bsz

    def prepare(i: int) -> tuple[int, torch.Tensor | ImageError]:
        try:
            img = load_image(images[i])
        except ImageError as exc:
            return i, exc
        return i, prepare_image(img, settings.image_size, clahe, boxes[i])

    def flush(items: list[tuple[int, torch.Tensor]]) -> None:
        idx = [i for i, _ in items]
        x = torch.stack([t for _, t in items])
        x = (x.pin_memory() if dev.type == "cuda" else x).to(dev, non_blocking=True)
        with torch.autocast(device_type=dev.type, dtype=dtype) if mixed else contextlib.nullcontext():
            v = multiscale_descriptor(net, x, settings.scales, p)
        out[idx] = v.float().cpu().numpy()
        done[idx] = True
        bar.update(len(idx))

    buckets: dict[tuple[int, int], list[tuple[int, torch.Tensor]]] = {}
    n_pending = 0
    with _eval_mode(net), tqdm(total=len(images), desc="extract", disable=not progress) as bar:
        for res in _prefetch(prepare, range(len(images)), num_workers, depth=max(2, 2 * num_workers)):
            i, t = res.result() if isinstance(res, Future) else res
            if isinstance(t, ImageError):
                _skip(t, settings, i, skipped)
                bar.update(1)
                continue
            key = (int(t.shape[1]), int(t.shape[2]))
            bucket = buckets.setdefault(key, [])
            bucket.append((i, t))
            n_pending += 1
            if len(bucket) >= bsz:
                flush(buckets.pop(key))
                n_pending -= bsz
            elif n_pending > max_pending:
                # too many sizes in flight: run the fullest partial bucket to bound memory
                key = max(buckets, key=lambda k: len(buckets[k]))
                n_pending -= len(buckets[key])
                flush(buckets.pop(key))
        for key in list(buckets):
            flush(buckets.pop(key))
    return out[done]


# ----------------------------------------------------------------------------------- datasets

def _query_boxes(gt: GroundTruth) -> bool:
    """Whether a protocol extracts separate (cropped) query descriptors."""
    return gt.protocol == "revisited" or any(q.bbox is not None for q in gt.queries)


def _settings_attr(settings: ExtractSettings, clahe: ClaheSettings, **more: Any) -> dict[str, Any]:
    d: dict[str, Any] = {k: (list(v) if isinstance(v, tuple) else v)
                         for k, v in dataclasses.asdict(settings).items()}
    d["clahe"] = dataclasses.asdict(clahe)
    d.update(more)
    return d


def extract_dataset(model_path: str | os.PathLike[str], dataset_dir: str | os.PathLike[str],
                    out_h5: str | os.PathLike[str], settings: ExtractSettings, clahe: ClaheSettings | None = None,
                    whitening_path: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu",
                    preset_name: str = "", on_corrupt: str | None = None, whitening_dims: int | None = None,
                    progress: bool = True, num_workers: int = 0, night_to_day: Translator | None = None,
                    night_to_day_file: str | os.PathLike[str] | None = None, local: Any = None) -> Path:
    """Descriptors of every manifest image (+ cropped queries of box protocols) -> HDF5; return the path.

    ``night_to_day``: translation at test time; every image of the ``night`` domain (the oracle label, as the
    paper did) goes through it before the network, and the file records ``night_to_day_file``.

    ``/descriptors`` are final: multi-scale GeM, whitened (``whitening_path``, keeping ``whitening_dims``)
    and L2-normalised. ``clahe`` None: as the model file records (the model is the authority).
    Skipped images (``on_corrupt="skip"``, overriding ``settings.on_corrupt`` when given) are
    left out of ``image_ids`` / ``descriptors`` (and the queries group), counted in the
    attributes ``skipped_images`` / ``skipped_ids``. ``local`` (:class:`~darkside.embed.how.LocalExtractSettings`):
    the local descriptors of the same images too (``/local``, ``/queries/local``; a HOW network).
    """
    if on_corrupt is not None:
        settings = dataclasses.replace(settings, on_corrupt=on_corrupt)
    dataset_dir = Path(dataset_dir)
    manifest = load_manifest(dataset_dir, check_files=False)  # missing files: our ImageError / skip path
    gt = load_groundtruth(dataset_dir, manifest) if (dataset_dir / "groundtruth.json").is_file() else None
    whitening = load_whitening(whitening_path) if whitening_path is not None else None
    net = load_model(model_path)
    clahe = clahe or ClaheSettings.of(net.preprocessing["clahe"])

    def source(record: Any) -> ImageLike:
        path = manifest.image_path(record)
        return TranslatedImage(path, night_to_day) if night_to_day is not None and record.domain == "night" else path

    paths = [source(r) for r in manifest.records]
    skipped: list[int] = []
    log.info("extracting %d images of %s", len(paths), manifest.name)
    desc = extract_descriptors(net, paths, settings, clahe, device, progress=progress, skipped=skipped,
                               num_workers=num_workers)
    skipped_set = set(skipped)
    ids = [r.image_id for i, r in enumerate(manifest.records) if i not in skipped_set]
    skipped_ids = [manifest.records[i].image_id for i in skipped]

    qids: list[str] | None = None
    qdesc: np.ndarray | None = None
    if gt is not None and _query_boxes(gt):
        qrecords = [manifest.records[manifest.index(q.query)] for q in gt.queries]
        qskipped: list[int] = []
        log.info("extracting %d cropped queries of %s", len(qrecords), manifest.name)
        qdesc = extract_descriptors(net, [source(r) for r in qrecords], settings, clahe, device,
                                    bboxes=[q.bbox for q in gt.queries], progress=progress, skipped=qskipped,
                                    num_workers=num_workers)
        qskipped_set = set(qskipped)
        qids = [q.query for i, q in enumerate(gt.queries) if i not in qskipped_set]
        skipped_ids += [gt.queries[i].query for i in qskipped if gt.queries[i].query not in skipped_ids]

    local_sets: dict[str, Any] = {}
    if local is not None:
        from darkside.extract.local_descriptors import extract_local
        kept = [source(r) for i, r in enumerate(manifest.records) if i not in skipped_set]
        log.info("local features of %d images of %s", len(kept), manifest.name)
        local_sets["local"] = extract_local(net, kept, settings.image_size, clahe, local, device, progress=progress,
                                            batch_size=settings.batch_size)
        if qids is not None:
            qkept = [(source(manifest.records[manifest.index(q.query)]), q.bbox) for i, q in enumerate(gt.queries)
                     if i not in qskipped_set]
            local_sets["query_local"] = extract_local(net, [s for s, _ in qkept], settings.image_size, clahe, local,
                                                      device, bboxes=[b for _, b in qkept], progress=progress,
                                                      batch_size=settings.batch_size)
    if whitening is not None:
        desc = apply_whitening(desc, whitening, whitening_dims).astype(np.float32)
        if qdesc is not None:
            qdesc = apply_whitening(qdesc, whitening, whitening_dims).astype(np.float32)
    attrs = {
        "model": str(model_path), "model_sha256": sha256_file(model_path), "preset": preset_name,
        "dataset": manifest.name,
        "settings": _settings_attr(settings, clahe, gem_p=net.multiscale_p,
                                   whitening=str(whitening_path) if whitening_path is not None else None,
                                   whitening_sha256=sha256_file(whitening_path) if whitening_path else None,
                                   whitening_dims=whitening_dims,
                                   night_to_day=str(night_to_day_file) if night_to_day_file else None,
                                   night_to_day_sha256=sha256_file(night_to_day_file) if night_to_day_file else None,
                                   **({"local": dataclasses.asdict(local)} if local is not None else {})),
        "skipped_images": len(skipped_ids), "skipped_ids": skipped_ids,
    }
    if skipped_ids:
        log.warning("%s: %d image(s) skipped: %s", manifest.name, len(skipped_ids),
                    ", ".join(skipped_ids[:10]))
    return write_descriptors(out_h5, DescriptorSet(ids, desc, qids, qdesc, attrs, **local_sets))


def fit_whitening(model_path: str | os.PathLike[str], dataset_dir: str | os.PathLike[str],
                  out_npz: str | os.PathLike[str], settings: ExtractSettings, clahe: ClaheSettings | None = None,
                  device: str | torch.device = "cpu", split: str = "whiten", progress: bool = True,
                  num_workers: int = 0, pca_dims: int | None = None) -> Path:
    """Learn Lw on the ``split`` images of a dataset and its ``pairs[split]``; write the ``.npz``, return it.
    Descriptors longer than ``pca_dims`` are first reduced to it by PCA (:func:`learn_whitening`).

    ``settings.image_size`` is the whitening image size (params ``whitening.image_size``; pass
    ``dataclasses.replace(extract, image_size=...)``). Pairs touching a skipped image are dropped.
    ``clahe`` None: as the model file records.
    CLAHE is applied once before the multi-scale resize, exactly as at evaluation time (gandtr's
    whitening stage applies it per scale; see the reference notes §1.5).
    """
    dataset_dir = Path(dataset_dir)
    manifest = load_manifest(dataset_dir, check_files=False)
    gt = load_groundtruth(dataset_dir, manifest)
    records = manifest.select(split=split)
    if not records:
        raise DarksideError(f"{dataset_dir / 'manifest.csv'}: no images in split {split!r}")
    if not gt.pairs.get(split):
        raise DarksideError(f"{dataset_dir / 'groundtruth.json'}: pairs.{split}: missing or empty")
    pos = {r.image_id: i for i, r in enumerate(records)}
    for a, b in gt.pairs[split]:
        for x in (a, b):
            if x not in pos:
                raise DarksideError(f"{dataset_dir / 'groundtruth.json'}: pairs.{split}: image {x!r} "
                                    f"is not in split {split!r}")
    net = load_model(model_path)
    clahe = clahe or ClaheSettings.of(net.preprocessing["clahe"])
    skipped: list[int] = []
    X = extract_descriptors(net, [manifest.image_path(r) for r in records], settings, clahe, device,
                            progress=progress, skipped=skipped, num_workers=num_workers)
    # row of each kept image in X
    skipped_set = set(skipped)
    kept = [i for i in range(len(records)) if i not in skipped_set]
    row = {records[i].image_id: k for k, i in enumerate(kept)}
    pairs = [(row[a], row[b]) for a, b in gt.pairs[split] if a in row and b in row]
    if not pairs:
        raise DarksideError(f"{dataset_dir}: no whitening pair left after skipping unreadable images")
    w = learn_whitening(X, [a for a, _ in pairs], [b for _, b in pairs], pca_dims=pca_dims)
    log.info("whitening learned on %d images, %d pairs (%d dims)", X.shape[0], len(pairs), w.P.shape[0])
    return save_whitening(out_npz, w)


def init_model(spec: BackboneSpec, out_path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Build the off-the-shelf network of ``spec`` and save it; return the path."""
    net = build_embedding_net(spec, seed=seed)
    return save_model(net, out_path, extra={"kind": "off-the-shelf", "seed": int(seed), "epoch": None})
