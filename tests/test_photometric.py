"""CLAHE (gandtr's rule), LAB lightness inversion, thumbnail resizing."""

import cv2
import numpy as np
import pytest
from PIL import Image

from darkside.data.photometric import ClaheSettings, clahe, invert_lightness, pil_to_float, resize_max_side
from darkside.errors import DarksideError


def _image(seed=0, h=37, w=53):
    rng = np.random.default_rng(seed)
    base = rng.random((h, w, 3), dtype=np.float32) * 0.4  # a darkish image, CLAHE has work to do
    base[:, : w // 2] *= 0.3
    return base


def _recompute(rgb, clip, grid, to_uint8):
    lab = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2LAB)
    norm = lab[:, :, 0] / 100.0
    eq = cv2.createCLAHE(clipLimit=clip, tileGridSize=grid).apply(to_uint8(norm * 255))
    lab[:, :, 0] = eq.astype(np.float32) / 255.0 * 100.0
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def test_clahe_matches_direct_recomputation_with_truncation():
    rgb = _image()
    out = clahe(rgb, 1.0, (8, 8))
    assert out.dtype == np.float32 and out.shape == rgb.shape
    truncated = _recompute(rgb, 1.0, (8, 8), lambda v: v.astype(np.uint8))
    rounded = _recompute(rgb, 1.0, (8, 8), lambda v: np.round(v).astype(np.uint8))
    np.testing.assert_allclose(out, truncated, atol=1e-6)
    assert np.abs(out - rounded).max() > 1e-3  # the rounding variant really is different


def test_clahe_int_grid_and_settings():
    rgb = _image(1)
    np.testing.assert_array_equal(clahe(rgb, 2.0, 4), clahe(rgb, 2.0, (4, 4)))
    s = ClaheSettings.of({"clip_limit": 1.0, "grid": 8})  # as a model file records it
    assert s == ClaheSettings(True, 1.0, 8)
    np.testing.assert_array_equal(s.apply(rgb), clahe(rgb))
    assert ClaheSettings.of(None) == ClaheSettings(False)
    assert ClaheSettings(False).apply(rgb) is rgb


def test_clahe_brightens_a_dark_image():
    rgb = _image(2)
    assert clahe(rgb).mean() > rgb.mean() + 0.05


def test_invert_lightness_hand_values_and_involution():
    black_white = np.array([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]], dtype=np.float32)
    np.testing.assert_allclose(invert_lightness(black_white), black_white[:, ::-1], atol=2e-3)
    rng = np.random.default_rng(3)
    # near-grey colours stay inside the sRGB gamut when inverted (OpenCV saturates outside it);
    # the tolerance is OpenCV's own float Lab round trip error
    grey = 0.3 + 0.4 * rng.random((9, 11, 1))
    rgb = (grey + 0.04 * (rng.random((9, 11, 3)) - 0.5)).astype(np.float32)
    np.testing.assert_allclose(invert_lightness(invert_lightness(rgb)), rgb, atol=5e-3)
    assert np.abs(invert_lightness(rgb) - rgb).max() > 0.05


def test_photometric_rejects_wrong_shapes():
    with pytest.raises(DarksideError, match="HxWx3"):
        clahe(np.zeros((4, 4), np.float32))


def test_resize_max_side_is_thumbnail():
    img = Image.new("RGB", (100, 50), (10, 20, 30))
    out = resize_max_side(img, 40)
    assert out.size == (40, 20) and img.size == (100, 50)  # a new image, the input untouched
    assert resize_max_side(img, 40.9).size == (40, 20)  # floor, as PIL's thumbnail
    small = Image.new("RGB", (30, 20))
    assert resize_max_side(small, 40).size == (30, 20)  # never enlarged
    assert resize_max_side(Image.new("RGB", (50, 100)), 40).size == (20, 40)


def test_pil_to_float_matches_totensor_scaling():
    img = Image.fromarray(np.array([[[0, 128, 255]]], dtype=np.uint8))
    np.testing.assert_array_equal(pil_to_float(img), np.array([[[0, 128 / 255, 1]]], dtype=np.float32))
