"""The qualitative retrieval figure: what GeM, CLAHE C and a GAN CD model return for night queries.

One row per night query of the Tokyo role: the query image, then the top-5 database images of each model side by
side, each framed green when it is a positive of the query in the protocol's ground truth and red when it is not.
The queries (:func:`night_queries`) are ``figures.retrieval.queries`` of the ground truth's night queries, evenly
spaced over them in image-id order (the first by id included), so the same queries come back in every run and
every preset; the models (:func:`figure_models`) are ``<backbone>-gem``, ``<backbone>-clahe-c`` and
``<backbone>-<gan_recipe>``, each titled as the tables title its row (:func:`model_title`).

Junk is skipped, as the mAP skips it (:func:`darkside.evaluate.ap.junk_adjusted_ranks`): the five images shown
are the head of the very ranked list whose AP the tables report, so the frames count what the tables count. A
grey frame would spend one of the five slots on an image that counts neither way.

The rankings are read back from the top-k pairs ``darkside score`` writes (``results/pairs/<model>/<dataset>/
pairs-top<k>.csv``, kapture's ``query, db, score``, each query's list in rank order without the query itself),
not recomputed: the figure shows what the scorer ranked. ``evaluate.pairs_topk`` (20) leaves room for junk; a
query with fewer than five results left in the file after its junk is an error naming the file.

This module reads rankings, ground truth and images only: it imports no network code (nor torch).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darkside.atomic import atomic_path
from darkside.data.images import load_rgb
from darkside.data.manifest import GroundTruth, Manifest, Query, load_groundtruth, load_manifest
from darkside.errors import DarksideError
from darkside.settings import setting
from darkside.tables.paper import paper_tables

log = logging.getLogger(__name__)

TOP = 5  # results shown per model (the paper's qualitative figures show the top 5)
BASELINES = ("gem", "clahe-c")  # the two rows every GAN CD model is read against: GeM and CLAHE C

# geometry in PNG pixels: the figure is drawn at DPI with every tile placed on whole pixels, so a tile's box is
# known exactly (:func:`tile_box`) and its frame can be checked in the written file
DPI = 100
TILE_PX = 120   # a square tile: frame plus the image fitted inside, letterboxed
FRAME_PX = 6    # frame width inside the tile
PAD_PX = 4      # between the tiles of one model
GAP_PX = 24     # between the query column and each model's group
MARGIN_PX = 12  # left and right
HEAD_PX = 56    # above the first row: the model titles and the rank numbers
CAPTION_PX = 22  # under each row: the query id
FOOT_PX = 30    # the legend line

CORRECT = (0, 170, 60)    # green: a positive of the query
WRONG = (220, 30, 30)     # red: not a positive (and not junk)
QUERY = (70, 70, 70)      # the query's own frame, neither colour
LETTERBOX = (255, 255, 255)


@dataclass(frozen=True)
class RetrievalFigureSettings:
    """``figures.retrieval``: the qualitative retrieval figure (night queries of the Tokyo role)."""

    queries: int = setting("night queries shown, one row each, evenly spaced in image-id order", ge=1)
    backbone: str = setting("backbone of the three models", key_in="recipes")
    gan_recipe: str = setting("the GAN model beside GeM and CLAHE C (a recipe the backbone trains)",
                              pattern="^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Tile:
    """One result shown: the database image and whether the ground truth has it as a positive of the query."""

    image_id: str
    correct: bool


@dataclass(frozen=True)
class FigureRow:
    """One query and, per model (in column order), its top results."""

    query: str
    results: dict[str, list[Tile]]


def figure_models(s: RetrievalFigureSettings) -> list[str]:
    """The models of the figure's column groups, in order: GeM, CLAHE C, then the GAN model."""
    return [f"{s.backbone}-{r}" for r in (*BASELINES, s.gan_recipe)]


def model_title(model: str) -> str:
    """A ``<backbone>-<recipe>`` model titled as the tables title its row (the first table block of that backbone
    with a row of that recipe, e.g. ``CycleGAN CD (ours)``); the model name where no table has the row."""
    backbone, _, recipe = model.partition("-")
    for table in paper_tables().values():
        for block in table.get("blocks", {}).values():
            if block.get("backbone") != backbone:
                continue
            for row in (*block.get("extra_rows", ()), *block.get("rows", ())):
                if row.get("recipe") == recipe:
                    return str(row["method"])
    return model


