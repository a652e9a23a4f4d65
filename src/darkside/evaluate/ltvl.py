"""The names images carry in the localization exports, and the LTVL2020 poses file visuallocalization.net scores.

Two kinds of names:

* **pairs files** (hloc ``query db``, kapture ``query, db, score``; :mod:`.database`) name images by their manifest
  ``image_id``. The kapture importer makes that the kapture image name (``records_camera.txt``'s ``image_path``, e.g.
  ``query/night/nexus5x/IMG_20161227_173116.jpg``, ``night/rear/1418235223450115.jpg``), which is what
  kapture-localization's pairs readers match against the mapping and query records; the synthetic benchmark's ids
  are its own names.
* **LTVL2020 poses file** (``name qw qx qy qz tx ty tz``, world->camera): the name is what the benchmark server
  looks the image up by. :func:`benchmark_names` derives it from the image id by the rule the dataset declares in
  ``dataset.json``'s ``metadata`` (the importer writes it, so no code branches on a dataset's name):

  ``ltvl_style``
      ``"Default"``: the image name's last path component (kapture's ``kapture_export_LTVL2020.py`` without options,
      kapture-localization's ``--benchmark-style Default``; Aachen Day-Night: ``IMG_20161227_173116.jpg``).
      ``"RobotCar_Seasons"``: ``<camera>/<last component>`` (``kapture_export_LTVL2020.py -p``, which
      ``--benchmark-style RobotCar_Seasons`` passes: it prepends the kapture sensor id; in RobotCar Seasons' kapture
      an image name is ``<condition>/<camera>/<timestamp>.jpg``, so the camera is the folder the image sits in and the
      importer checks that it equals the sensor id): ``rear/1418235223450115.jpg``.
      Absent: the image id unchanged (the synthetic benchmark, scored locally against its own ids).
  ``ltvl_cameras``
      Optional list of cameras (the folder an image name sits in) whose images the benchmark scores; the others get
      no name and are left out of the poses file. RobotCar Seasons declares ``["rear"]``: the server evaluates only
      the rear camera (tsattler/visuallocalizationbenchmark#17, #59).

A name must be unique among the written rows and contain no white space (the file is space-separated). This module
imports no evaluation code, so the importers can check their names with it.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darkside.atomic import atomic_write_text
from darkside.data.manifest import ImageRecord, Manifest
from darkside.errors import DarksideError, ManifestError

#: ``metadata`` keys of ``dataset.json`` read here.
STYLE_KEY = "ltvl_style"
CAMERAS_KEY = "ltvl_cameras"


def _camera(image_name: str) -> str:
    """The folder an image name sits in ('' at the top level)."""
    return posixpath.basename(posixpath.dirname(image_name))


def _default(image_name: str) -> str:
    return posixpath.basename(image_name)


def _robotcar(image_name: str) -> str:
    camera = _camera(image_name)
    if not camera:
        raise DarksideError(f"image {image_name!r}: the RobotCar_Seasons style needs a <camera>/ folder in the name")
    return f"{camera}/{posixpath.basename(image_name)}"


#: ``ltvl_style`` -> image name to benchmark name (names as kapture-localization's ``--benchmark-style`` spells them).
STYLES: dict[str, Callable[[str], str]] = {"Default": _default, "RobotCar_Seasons": _robotcar}


def dataset_metadata(dataset: Manifest | str | Path | Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``metadata`` of a dataset: a loaded manifest's, a prepared folder's ``dataset.json``'s, or the mapping
    itself (already the metadata)."""
    if isinstance(dataset, Manifest):
        return dataset.metadata
    if isinstance(dataset, Mapping):
        return dataset
    path = Path(dataset) / "dataset.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read ({exc})") from None
    return (meta.get("metadata") or {}) if isinstance(meta, dict) else {}


def ltvl_style(dataset: Manifest | str | Path | Mapping[str, Any]) -> tuple[str | None, frozenset[str] | None]:
    """(``ltvl_style`` or None, the scored cameras or None for all) a dataset declares; an unknown style is an
    error naming the known ones."""
    meta = dataset_metadata(dataset)
    style = meta.get(STYLE_KEY)
    if style is not None and style not in STYLES:
        raise ManifestError(f"dataset metadata: {STYLE_KEY} {style!r} is not one of {sorted(STYLES)}")
    cams = meta.get(CAMERAS_KEY)
    if cams is not None and not (isinstance(cams, list) and all(isinstance(c, str) for c in cams)):
        raise ManifestError(f"dataset metadata: {CAMERAS_KEY} must be a list of camera names, not {cams!r}")
    return style, (frozenset(cams) if cams is not None else None)


def benchmark_names(dataset: Manifest | str | Path | Mapping[str, Any],
                    records: Sequence[ImageRecord]) -> list[str | None]:
    """The LTVL2020 name of each record (same order), by the dataset's declared style (module docstring); None
    for an image of a camera the benchmark does not score (:func:`write_ltvl_poses` leaves it out)."""
    style, cameras = ltvl_style(dataset)
    rename = STYLES[style] if style is not None else None
    return [None if cameras is not None and _camera(r.image_id) not in cameras
            else (rename(r.image_id) if rename is not None else r.image_id) for r in records]


def write_ltvl_poses(path: str | Path, names: Sequence[str | None], poses: np.ndarray) -> Path:
    """The visuallocalization.net (LTVL2020) file: ``name qw qx qy qz tx ty tz`` per line, world->camera, in input
    order; a row whose name is None (not scored) or whose pose has a NaN (no estimate) is left out. Names must be
    unique and free of white space: the server would score a duplicate once and split a spaced name."""
    P = np.asarray(poses, dtype=np.float64).reshape(-1, 7)
    if len(names) != len(P):
        raise DarksideError(f"{path}: {len(names)} names for {len(P)} poses")
    lines, seen = [], set()
    for name, p in zip(names, P, strict=True):
        if name is None or not np.all(np.isfinite(p)):
            continue
        if not name or any(ch.isspace() for ch in name):
            raise DarksideError(f"{path}: image name {name!r} is empty or contains white space")
        if name in seen:
            raise DarksideError(f"{path}: two images are named {name!r} in the benchmark's style")
        seen.add(name)
        lines.append(name + " " + " ".join(repr(float(v)) for v in p))
    return atomic_write_text(path, "".join(line + "\n" for line in lines))
