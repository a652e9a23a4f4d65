"""Local features for pose estimation (paradigms 2a/2b): keypoints and descriptors of every image of a dataset.

The extractors sit behind a tiny registry (``EXTRACTORS``, name -> function of a grey image and the settings), so a
learned extractor such as R2D2, which kapture's benchmark used, is one more entry. SIFT through OpenCV is the
default: no weights to download, and it runs on a laptop.

File layout (plain h5py)::

    /keypoints    float32 (sum N_i, 2)  pixel coordinates in the original image, OpenCV convention (the centre of
                                         the top-left pixel is (0, 0)), distortion NOT removed
    /descriptors  float32 (sum N_i, D)  rows L2-normalised (RootSIFT for SIFT, see ``root_sift``)
    /offsets      int64 (N + 1,)        image i owns rows offsets[i]:offsets[i+1]
    /image_ids    utf-8 strings (N,)    manifest order
    attrs: dataset, extractor, settings (JSON), darkside_version
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np

from darkside import __version__
from darkside.atomic import atomic_path
from darkside.data.images import load_rgb
from darkside.data.manifest import ImageRecord, Manifest
from darkside.errors import DarksideError
from darkside.settings import setting

EXTRACTORS: dict[str, Callable[[np.ndarray, LocalFeatureSettings], tuple[np.ndarray, np.ndarray]]] = {}


def _extractors() -> tuple[str, ...]:
    return tuple(EXTRACTORS)


@dataclass(frozen=True)
class LocalFeatureSettings:
    """``localize.features``: what the local-feature extraction reads."""

    extractor: str = setting("keypoint detector and descriptor (registry darkside.localize.features.EXTRACTORS)",
                             choices=_extractors)
    max_keypoints: int = setting("strongest keypoints kept per image (paper: kapture's R2D2 top 20,000)", ge=1)
    contrast_threshold: float = setting("SIFT's DoG contrast threshold (OpenCV's default 0.04; lower keeps the "
                                        "faint keypoints of night images)", gt=0)
    root_sift: bool = setting("L1-normalise and take the square root of SIFT descriptors (Arandjelovic & "
                              "Zisserman 2012): Hellinger matching, more robust to lighting")

    max_side: int | None = setting("images larger than this are shrunk before detection (null: full size, the "
                                   "paper's --max-size 9999)", ge=16, default=None)

def register_extractor(name: str) -> Callable:
    """Register ``fn(grey uint8 image, settings) -> (keypoints (N, 2) float32, descriptors (N, D) float32)``."""
    def wrap(fn: Callable) -> Callable:
        EXTRACTORS[name] = fn
        return fn
    return wrap


@register_extractor("sift")
def sift(grey: np.ndarray, s: LocalFeatureSettings) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV SIFT, the strongest ``max_keypoints`` by response (ties: OpenCV's order), optional RootSIFT."""
    detector = cv2.SIFT_create(nfeatures=s.max_keypoints, contrastThreshold=s.contrast_threshold)
    kps, desc = detector.detectAndCompute(grey, None)
    if desc is None or not kps:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
    # nfeatures keeps the strongest, but OpenCV keeps every keypoint tied with the last one: cut exactly
    order = np.argsort([-k.response for k in kps], kind="stable")[: s.max_keypoints]
    xy = np.array([kps[i].pt for i in order], dtype=np.float32).reshape(-1, 2)
    d = desc[order].astype(np.float32)
    if s.root_sift:
        d = np.sqrt(d / np.maximum(d.sum(axis=1, keepdims=True), 1e-12))
    return xy, d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)


def extract_image(path: Path, s: LocalFeatureSettings) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (in the original image's pixels) and descriptors of one image file."""
    grey = cv2.cvtColor(np.asarray(load_rgb(path)), cv2.COLOR_RGB2GRAY)
    scale = 1.0
    if s.max_side is not None and max(grey.shape) > s.max_side:
        scale = s.max_side / max(grey.shape)
        grey = cv2.resize(grey, (round(grey.shape[1] * scale), round(grey.shape[0] * scale)),
                          interpolation=cv2.INTER_AREA)
    xy, d = EXTRACTORS[s.extractor](grey, s)
    if scale != 1.0:  # back to original pixels (pixel centres at integers in both grids)
        xy = ((xy + 0.5) / scale - 0.5).astype(np.float32)
    return xy, d


@dataclass(frozen=True)
class KeypointSet:
    """The local features of a dataset's images (the file's arrays)."""

    image_ids: list[str]
    keypoints: np.ndarray
    descriptors: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "_row", {iid: i for i, iid in enumerate(self.image_ids)})

    def has(self, image_id: str) -> bool:
        return image_id in self._row  # type: ignore[attr-defined]

    def index(self, image_id: str) -> int:
        """Row of ``image_id`` in the file (error naming it when absent)."""
        try:
            return self._row[image_id]  # type: ignore[attr-defined]
        except KeyError:
            raise DarksideError(f"local features: no image {image_id!r}") from None

    def of(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(keypoints, descriptors) of one image."""
        i = self.index(image_id)
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.keypoints[a:b], self.descriptors[a:b]


def write_local_features(manifest: Manifest, out: str | Path, s: LocalFeatureSettings,
                         records: Sequence[ImageRecord] | None = None, progress: Callable | None = None) -> Path:
    """Extract every image of ``records`` (default: the whole manifest) into ``out``; return ``out``."""
    records = list(manifest.records if records is None else records)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # one image at a time is small; fixed threads keep the keypoints identical run to run
    try:
        per = []
        for i, r in enumerate(records):
            per.append(extract_image(manifest.image_path(r), s))
            if progress is not None:
                progress(i + 1, len(records))
    finally:
        cv2.setNumThreads(threads)
    dim = next((d.shape[1] for _, d in per if len(d)), 128)
    sizes = np.array([len(k) for k, _ in per], dtype=np.int64)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f["keypoints"] = (np.concatenate([k for k, _ in per]) if per else np.zeros((0, 2))).astype(np.float32)
        f["descriptors"] = (np.concatenate([d.reshape(-1, dim) for _, d in per]) if per
                            else np.zeros((0, dim))).astype(np.float32)
        f["offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        f.create_dataset("image_ids", data=[r.image_id for r in records], dtype=h5py.string_dtype("utf-8"))
        f.attrs.update({"dataset": manifest.name, "extractor": s.extractor,
                        "settings": json.dumps(dataclasses.asdict(s), sort_keys=True), "darkside_version": __version__})
    return out


def read_local_features(path: str | Path) -> KeypointSet:
    """The arrays of a local-feature file, checked for consistency (one-line error naming the file)."""
    p = Path(path)
    if not p.is_file():
        raise DarksideError(f"{p}: local-feature file missing (run `darkside local-features`)")
    try:
        with h5py.File(p, "r") as f:
            ids = [v.decode() if isinstance(v, bytes) else str(v) for v in f["image_ids"][()]]
            kp, desc, off = f["keypoints"][()], f["descriptors"][()], f["offsets"][()]
    except (OSError, KeyError) as exc:
        raise DarksideError(f"{p}: not a local-feature file ({exc})") from None
    consistent = len(off) == len(ids) + 1 and off[0] == 0 and off[-1] == len(kp) == len(desc)
    if not consistent or np.any(np.diff(off) < 0):
        raise DarksideError(f"{p}: inconsistent local-feature arrays (offsets do not match the keypoints)")
    return KeypointSet(ids, kp.astype(np.float64), desc.astype(np.float32), off.astype(np.int64))
