"""The descriptor file layout: one HDF5 file per (model, dataset), readable with plain h5py.

::

    /descriptors          float32 (N, D)  final descriptors of the manifest's images, manifest order
    /image_ids            utf-8 strings (N,)
    /queries/descriptors  float32 (Q, D)  only where queries are cropped to a box (revisited protocol)
    /queries/image_ids    utf-8 strings (Q,)
    /local/descriptors    float32 (sum N_i, D)  local features (HOW) of every image, concatenated in manifest order
    /local/offsets        int64 (N + 1,)  image i owns rows offsets[i]:offsets[i+1] (offsets[0] = 0)
    /local/attention      float32 (sum N_i,)  each feature's attention (max over the image's scales = 1)
    /queries/local/...    the same for the cropped queries, where queries are cropped
    attrs: model, model_sha256, preset, dataset, settings (JSON), skipped_images (int),
           skipped_ids (JSON list), darkside_version; an ensemble's (darkside.extract.ensemble) also parts (JSON:
           each part's file, its SHA-256, its model)

This module imports no network code, so evaluation can read descriptors without torch.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from darkside import __version__
from darkside.atomic import atomic_path
from darkside.errors import DarksideError

_STR = h5py.string_dtype(encoding="utf-8")


@dataclass(frozen=True)
class LocalFeatures:
    """Local features of a list of images, concatenated, with per-image offsets (the ``/local`` group)."""

    descriptors: np.ndarray  # (sum N_i, D) float32, rows L2-normalised
    offsets: np.ndarray  # (N + 1,) int64
    attention: np.ndarray  # (sum N_i,) float32

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def of(self, i: int) -> np.ndarray:
        """The local descriptors of image ``i``."""
        return self.descriptors[self.offsets[i]:self.offsets[i + 1]]

    @classmethod
    def concat(cls, per_image: list[tuple[np.ndarray, np.ndarray]], dim: int) -> LocalFeatures:
        """From ``(descriptors (N_i, D), attention (N_i,))`` per image."""
        sizes = np.array([len(a) for _, a in per_image], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        desc = (np.concatenate([d for d, _ in per_image]).astype(np.float32) if per_image
                else np.zeros((0, dim), np.float32))
        att = np.concatenate([a for _, a in per_image]).astype(np.float32) if per_image else np.zeros(0, np.float32)
        return cls(desc.reshape(-1, dim), offsets, att)


_LOCAL = ("descriptors", "offsets", "attention")


@dataclass
class DescriptorSet:
    """Descriptors of one dataset under one model."""

    image_ids: list[str]
    descriptors: np.ndarray  # (N, D) float32, rows L2-normalised
    query_ids: list[str] | None = None
    query_descriptors: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    local: LocalFeatures | None = None  # of image_ids
    query_local: LocalFeatures | None = None  # of query_ids (cropped queries)
    #: how rows compare where it is not their dot product (never stored): evaluation sets it when it replaces the
    #: rows by handles into a kernel on local features (ASMK, :mod:`darkside.evaluate.asmk`)
    similarity: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None


def _write_local(group: h5py.Group, local: LocalFeatures) -> None:
    group.create_dataset("descriptors", data=np.asarray(local.descriptors, dtype=np.float32))
    group.create_dataset("offsets", data=np.asarray(local.offsets, dtype=np.int64))
    group.create_dataset("attention", data=np.asarray(local.attention, dtype=np.float32))


def _read_local(p: Path, f: h5py.File, name: str, n_images: int) -> LocalFeatures:
    """The local group ``name``, checked against its ``n_images``: a truncated or inconsistent group is an error."""
    g = f[name]
    if any(k not in g for k in _LOCAL):
        raise DarksideError(f"{p}: /{name} lacks one of {list(_LOCAL)} (truncated local-descriptor file?)")
    desc, offsets, att = (g[k][()] for k in _LOCAL)
    if (desc.ndim != 2 or offsets.shape != (n_images + 1,) or offsets[0] != 0 or np.any(np.diff(offsets) < 0)
            or offsets[-1] != len(desc) or att.shape != (len(desc),)):
        end = int(offsets[-1]) if offsets.size else None
        raise DarksideError(f"{p}: /{name} is inconsistent ({len(desc)} descriptors, {len(att)} attention values, "
                            f"{offsets.size} offsets ending at {end} for {n_images} images): truncated "
                            "local-descriptor file?")
    return LocalFeatures(desc, offsets.astype(np.int64), att)


def write_descriptors(path: str | Path, data: DescriptorSet) -> Path:
    """Write ``data`` to ``path`` atomically (temporary name, then rename); return the path."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("descriptors", data=np.asarray(data.descriptors, dtype=np.float32))
        f.create_dataset("image_ids", data=np.array(data.image_ids, dtype=object), dtype=_STR)
        if data.query_ids is not None:
            g = f.create_group("queries")
            g.create_dataset("descriptors", data=np.asarray(data.query_descriptors, dtype=np.float32))
            g.create_dataset("image_ids", data=np.array(data.query_ids, dtype=object), dtype=_STR)
        if data.local is not None:
            _write_local(f.create_group("local"), data.local)
        if data.query_local is not None:
            _write_local(f.require_group("queries").create_group("local"), data.query_local)
        for k, v in data.attrs.items():
            f.attrs[k] = json.dumps(v) if isinstance(v, (dict, list, tuple)) else v
        f.attrs.setdefault("darkside_version", __version__)
    return Path(path)


def read_descriptors(path: str | Path) -> DescriptorSet:
    """Read a descriptor file; one-line error if it is missing or not a complete descriptor file."""
    p = Path(path)
    if not p.is_file():
        raise DarksideError(f"{p}: descriptor file does not exist")
    try:
        with h5py.File(p, "r") as f:
            if "descriptors" not in f or "image_ids" not in f:
                raise DarksideError(f"{p}: not a darkside descriptor file (no 'descriptors'/'image_ids')")
            ids = [s.decode() if isinstance(s, bytes) else str(s) for s in f["image_ids"][()]]
            desc = f["descriptors"][()]
            qids = qdesc = None
            if "queries" in f:
                qids = [s.decode() if isinstance(s, bytes) else str(s) for s in f["queries/image_ids"][()]]
                qdesc = f["queries/descriptors"][()]
            local = _read_local(p, f, "local", len(ids)) if "local" in f else None
            qlocal = _read_local(p, f, "queries/local", len(qids or ())) if "queries/local" in f else None
            attrs = {}
            for k, v in f.attrs.items():
                if isinstance(v, str) and v[:1] in "[{":
                    with contextlib.suppress(json.JSONDecodeError):
                        v = json.loads(v)
                attrs[k] = v.item() if isinstance(v, np.generic) else v
    except (OSError, KeyError, RuntimeError) as exc:  # h5py reports a cut-off file as any of these
        raise DarksideError(f"{p}: unreadable HDF5 file ({exc})") from None
    if desc.shape[0] != len(ids):
        raise DarksideError(f"{p}: {desc.shape[0]} descriptors but {len(ids)} image ids")
    return DescriptorSet(ids, desc, qids, qdesc, attrs, local, qlocal)
