"""Figures 1 and 2 from stand-in generators and detectors: grid size and panel content."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from darkside.errors import DarksideError
from darkside.gan.figures import edges_figure, grid_size_px, load_generators, translations_figure

torch.set_num_threads(1)


class Invert:
    def translate(self, images: torch.Tensor) -> torch.Tensor:
        return 1.0 - images


class Darken:
    def translate(self, images: torch.Tensor) -> torch.Tensor:
        return images * 0.2


class Brightness(nn.Module):
    def forward(self, x, logits=False):
        return x.mean(1, keepdim=True)


@pytest.fixture
def images(tmp_path):
    paths = []
    for i, shape in enumerate([(24, 32, 3), (32, 24, 3)]):
        p = tmp_path / f"im{i}.png"
        Image.fromarray(np.full(shape, 230, dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def test_grid_size_is_cells_times_dpi():
    assert grid_size_px(2, 3, cell_in=1.6, dpi=100) == (480, 320)


def test_translations_figure_grid(images, tmp_path):
    out = translations_figure(images, {"inverted": Invert(), "dark": Darken()}, tmp_path / "f" / "fig1.png")
    assert out == tmp_path / "f" / "fig1.png"
    img = Image.open(out)
    assert img.size == grid_size_px(rows=2, cols=3)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_edges_figure_grid_and_dark_edges(images, tmp_path):
    out = edges_figure(images[:1], {"bright": Brightness()}, tmp_path / "fig2.png")
    w, h = Image.open(out).size
    assert (w, h) == grid_size_px(rows=1, cols=2)
    # the source is bright (230), its "edge map" 0.9 is drawn dark on white (gray_r): the right
    # cell's centre is darker than the left cell's
    arr = np.asarray(Image.open(out).convert("L")).astype(int)
    left, right = arr[h // 2, w // 4], arr[h // 2, 3 * w // 4]
    assert left > 200 and right < 60


def test_empty_inputs_are_refused(images, tmp_path):
    with pytest.raises(DarksideError, match=r"fig\.png"):
        translations_figure([], {"x": Invert()}, tmp_path / "fig.png")
    with pytest.raises(DarksideError, match=r"fig\.png"):
        edges_figure(images, {}, tmp_path / "fig.png")


def test_load_generators_uses_the_translator_registry(images, tmp_path):
    gens = load_generators({"LAB inversion": ("lab-inversion", None)})
    out = translations_figure(images[:1], gens, tmp_path / "lab.png")
    assert Image.open(out).size == grid_size_px(1, 2)