def night_queries(manifest: Manifest, gt: GroundTruth, k: int) -> list[Query]:
    """``k`` of the ground truth's queries whose image is a night image: evenly spaced over them sorted by image
    id, the first included (a fixed choice: the same rows in every run)."""
    night = sorted((q for q in gt.queries if manifest.records[manifest.index(q.query)].domain == "night"),
                   key=lambda q: q.query)
    if k < 1 or k > len(night):
        raise DarksideError(f"figures.retrieval.queries: {k} asked, but {manifest.root} has {len(night)} night "
                            "queries")
    return [night[i * len(night) // k] for i in range(k)]


def pairs_file(pairs_dir: Path) -> Path:
    """The ``pairs-top<k>.csv`` that ``darkside score --pairs-dir`` wrote into ``pairs_dir``."""
    if not pairs_dir.is_dir():
        raise DarksideError(f"{pairs_dir}: rankings missing (written by the model's score job, --pairs-dir)")
    found = sorted(pairs_dir.glob("pairs-top*.csv"))
    if not found:
        raise DarksideError(f"{pairs_dir / 'pairs-top<k>.csv'}: rankings missing (written by the model's score job)")
    if len(found) > 1:
        raise DarksideError(f"{pairs_dir}: several rankings ({', '.join(p.name for p in found)}); keep the one the "
                            "score job wrote last")
    return found[0]


def read_rankings(path: Path, manifest: Manifest, queries: Collection[str]) -> dict[str, list[str]]:
    """Ranked database image ids of each of ``queries`` from a kapture pairs file (image names are manifest
    paths; each query's lines are in rank order)."""
    by_path = {r.path: r.image_id for r in manifest.records}
    out: dict[str, list[str]] = {q: [] for q in queries}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            parts = line.rsplit(", ", 2)
            if len(parts) != 3:
                raise DarksideError(f"{path}:{n}: expected 'query, db, score'")
            names = parts[:2]
            ids = [by_path.get(name) for name in names]
            for name, i in zip(names, ids, strict=True):
                if i is None:
                    raise DarksideError(f"{path}:{n}: image {name!r} is not in {manifest.root / 'manifest.csv'}")
            if ids[0] in out:
                out[ids[0]].append(ids[1])
    for q, ranked in out.items():
        if not ranked:
            raise DarksideError(f"{path}: no results for query {q!r}")
    return out


def result_tiles(ranked: Sequence[str], query: Query, where: str, top: int = TOP) -> list[Tile]:
    """The frames of one query's results: its first ``top`` non-junk results, correct where the ground truth has
    them as positives. Junk is skipped as the mAP skips it (see the module docstring)."""
    junk, positives = set(query.junk), set(query.positives)
    kept = [i for i in ranked if i not in junk][:top]
    if len(kept) < top:
        raise DarksideError(f"{where}: query {query.query!r} has {len(kept)} results besides junk, fewer than {top} "
                            "(raise evaluate.pairs_topk)")
    return [Tile(i, i in positives) for i in kept]


def figure_rows(manifest: Manifest, gt: GroundTruth, pairs: Mapping[str, Path], k: int) -> list[FigureRow]:
    """Per chosen night query, each model's top results with their frames; ``pairs``: model -> its pairs folder
    for this dataset, in column order."""
    queries = night_queries(manifest, gt, k)
    ids = [q.query for q in queries]
    tiles: dict[str, dict[str, list[Tile]]] = {q: {} for q in ids}
    for model, folder in pairs.items():
        path = pairs_file(Path(folder))
        ranked = read_rankings(path, manifest, ids)
        for q in queries:
            tiles[q.query][model] = result_tiles(ranked[q.query], q, str(path))
    return [FigureRow(q, tiles[q]) for q in ids]


# --- drawing -------------------------------------------------------------------------------------------

def figure_size_px(rows: int, models: int, top: int = TOP) -> tuple[int, int]:
    """(width, height) of the PNG."""
    group = top * TILE_PX + (top - 1) * PAD_PX
    return (2 * MARGIN_PX + TILE_PX + models * (GAP_PX + group),
            HEAD_PX + rows * (TILE_PX + CAPTION_PX) + FOOT_PX)


def tile_box(row: int, model: int | None, rank: int = 0, top: int = TOP) -> tuple[int, int, int, int]:
    """Pixel box ``(x0, y0, x1, y1)`` (x1, y1 exclusive) of a tile in the PNG: the query's (``model`` None) or
    model ``model``'s result at 0-based ``rank``."""
    y0 = HEAD_PX + row * (TILE_PX + CAPTION_PX)
    x0 = MARGIN_PX
    if model is not None:
        x0 += TILE_PX + GAP_PX + model * (top * TILE_PX + (top - 1) * PAD_PX + GAP_PX) + rank * (TILE_PX + PAD_PX)
    return x0, y0, x0 + TILE_PX, y0 + TILE_PX


def framed_tile(path: Path, colour: tuple[int, int, int]) -> np.ndarray:
    """TILE_PX square RGB uint8: a ``colour`` frame, inside it the image fitted whole (aspect kept) on white."""
    from PIL import Image

    inner = TILE_PX - 2 * FRAME_PX
    im = load_rgb(path)
    scale = min(inner / im.width, inner / im.height)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    canvas = Image.new("RGB", (TILE_PX, TILE_PX), colour)
    box = Image.new("RGB", (inner, inner), LETTERBOX)
    box.paste(im.resize(size, Image.Resampling.BILINEAR), ((inner - size[0]) // 2, (inner - size[1]) // 2))
    canvas.paste(box, (FRAME_PX, FRAME_PX))
    return np.asarray(canvas)


def draw_figure(manifest: Manifest, rows: Sequence[FigureRow], titles: Mapping[str, str], out_png: Path,
                top: int = TOP) -> Path:
    """Draw ``rows`` (models titled by ``titles``, in its order) and write the PNG atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = list(titles)
    if not rows or not models:
        raise DarksideError(f"{out_png}: retrieval figure needs at least one query and one model")
    w, h = figure_size_px(len(rows), len(models), top)
    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    FigureCanvasAgg(fig)

    def place(box: tuple[int, int, int, int], image: np.ndarray) -> None:
        x0, y0, x1, y1 = box
        ax = fig.add_axes((x0 / w, 1 - y1 / h, (x1 - x0) / w, (y1 - y0) / h))
        ax.imshow(image, interpolation="nearest", aspect="auto")
        ax.set_axis_off()

    def text(x: float, y: float, s: str, **kw: Any) -> None:  # pixel coordinates from the top left
        fig.text(x / w, 1 - y / h, s, ha="center", **kw)

    record = {r.image_id: r for r in manifest.records}
    qx0, _, qx1, _ = tile_box(0, None)
    text((qx0 + qx1) / 2, HEAD_PX - 8, "night query", va="bottom", fontsize=10)
    for m, model in enumerate(models):
        tiles = [t for r in rows for t in r.results[model]]
        first, last = tile_box(0, m, 0, top), tile_box(0, m, top - 1, top)
        text((first[0] + last[2]) / 2, HEAD_PX - 26, f"{titles[model]}  ({sum(t.correct for t in tiles)} of "
             f"{len(tiles)} correct)", va="bottom", fontsize=11, fontweight="bold")
        for rank in range(top):
            x0, _, x1, _ = tile_box(0, m, rank, top)
            text((x0 + x1) / 2, HEAD_PX - 8, str(rank + 1), va="bottom", fontsize=8)
    for i, row in enumerate(rows):
        place(tile_box(i, None), framed_tile(manifest.image_path(record[row.query]), QUERY))
        _, _, _, y1 = tile_box(i, None)
        text((qx0 + qx1) / 2, y1 + 3, row.query, va="top", fontsize=8)
        for m, model in enumerate(models):
            for rank, t in enumerate(row.results[model]):
                place(tile_box(i, m, rank, top),
                      framed_tile(manifest.image_path(record[t.image_id]), CORRECT if t.correct else WRONG))
    text(w / 2, h - FOOT_PX / 2, f"{manifest.name}, night queries: top {top} database images of each model. Frame "
         "green: a positive of the query (ground truth); red: not a positive. Junk is skipped, as the mAP skips it.",
         va="center", fontsize=9)
    out = Path(out_png)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return out


def retrieval_figure(dataset_dir: Path, pairs: Mapping[str, Path], out_png: Path, queries: int) -> Path:
    """The figure for a prepared Tokyo-protocol dataset; ``pairs``: model -> its pairs folder for the dataset
    (column order). Returns the PNG's path."""
    root = Path(dataset_dir)
    manifest = load_manifest(root, check_files=False)
    gt = load_groundtruth(root, manifest)
    if gt.protocol != "tokyo":  # every image queries all, lighting per image: what "night queries" presumes
        raise DarksideError(f"{root / 'groundtruth.json'}: protocol {gt.protocol!r}; the retrieval figure shows "
                            "night queries of a Tokyo-protocol dataset")
    rows = figure_rows(manifest, gt, pairs, queries)
    for m in pairs:  # the figure's numbers in the job log too: correct results per query, in row order
        correct = " ".join(str(sum(t.correct for t in r.results[m])) for r in rows)
        log.info("%s: %s correct of the top %d of night queries %s", m, correct, TOP, ", ".join(r.query for r in rows))
    return draw_figure(manifest, rows, {m: model_title(m) for m in pairs}, Path(out_png))
