"""The paper's qualitative figures, regenerated from the trained models.

* Figure 1 (:func:`translations_figure`): rows = day source images; columns = the source, then
  each generator's day->night translation (CycleGAN, ..., RCF^N GAN, HED^N GAN in the paper).
* Figure 2 (:func:`edges_figure`): rows = night images; columns = the image, then each edge
  detector's map (RCF, HED, HED^N in the paper), drawn dark on white as in the paper.

Figures are drawn on an explicit Agg canvas (no pyplot global state, no display needed) with a
fixed cell size and no tight bounding box, so the PNG's pixel size is a pure function of the
grid: ``(cols * cell_in * dpi, rows * cell_in * dpi)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from darkside.atomic import atomic_path
from darkside.data.images import load_rgb
from darkside.errors import DarksideError
from darkside.gan.translator import Translator, load_translator

CELL_IN = 1.6   # inches per grid cell
DPI = 100


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    """RGB uint8 H x W x 3 -> (1, 3, H, W) float in [0, 1] (the Translator / detector convention)."""
    return torch.from_numpy(np.ascontiguousarray(img).astype(np.float32) / 255.0).permute(2, 0, 1)[None]


def _to_image(t: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> H x W x 3 float array for imshow."""
    return t[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()


def grid_size_px(rows: int, cols: int, cell_in: float = CELL_IN, dpi: int = DPI) -> tuple[int, int]:
    """(width, height) in pixels of a figure of ``rows`` x ``cols`` cells."""
    return round(cols * cell_in * dpi), round(rows * cell_in * dpi)


def save_grid(panels: Sequence[Sequence[np.ndarray]], titles: Sequence[str], out_png: str | Path,
              cmaps: Sequence[str | None] | None = None, cell_in: float = CELL_IN, dpi: int = DPI) -> Path:
    """Draw ``panels[row][col]`` (RGB float arrays, or H x W maps drawn with ``cmaps[col]``) with a
    title over each column; write the PNG atomically."""
    rows, cols = len(panels), len(titles)
    if rows == 0 or any(len(r) != cols for r in panels):
        raise DarksideError(f"{out_png}: figure needs >= 1 row of {cols} panels")
    fig = Figure(figsize=(cols * cell_in, rows * cell_in), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, row in enumerate(panels):
        for j, panel in enumerate(row):
            ax = axes[i][j]
            if panel.ndim == 2:
                ax.imshow(panel, cmap=(cmaps[j] if cmaps is not None else None) or "gray", vmin=0.0, vmax=1.0,
                          interpolation="nearest")
            else:
                ax.imshow(panel, interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            if i == 0:
                ax.set_title(titles[j], fontsize=8)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.25 / (rows * cell_in), wspace=0.04,
                        hspace=0.04)
    out = Path(out_png)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return out


def translations_figure(day_images: Sequence[str | Path], generators: Mapping[str, Translator],
                        out_png: str | Path) -> Path:
    """Figure 1: each row a day image, then its translation by every generator (in mapping order)."""
    if not day_images or not generators:
        raise DarksideError(f"{out_png}: translations figure needs day images and at least one generator")
    rows = []
    for path in day_images:
        x = _to_tensor(np.asarray(load_rgb(path)))
        with torch.no_grad():
            rows.append([_to_image(x)] + [_to_image(g.translate(x)) for g in generators.values()])
    return save_grid(rows, ["day (source)", *generators], out_png)


def edges_figure(night_images: Sequence[str | Path], detectors: Mapping[str, nn.Module],
                 out_png: str | Path) -> Path:
    """Figure 2: each row a night image, then every detector's edge map (eval mode, dark = edge)."""
    if not night_images or not detectors:
        raise DarksideError(f"{out_png}: edges figure needs night images and at least one detector")
    for det in detectors.values():
        det.eval()
    rows = []
    for path in night_images:
        x = _to_tensor(np.asarray(load_rgb(path)))
        with torch.no_grad():
            rows.append([_to_image(x)] + [det(x)[0, 0].float().clamp(0, 1).cpu().numpy() for det in detectors.values()])
    return save_grid(rows, ["night image", *detectors], out_png,
                     cmaps=[None] + ["gray_r"] * len(detectors))


def load_generators(specs: Mapping[str, tuple[str, str | Path | None]],
                    device: torch.device | str = "cpu") -> dict[str, Translator]:
    """{column title: (generator kind, checkpoint)} -> translators, via the translator registry
    (e.g. ``{"HED^N GAN": ("hedngan", "results/gan/hedngan/generator.pt")}``)."""
    return {name: load_translator(kind, Path(ckpt) if ckpt is not None else None, device)
            for name, (kind, ckpt) in specs.items()}
