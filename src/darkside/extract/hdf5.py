"""The descriptor file layout: one HDF5 file per (model, dataset), readable with plain h5py.

::

    /descriptors          float32 (N, D)  final descriptors of the manifest's images, manifest order
    /image_ids            utf-8 strings (N,)
    /queries/descriptors  float32 (Q, D)  only where queries are cropped to a box (revisited protocol)
    /queries/image_ids    utf-8 strings (Q,)
    /local/...            local features (HOW): concatenated arrays plus per-image offsets
    attrs: model, model_sha256, preset, dataset, settings (JSON), skipped_images (int),
           skipped_ids (JSON list), darkside_version; an ensemble's (darkside.extract.ensemble) also parts (JSON:
           each part's file, its SHA-256, its model)

This module imports no network code, so evaluation can read descriptors without torch.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from darkside import __version__
from darkside.atomic import atomic_path
from darkside.errors import DarksideError

_STR = h5py.string_dtype(encoding="utf-8")


@dataclass
class DescriptorSet:
    """Descriptors of one dataset under one model."""

    image_ids: list[str]
    descriptors: np.ndarray  # (N, D) float32, rows L2-normalised
    query_ids: list[str] | None = None
    query_descriptors: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    local: dict[str, np.ndarray] | None = None  # e.g. {"descriptors", "offsets", "attention", ...}


def write_descriptors(path: str | Path, data: DescriptorSet) -> Path:
    """Write ``data`` to ``path`` atomically (temporary name, then rename); return the path."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("descriptors", data=np.asarray(data.descriptors, dtype=np.float32))
        f.create_dataset("image_ids", data=np.array(data.image_ids, dtype=object), dtype=_STR)
        if data.query_ids is not None:
            g = f.create_group("queries")
            g.create_dataset("descriptors", data=np.asarray(data.query_descriptors, dtype=np.float32))
            g.create_dataset("image_ids", data=np.array(data.query_ids, dtype=object), dtype=_STR)
        if data.local:
            g = f.create_group("local")
            for k, v in data.local.items():
                g.create_dataset(k, data=v)
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
            local = {k: f["local"][k][()] for k in f["local"]} if "local" in f else None
            attrs = {}
            for k, v in f.attrs.items():
                if isinstance(v, str) and v[:1] in "[{":
                    with contextlib.suppress(json.JSONDecodeError):
                        v = json.loads(v)
                attrs[k] = v.item() if isinstance(v, np.generic) else v
    except OSError as exc:
        raise DarksideError(f"{p}: unreadable HDF5 file ({exc})") from None
    if desc.shape[0] != len(ids):
        raise DarksideError(f"{p}: {desc.shape[0]} descriptors but {len(ids)} image ids")
    return DescriptorSet(ids, desc, qids, qdesc, attrs, local)
