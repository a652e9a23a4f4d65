"""Camera intrinsics as kapture and COLMAP write them, turned into what OpenCV computes with.

A manifest's ``camera`` column holds a COLMAP camera model and its parameters after width and height,
space-separated, exactly as in kapture's ``sensors.txt`` (``SIMPLE_RADIAL 1600 800 600 0.01``). COLMAP puts
the centre of the top-left pixel at (0.5, 0.5); OpenCV (and the keypoints it detects) at (0, 0). The matrix
returned here is OpenCV's, so the principal point moves by half a pixel: a model written by kapture and a
keypoint found by OpenCV then agree to the pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darkside.errors import ManifestError

#: model -> (parameter names): focal lengths, principal point, then OpenCV's (k1, k2, p1, p2) as far as given
MODELS: dict[str, tuple[str, ...]] = {
    "SIMPLE_PINHOLE": ("f", "cx", "cy"),
    "PINHOLE": ("fx", "fy", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k1"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
}


@dataclass(frozen=True)
class Intrinsics:
    """OpenCV's camera matrix ``K`` (pixel centres at integer coordinates) and distortion ``(k1, k2, p1, p2)``."""

    K: np.ndarray
    distortion: np.ndarray
    width: int
    height: int


def parse_camera(text: str, width: int, height: int) -> Intrinsics:
    """Intrinsics of ``"MODEL p1 p2 ..."`` (COLMAP pixel convention) for an image of ``width`` x ``height``."""
    fields = text.split()
    if not fields or fields[0] not in MODELS:
        model = fields[0] if fields else text
        raise ManifestError(f"unknown camera model {model!r} (expected one of {sorted(MODELS)})")
    names = MODELS[fields[0]]
    try:
        values = dict(zip(names, (float(v) for v in fields[1:]), strict=True))
    except ValueError:
        raise ManifestError(f"camera {fields[0]} takes {len(names)} numbers ({', '.join(names)}), "
                            f"got {text!r}") from None
    fx, fy = values.get("fx", values.get("f")), values.get("fy", values.get("f"))
    if not (fx and fy and fx > 0 and fy > 0 and np.isfinite(fx) and np.isfinite(fy)):
        raise ManifestError(f"camera {text!r}: focal lengths must be positive numbers")
    K = np.array([[fx, 0.0, values["cx"] - 0.5], [0.0, fy, values["cy"] - 0.5], [0.0, 0.0, 1.0]])
    dist = np.array([values.get(k, 0.0) for k in ("k1", "k2", "p1", "p2")])
    return Intrinsics(K, dist, int(width), int(height))


def pinhole(K: np.ndarray) -> str:
    """The ``PINHOLE`` text of an OpenCV camera matrix (the inverse of :func:`parse_camera` for that model)."""
    return "PINHOLE " + " ".join(repr(float(v)) for v in (K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5))


def sensor_camera(params: list[str]) -> str | None:
    """The ``camera`` text of a kapture ``sensors.txt`` camera row's params (``MODEL, width, height, ...``);
    None for a model this suite cannot compute with (it then localizes by pose approximation only)."""
    if len(params) < 3 or params[0] not in MODELS or len(params) - 3 != len(MODELS[params[0]]):
        return None
    return " ".join([params[0], *params[3:]])
