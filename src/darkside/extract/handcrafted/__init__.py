"""The hand-crafted baselines of DaCo's tables: SIFT of each evaluation image, then one encoding per module here,
behind a tiny registry (``matches``: the local features kept, ranked by matching; ``bow``: a bag of visual words;
``vlad``: VLAD). DaCo's reverted detour (its ``sift.py``, ``bow.py``, ``vlad.py``) is the reference: every image
resized to a height of 256 pixels (aspect kept), greyscale, OpenCV's SIFT with its defaults (every keypoint,
contrast threshold 0.04), and the encodings fitted on the evaluation images themselves (no training: these
baselines learn nothing from the training pairs).

A method is ``daco.handcrafted.<name>``: its SIFT settings and one ``encoding`` entry (an encoding's name -> its
settings). ``darkside extract-handcrafted --method <name>`` writes the evaluation pairs' file
(``results/descriptors/<name>/<dataset>.h5``, A images then B, as :mod:`darkside.extract.daco_descriptors`);
``darkside score`` ranks it by its global rows, or with ``--matches`` by its ``/local`` features
(:mod:`darkside.evaluate.matches`). Adding an encoding: one module here and a method entry naming it.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from darkside.data.images import load_rgb
from darkside.data.manifest import load_groundtruth, load_manifest
from darkside.errors import DarksideError
from darkside.extract.hdf5 import DescriptorSet, LocalFeatures, write_descriptors
from darkside.settings import setting, to_plain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SiftSettings:
    """The SIFT every hand-crafted method starts from (DaCo: OpenCV's defaults on images 256 pixels high)."""

    height: int = setting("images resized to this height, aspect kept, before detection (DaCo 256)", ge=16)
    contrast_threshold: float = setting("DoG contrast threshold (OpenCV's default 0.04)", gt=0)
    max_keypoints: int = setting("strongest keypoints kept (0: every one, OpenCV's default and DaCo's)", ge=0)


class Encoding:
    """What turns the SIFT of the evaluation images into what the score reads. ``encode`` gets every image's
    L2-normalised descriptors (A images then B) and returns the (N, D) global rows, L2-normalised; an encoding
    with ``keeps_local`` also writes the descriptors as the file's ``/local`` group (ranked with ``score
    --matches``)."""

    name: ClassVar[str]
    Settings: ClassVar[type]
    keeps_local: ClassVar[bool] = False

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def encode(self, per_image: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError


#: encoding name -> its class, filled by the modules of this package (imported below) and by plugins
ENCODINGS: dict[str, type[Encoding]] = {}


def register_encoding(cls: type[Encoding]) -> type[Encoding]:
    if cls.name in ENCODINGS and ENCODINGS[cls.name] is not cls:
        raise DarksideError(f"encoding {cls.name!r} is registered twice")
    ENCODINGS[cls.name] = cls
    return cls


def encoding_settings() -> dict[str, type]:
    """encoding name -> its settings class (the schema of a method's ``encoding``)."""
    return {name: cls.Settings for name, cls in ENCODINGS.items()}


@dataclass(frozen=True)
class HandcraftedMethod:
    """``daco.handcrafted.<name>``: a hand-crafted baseline of DaCo's tables."""

    sift: SiftSettings = setting()
    encoding: dict[str, Any] = setting("one entry: the encoding (a module of darkside.extract.handcrafted: "
                                       "matches, bow, vlad) -> its settings", keyed=encoding_settings,
                                       min_items=1, max_items=1)

    def build(self) -> Encoding:
        ((name, settings),) = self.encoding.items()
        return ENCODINGS[name](settings)


def sift_descriptors(grey: np.ndarray, s: SiftSettings) -> np.ndarray:
    """(n, 128) float32 L2-normalised SIFT descriptors of a uint8 grey image resized to ``s.height`` pixels high;
    with ``max_keypoints`` the strongest by response (ties: OpenCV's order)."""
    h, w = grey.shape
    img = cv2.resize(grey, (max(1, round(w * s.height / h)), s.height), interpolation=cv2.INTER_LINEAR)
    kps, desc = cv2.SIFT_create(contrastThreshold=s.contrast_threshold).detectAndCompute(img, None)
    if desc is None or not kps:
        return np.zeros((0, 128), np.float32)
    if s.max_keypoints:
        desc = desc[np.argsort([-k.response for k in kps], kind="stable")[: s.max_keypoints]]
    d = desc.astype(np.float32)
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)


def every_descriptor(per_image: list[np.ndarray]) -> np.ndarray:
    """The descriptors of every image in one (sum n_i, 128) array (a vocabulary's k-means input)."""
    return np.concatenate([np.zeros((0, 128), np.float32), *per_image])


def l2_rows(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (an all-zero row stays zero)."""
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def extract_handcrafted(name: str, method: HandcraftedMethod, dataset_dir: str | Path, out_h5: str | Path,
                        preset: str | None = None,
                        progress: Callable[[int, int], None] | None = None) -> Path:
    """Write method ``name``'s file for the evaluation pairs of a ``cross_domain`` set (A images, then B); return
    its path."""
    root = Path(dataset_dir)
    manifest = load_manifest(root)
    gt = load_groundtruth(root, manifest)
    if gt.protocol != "cross_domain":
        raise DarksideError(f"{root}: protocol {gt.protocol!r}; the hand-crafted baselines are for a cross_domain "
                            "pair set")
    ids = gt.evaluation_pair_ids()
    log.info("%s: SIFT of %d images (%d evaluation pairs) of %s", name, len(ids), len(ids) // 2, manifest.name)
    per_image = []
    for k, i in enumerate(ids):
        rgb = np.asarray(load_rgb(manifest.image_path(manifest.records[manifest.index(i)])))
        per_image.append(sift_descriptors(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), method.sift))
        if progress is not None:
            progress(k + 1, len(ids))
    encoding = method.build()
    rows = encoding.encode(per_image)
    local = (LocalFeatures.concat([(d, np.ones(len(d), np.float32)) for d in per_image], 128)
             if encoding.keeps_local else None)
    attrs = {"model": name, "dataset": manifest.name, "settings": to_plain(method), "skipped_images": 0,
             "skipped_ids": [], "keypoints": [len(d) for d in per_image],
             **({"preset": preset} if preset is not None else {})}  # no model file: no model_sha256
    return write_descriptors(out_h5, DescriptorSet(ids, rows, attrs=attrs, local=local))


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
