"""The embedded synthetic day/night benchmark (SPEC 4.3): every ``synth-*`` dataset of the mini preset.

Ten prepared datasets are written under ``out_root`` in the manifest schema, plus
``synthetic-calibration.json`` (checks of the night model measured at generation time):

``synth-sfm``      training: day views of many scenes, fewer unpaired night views, a few
                   (night, day) pairs, query/positive pairs; ``train`` and ``val`` splits.
``synth-whiten``   training: day views and pairs for the learned whitening.
``synth-tokyo``    places x directions x {day, sunset, night} at one camera pose per scene.
``synth-roxford``  revisited: landmarks + distractors, queries with boxes, easy/hard/junk from
``synth-rparis``   the geometry (visible-facade overlap, viewpoint and scale change).
``synth-aachen``   localization: a street, database on a pose grid, day and night queries.
``synth-robotcar`` localization: a vehicle route along a street, an overcast reference traversal and
                   queries in RobotCar Seasons-like conditions (day, overcast, dusk, night, night-rain).
``synth-daco-night`` DaCo's cross-domain tasks (protocol ``cross_domain``): pairs of one view of a scene in two
``synth-daco-fog``   conditions, day <-> night (Tokyo 24/7), day <-> fog (Foggy Cityscapes' clear <-> foggy),
``synth-daco-rain``  sunset <-> night-rain (SYNTHIA-SEQS' sunset <-> rainy night); ``train`` and ``val`` pairs.

Each dataset folder also holds ``cameras.json`` (intrinsics, the world-plane homography used to
render each image, the facade rectangles) and ``edges/<image path>`` (ground-truth edge maps);
``synth-sfm`` also holds ``night-twins/<image path>`` for its day views (train and val splits): the same view
rendered at night, which only the ``oracle`` translator reads (it is in no manifest, so no
recipe, pre-training or generator sees it otherwise). The ``synth-daco-*`` sets hold
``translations/<image path>`` for their training images in the same way: the view rendered in the other
domain's condition, DaCo's ``generated/`` tree with the renderer as the translator (the ceiling a generator
can reach).
Rendering lives in :mod:`darkside.data.synthetic_render`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from darkside.atomic import atomic_path, atomic_write_json, shared_temp_dir
from darkside.data import synthetic_render as sr
from darkside.data.cameras import pinhole
from darkside.data.manifest import GroundTruth, ImageRecord, Query, write_dataset
from darkside.data.photometric import invert_lightness
from darkside.errors import ConfigError, DarksideError
from darkside.geometry import matrix_to_quaternion, rotation_angle_deg
from darkside.settings import setting

#: folder of a dataset that holds the night rendering of each day view (same camera), by image path
NIGHT_TWINS: str = "night-twins"
#: folder of a synth-daco-* set that holds each training image rendered in the other domain, by image path
TRANSLATIONS: str = "translations"
#: DaCo's tasks: dataset -> (renderer condition of domain A, of B, manifest domain of A, of B), the domains as the
#: real sets' importers write them (foggy Cityscapes: day and other; SYNTHIA: sunset and night)
CROSS_DOMAIN: dict[str, tuple[str, str, str, str]] = {
    "synth-daco-night": ("day", "night", "day", "night"),
    "synth-daco-fog": ("day", "fog", "day", "other"),
    "synth-daco-rain": ("sunset", "night-rain", "sunset", "night"),
}
DATASETS: tuple[str, ...] = ("synth-sfm", "synth-whiten", "synth-tokyo", "synth-roxford", "synth-rparis",
                             "synth-aachen", "synth-robotcar", *CROSS_DOMAIN)
#: synth-robotcar's query conditions -> (renderer condition, manifest domain); RobotCar Seasons' dusk is the
#: renderer's sunset, its weather conditions map to the lighting domain they are shot in
ROBOTCAR_CONDITIONS: dict[str, tuple[str, str]] = {
    "day": ("day", "day"), "overcast": ("overcast", "day"), "dusk": ("sunset", "sunset"),
    "night": ("night", "night"), "night-rain": ("night-rain", "night"),
}
#: synth-robotcar's database condition (RobotCar Seasons maps the city in its overcast-reference traversal)
ROBOTCAR_REFERENCE: str = "overcast-reference"
ALL_FAMILIES: tuple[str, ...] = tuple(sr.FAMILIES)
ROXFORD_FAMILIES: tuple[str, ...] = ("gothic", "classic", "brick")
RPARIS_FAMILIES: tuple[str, ...] = ("haussmann", "plaster", "modern")


@dataclass(frozen=True)
class SyntheticParams:
    """``data.synthetic``: sizes and counts of the synthetic benchmark (defaults: a small benchmark for tests)."""

    seed: int = setting(default=0)
    max_side: int = setting("long side of a normal image", ge=16, default=96)
    small_max_side: int = setting("long side of the 'small' images the min-side filter drops", ge=8, default=64)
    small_fraction: float = setting("share of synth-sfm train/val images rendered small", ge=0, le=1, default=0.15)
    portrait_fraction: float = setting(ge=0, le=1, default=0.2)
    hfov_deg: tuple[float, float] = setting("field of view of the long side, uniform", ge=20, le=80,
                                            default=(55.0, 70.0))
    supersample: int = setting("render at this factor and area-downsample (anti-aliasing)", ge=1, default=2)
    texture_ppm: float = setting("texture pixels per metre", gt=0, default=8.0)
    train_scenes: int = setting(ge=0, default=80)
    train_views: int = setting("day views per training scene", ge=2, default=10)
    night_fraction: float = setting("unpaired night views per day view (training scenes)", ge=0, default=0.25)
    dusk_fraction: float = setting("of the paired training views, shot at dusk (SfM has evening photos too)",
                                   ge=0, le=1, default=0.2)
    day_night_pairs: int = setting("matching (night, day) pairs for the N/D recipe", ge=0, default=80)
    val_scenes: int = setting(ge=0, default=20)
    val_views: int = setting(ge=2, default=10)
    pair_min_overlap: float = setting("visible-facade IoU of a training query/positive pair", ge=0, le=1,
                                      default=0.3)
    whiten_scenes: int = setting(ge=0, default=80)
    whiten_views: int = setting(ge=2, default=8)
    tokyo_places: int = setting(ge=1, default=30)
    tokyo_directions: int = setting(ge=1, default=3)
    revisited_landmarks: int = setting(ge=1, default=10)
    revisited_queries: int = setting("per landmark", ge=1, default=2)
    revisited_views: int = setting("database views per landmark", ge=2, default=12)
    revisited_distractors: int = setting("distractor scenes (each seen revisited_distractor_views times)", ge=0,
                                         default=50)
    revisited_distractor_views: int = setting(ge=0, default=2)
    aachen_facades: int = setting(ge=1, default=10)
    aachen_grid_step_m: float = setting(gt=0, default=5.0)
    aachen_yaws_deg: tuple[float, ...] = setting(ge=-40, le=40, min_items=1, default=(-20.0, 0.0, 20.0))
    aachen_day_queries: int = setting(ge=0, default=30)
    aachen_night_queries: int = setting(ge=0, default=30)
    robotcar_facades: int = setting("facades along synth-robotcar's route", ge=1, default=6)
    robotcar_step_m: float = setting("spacing of synth-robotcar's reference (database) images along the route",
                                     gt=0, default=3.0)
    robotcar_yaws_deg: tuple[float, ...] = setting(
        "rear-camera yaw(s) of the reference traversal from the wall normal, negative: looking back along the "
        "route", ge=-55, le=55, min_items=1, default=(-30.0,))
    robotcar_queries: int = setting("synth-robotcar queries per condition (day, overcast, dusk, night, night-rain)",
                                    ge=0, default=10)
    robotcar_lateral_m: tuple[float, float] = setting(
        "lateral offset of a query from the reference lane (uniform, towards or away from the wall)", ge=0, le=6,
        default=(0.0, 3.0))
    localization_max_side: int = setting("long side of the synth-aachen and synth-robotcar images (local features "
                                         "need more pixels than a global descriptor)", ge=16, default=96)
    cross_domain_train_pairs: int = setting("training pairs of each synth-daco-* set", ge=1, default=60)
    cross_domain_val_pairs: int = setting("evaluation pairs of each synth-daco-* set (R@1 moves in steps of "
                                          "100 / this)", ge=2, default=30)
    lit_fraction: float = setting("windows lit at night", ge=0, le=1, default=0.5)
    lit_flip_prob: float = setting("per-view variation of the lit pattern", ge=0, le=1, default=0.08)
    landmark_boards: int = setting("billboards per landmark facade, drawn from 1..n (0: none)", ge=0, default=0)
    neighbour_boards: float = setting("chance that a neighbouring building carries a billboard", ge=0, le=1,
                                      default=0.0)
    datasets: tuple[str, ...] = setting("which synth-* datasets to write", choices=DATASETS, default=DATASETS)

    def __post_init__(self) -> None:
        """What a field's own rule cannot say (one line naming the key)."""
        if self.small_max_side > self.max_side:
            raise ConfigError("data.synthetic.small_max_side: must be at most max_side")
        if self.hfov_deg[0] > self.hfov_deg[1]:
            raise ConfigError("data.synthetic.hfov_deg: expected [low, high]")
        if self.tokyo_places * self.tokyo_directions < 2:
            raise ConfigError("data.synthetic.tokyo_places: at least 2 Tokyo scenes")
        if len(self.robotcar_lateral_m) != 2 or self.robotcar_lateral_m[0] > self.robotcar_lateral_m[1]:
            raise ConfigError("data.synthetic.robotcar_lateral_m: expected [low, high]")


# --- small helpers ------------------------------------------------------------------------------------

def _rng(seed: int, *key: int) -> np.random.Generator:
    """Independent stream per (dataset, scene, ...): changing one count never reshuffles the others."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=tuple(key)))


def _png_bytes(arr: np.ndarray) -> bytes:
    # PIL writes no timestamp or text chunk unless asked: same pixels -> same bytes
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _image_size(rng: np.random.Generator, p: SyntheticParams, small_fraction: float = 0.0,
                portrait_fraction: float | None = None) -> tuple[int, int]:
    long = p.small_max_side if rng.random() < small_fraction else p.max_side
    short = round(long * 0.75)
    pf = p.portrait_fraction if portrait_fraction is None else portrait_fraction
    return (short, long) if rng.random() < pf else (long, short)


def _camera(rng: np.random.Generator, p: SyntheticParams, size: tuple[int, int], center: np.ndarray,
            target: np.ndarray, roll_sd: float = 1.5) -> sr.Camera:
    k = sr.intrinsics(size[0], size[1], float(rng.uniform(*p.hfov_deg)))
    r, t = sr.look_at(center, target, float(rng.normal(0.0, roll_sd)))
    return sr.Camera(k, r, t, size[0], size[1])


#: Viewpoint families relative to a facade of width W and height H (centred at X = 0):
#: (distance range m, camera X range in W, target X range in W, target Y range in H, height range m)
VIEWS: dict[str, tuple[tuple[float, float], ...]] = {
    "train": ((14.0, 34.0), (-0.7, 0.7), (-0.25, 0.25), (0.25, 0.6), (1.5, 6.0)),
    "frontal": ((18.0, 28.0), (-0.15, 0.15), (-0.08, 0.08), (0.4, 0.5), (1.5, 2.0)),
    "near": ((16.0, 30.0), (-0.3, 0.3), (-0.12, 0.12), (0.35, 0.55), (1.5, 4.0)),
    "oblique": ((10.0, 20.0), (0.9, 1.5), (-0.15, 0.15), (0.3, 0.55), (1.5, 4.0)),
    "zoom": ((5.0, 9.0), (-0.35, 0.35), (-0.35, 0.35), (0.2, 0.7), (1.5, 3.0)),
    "far": ((45.0, 70.0), (-0.5, 0.5), (-0.1, 0.1), (0.3, 0.6), (1.5, 8.0)),
    "glimpse": ((12.0, 20.0), (0.55, 0.9), (0.62, 0.95), (0.3, 0.6), (1.5, 3.0)),
}


def sample_view(rng: np.random.Generator, p: SyntheticParams, facade: tuple[float, float, float, float],
                kind: str, size: tuple[int, int]) -> sr.Camera:
    """A camera of viewpoint family ``kind`` looking at ``facade`` (x0, y0, x1, y1)."""
    (d0, d1), (c0, c1), (t0, t1), (h0, h1), (e0, e1) = VIEWS[kind]
    x0, y0, x1, y1 = facade
    w, cx = x1 - x0, (x0 + x1) / 2
    side = 1.0 if rng.random() < 0.5 else -1.0
    mirror = side if kind in ("oblique", "glimpse") else 1.0  # these families sit to one side
    d = float(rng.uniform(d0, d1))
    camx = cx + mirror * w * float(rng.uniform(c0, c1))
    tx = cx + mirror * w * float(rng.uniform(t0, t1))
    # keep the optical axis within 55 degrees of the facade normal: beyond that the plane is seen
    # almost edge-on and nothing is recognisable (real photographs are not taken that way)
    camx = tx + float(np.clip(camx - tx, -d * np.tan(np.radians(55)), d * np.tan(np.radians(55))))
    target = np.array([tx, y0 + (y1 - y0) * float(rng.uniform(h0, h1)), 0.0])
    center = np.array([camx, float(rng.uniform(e0, e1)), d])
    return _camera(rng, p, size, center, target)


def overlap(vis_a: np.ndarray, vis_b: np.ndarray) -> float:
    """Intersection over union of two facade-visibility vectors (0 when neither sees it)."""
    union = np.count_nonzero(vis_a | vis_b)
    return float(np.count_nonzero(vis_a & vis_b) / union) if union else 0.0


def viewing_angle(cam: sr.Camera, facade: tuple[float, float, float, float]) -> float:
    """Angle (degrees) between the facade normal and the ray from the facade centre to the camera."""
    v = cam.center - np.array([(facade[0] + facade[2]) / 2, (facade[1] + facade[3]) / 2, 0.0])
    return float(np.degrees(np.arctan2(v[0], v[2])))


def apparent_scale(cam: sr.Camera, facade: tuple[float, float, float, float]) -> float:
    """Pixels per metre at the facade centre (focal length over depth)."""
    fc = np.array([(facade[0] + facade[2]) / 2, (facade[1] + facade[3]) / 2, 0.0])
    return float(cam.K[0, 0] / max(1e-6, (cam.R @ fc + cam.t)[2]))


def _unit(h: np.ndarray) -> list[list[float]]:
    # scale by the Frobenius norm, not h[2, 2]: h[2, 2] is the depth of the world origin, which can
    # be zero or negative for a camera far along the street
    return [[float(v) for v in row] for row in h / np.linalg.norm(h)]


def pose_of(cam: sr.Camera) -> tuple[float, ...]:
    """(qw, qx, qy, qz, tx, ty, tz) world->camera, as stored in the manifest."""
    q = matrix_to_quaternion(cam.R)
    return tuple(float(v) for v in (*q, *cam.t))


# --- dataset writer -----------------------------------------------------------------------------------

class _Writer:
    """Collects images, edge maps, records and camera entries of one dataset in a staging folder.

    The dataset is written into ``.<name>.staging-*`` next to its final place and renamed into
    place only when complete: the folder is the atomic unit (a killed job leaves no half
    dataset that looks finished), so single files inside it need no temporary names of their own.
    """

    def __init__(self, out_root: Path, name: str) -> None:
        self.name = name
        self.final = out_root / name
        out_root.mkdir(parents=True, exist_ok=True)
        self.root = shared_temp_dir(out_root, prefix=f".{name}.staging-")
        self.records: list[ImageRecord] = []
        self.cameras: dict[str, Any] = {}
        self.facades: dict[str, list[float]] = {}

    def add(self, rel: str, image_id: str, split: str, domain: str, cluster: str, place: str,
            img: np.ndarray, edges: np.ndarray, cam: sr.Camera, with_pose: bool = False) -> None:
        self.add_rendering("images", rel, img)
        self.add_rendering("edges", rel, edges)
        # a posed view also carries its intrinsics: the localization splits' paradigms 2a/2b compute with them
        self.records.append(ImageRecord(rel, image_id, split, domain, cluster, place, cam.width, cam.height,
                                        pose_of(cam) if with_pose else None, pinhole(cam.K) if with_pose else None))
        k = cam.K
        self.cameras[image_id] = {"fx": float(k[0, 0]), "fy": float(k[1, 1]), "cx": float(k[0, 2]),
                                  "cy": float(k[1, 2]), "width": cam.width, "height": cam.height,
                                  "pose": list(pose_of(cam)), "homography": _unit(cam.plane_homography())}

    def add_rendering(self, folder: str, rel: str, img: np.ndarray) -> None:
        """Another rendering of view ``rel`` (same camera) under ``folder``, in no manifest: synth-sfm's
        :data:`NIGHT_TWINS` for the oracle translator, a synth-daco-* set's :data:`TRANSLATIONS`."""
        path = self.root / folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_png_bytes(img))

    def finish(self, gt: GroundTruth, metadata: dict[str, Any] | None = None) -> Path:
        atomic_write_json(self.root / "cameras.json", {
            "convention": ("world->camera pose (qw, qx, qy, qz, tx, ty, tz), OpenCV camera axes, pixel centres at "
                           "integer coordinates; facades lie in the plane Z = 0 (X along the street, Y up, metres); "
                           "homography maps (X, Y, 1) on that plane to pixels"),
            "images": self.cameras,
            "facades": self.facades,
        })
        write_dataset(self.root, self.name, self.records, gt, image_root="images", source="synthetic",
                      metadata=metadata)
        if self.final.exists():
            meta = self.final / "dataset.json"
            # an empty folder is fine (Snakemake creates its outputs' folders before the job runs)
            empty = not any(self.final.iterdir())
            if not empty and (not meta.is_file() or '"synthetic"' not in meta.read_text(encoding="utf-8")):
                shutil.rmtree(self.root)
                raise DarksideError(f"{self.final}: exists and is not a synthetic dataset; refusing to replace it")
            old = self.final.with_name(f".{self.name}.old-{os.getpid()}")
            os.replace(self.final, old)
            os.replace(self.root, self.final)
            shutil.rmtree(old)
        else:
            os.replace(self.root, self.final)
        return self.final

    def abort(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def _writing(out_root: Path, name: str) -> Iterator[_Writer]:
    w = _Writer(out_root, name)
    try:
        yield w
    except BaseException:
        w.abort()
        raise


class _Scene:
    """A scene built once: spec, texture layers, edge segments."""

    def __init__(self, spec: sr.SceneSpec, rng: np.random.Generator, p: SyntheticParams) -> None:
        self.spec = spec
        self.layers = sr.build_layers(spec, rng, ppm=p.texture_ppm, lit_fraction=p.lit_fraction)
        self.segments = sr.edge_segments(spec)
        self.p = p

    @property
    def facade(self) -> tuple[float, float, float, float]:
        return self.spec.facades[0]

    def render(self, cam: sr.Camera, condition: str, rng: np.random.Generator,
               lit: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if condition in sr.LIT_CONDITIONS and lit is None:
            lit = sr.lit_draw(self.layers, rng, self.p.lit_flip_prob)
        img = sr.render(self.layers, cam, condition, rng, ss=self.p.supersample, lit=lit)
        return img, sr.edge_map(self.segments, cam)


def _shoot(w: _Writer, scene: _Scene, rng: np.random.Generator, kind: str, rel: str, iid: str, split: str,
           cluster: str, cond: str = "day", small_fraction: float = 0.0) -> sr.Camera:
    """Render a view of viewpoint family ``kind`` under ``cond`` and add it to ``w``; return its camera."""
    cam = sample_view(rng, scene.p, scene.facade, kind, _image_size(rng, scene.p, small_fraction))
    img, edges = scene.render(cam, cond, rng)
    w.add(rel, iid, split, cond, cluster, cluster, img, edges, cam)
    return cam


def _landmark(p: SyntheticParams, key: tuple[int, ...],
              families: tuple[str, ...]) -> tuple[_Scene, np.random.Generator]:
    rng = _rng(p.seed, *key)
    family = families[int(rng.integers(0, len(families)))]
    scene = _Scene(sr.landmark_scene(rng, family, ALL_FAMILIES, boards=p.landmark_boards,
                                     neighbour_boards=p.neighbour_boards), rng, p)
    return scene, rng


# --- synth-sfm and synth-whiten -------------------------------------------------------------------

def _training_split(w: _Writer, p: SyntheticParams, ds_code: int, split: str, first: int, n_scenes: int,
                    n_views: int, prefix: str, night: bool, pairs_out: list[tuple[str, str]],
                    dn_pairs: list[tuple[str, str]] | None, n_dn: int, twins: bool = False) -> None:
    """Day views (+ unpaired night views and N/D pairs when ``night``, + night twins of the day views
    when ``twins``) of scenes first..first+n-1."""
    n_night_total = round(p.night_fraction * n_views * n_scenes) if night else 0
    for i in range(n_scenes):
        s = first + i
        scene, rng = _landmark(p, (ds_code, s), ALL_FAMILIES)
        cluster = f"{prefix}-{s:04d}"
        w.facades[cluster] = list(scene.facade)
        day: list[tuple[str, sr.Camera, np.ndarray, str]] = []
        for v in range(n_views):
            size = _image_size(rng, p, p.small_fraction)
            cam = sample_view(rng, p, scene.facade, "train", size)
            # a photo collection is not all noon: some paired views are dusk shots. Without them a
            # day-only embedding would never see an evening light and fail even day->sunset, which
            # day-trained networks on real SfM do not (Dark Side Table 6: D->S 97.7)
            cond = "sunset" if rng.random() < p.dusk_fraction else "day"
            img, edges = scene.render(cam, cond, rng)
            iid = f"{cluster}-d{v:02d}"
            w.add(f"{split}/{cluster}/{iid}.png", iid, split, cond, cluster, cluster, img, edges, cam)
            if twins:
                # the oracle's night: the benchmark's own renderer at the same camera, from a stream of its
                # own so that writing twins changes no other image
                twin, _ = scene.render(cam, "night", _rng(p.seed, ds_code, s, 7, v))
                w.add_rendering(NIGHT_TWINS, f"{split}/{cluster}/{iid}.png", twin)
            day.append((iid, cam, sr.facade_visibility(scene.facade, cam), cond))
        # query/positive pairs: each day view with its most overlapping other view (SfM co-visibility)
        for qi, (qid, _, qvis, _) in enumerate(day):
            best, best_o = None, p.pair_min_overlap
            for pi, (pid, _, pvis, _) in enumerate(day):
                o = overlap(qvis, pvis)
                if pi != qi and o >= best_o:
                    best, best_o = pid, o
            if best is not None:
                pairs_out.append((qid, best))
        # unpaired night views: own viewpoints, never a day image's pose
        n_night = n_night_total // n_scenes + (1 if i < n_night_total % n_scenes else 0)
        for v in range(n_night):
            iid = f"{cluster}-n{v:02d}"
            _shoot(w, scene, rng, "train", f"{split}/{cluster}/{iid}.png", iid, split, cluster, "night",
                   p.small_fraction)
        # N/D pairs: a night view near (not at) one day view's pose
        if dn_pairs is not None and i < n_dn:
            noon = [d for d in day if d[3] == "day"] or day
            did, dcam, _, _ = noon[int(rng.integers(0, len(noon)))]
            c = dcam.center + np.array([rng.normal(0, 1.0), rng.normal(0, 0.3), rng.normal(0, 1.0)])
            r, t = sr.look_at(c, c + dcam.R[2] * 20 + rng.normal(0, 0.5, 3), float(rng.normal(0, 1.5)))
            cam = sr.Camera(dcam.K, r, t, dcam.width, dcam.height)
            img, edges = scene.render(cam, "night", rng)
            iid = f"{cluster}-p00"
            w.add(f"{split}/{cluster}/{iid}.png", iid, split, "night", cluster, cluster, img, edges, cam)
            dn_pairs.append((iid, did))


def write_sfm(out_root: Path, p: SyntheticParams) -> Path:
    """``synth-sfm``: train split (day + night + N/D pairs) and val split."""
    with _writing(out_root, "synth-sfm") as w:
        train_pairs: list[tuple[str, str]] = []
        val_pairs: list[tuple[str, str]] = []
        dn: list[tuple[str, str]] = []
        _training_split(w, p, 1, "train", 0, p.train_scenes, p.train_views, "sfm", True, train_pairs, dn,
                        p.day_night_pairs, twins=True)
        _training_split(w, p, 1, "val", p.train_scenes, p.val_scenes, p.val_views, "sfm", False, val_pairs,
                        None, 0, twins=True)
        gt = GroundTruth(protocol="training", pairs={"train": train_pairs, "val": val_pairs}, day_night_pairs=dn)
        return w.finish(gt)


def write_whiten(out_root: Path, p: SyntheticParams) -> Path:
    """``synth-whiten``: day views of other scenes with pairs for the learned whitening."""
    with _writing(out_root, "synth-whiten") as w:
        pairs: list[tuple[str, str]] = []
        _training_split(w, p, 2, "whiten", 0, p.whiten_scenes, p.whiten_views, "wht", False, pairs, None, 0)
        return w.finish(GroundTruth(protocol="training", pairs={"whiten": pairs}))


# --- synth-tokyo + calibration ----------------------------------------------------------------------

def _lightness(img: np.ndarray) -> np.ndarray:
    """L* (0..100) of a uint8 RGB image."""
    return cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[..., 0]


def lab_invert(img: np.ndarray) -> np.ndarray:
    """Invert L* in Lab and convert back (the 'LAB inversion' baseline of the paper), uint8 in and out.

    The inversion itself is :func:`~darkside.data.photometric.invert_lightness`, the one the
    ``lab-inversion`` translator applies, so the calibration measures the baseline that is trained.
    """
    rgb = np.clip(invert_lightness(img.astype(np.float32) / 255.0), 0, 1)
    return (rgb * 255 + 0.5).astype(np.uint8)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two equally sized arrays (0 when one is constant)."""
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def tiny_descriptor(img: np.ndarray, size: tuple[int, int] = (16, 12)) -> np.ndarray:
    """Downsampled grayscale, zero-mean, unit-norm: a descriptor with no learned invariance."""
    g = cv2.resize(_lightness(img), size, interpolation=cv2.INTER_AREA).ravel().astype(np.float64)
    g -= g.mean()
    n = np.linalg.norm(g)
    return g / n if n > 0 else g


def single_positive_map(queries: np.ndarray, database: np.ndarray, positive: np.ndarray) -> float:
    """mAP when query i has exactly one positive, database row ``positive[i]`` (AP = 1 / rank)."""
    sims = queries @ database.T
    pos = sims[np.arange(len(queries)), positive]
    ranks = 1 + (sims > pos[:, None]).sum(1)
    return float(np.mean(1.0 / ranks))


def write_tokyo(out_root: Path, p: SyntheticParams) -> tuple[Path, dict[str, Any]]:
    """``synth-tokyo`` and the night-model calibration measured on its views."""
    cal: dict[str, list[float]] = {k: [] for k in ("night_vs_night", "inverted_day_vs_night", "day_vs_night",
                                                   "day_vs_sunset", "edges_day_vs_night")}
    light: dict[str, list[float]] = {c: [] for c in sr.CONDITIONS}
    db_desc, q_day, q_night, q_sunset = [], [], [], []
    with _writing(out_root, "synth-tokyo") as w:
        queries: list[Query] = []
        for pl in range(p.tokyo_places):
            place = f"tky-p{pl:03d}"
            for d in range(p.tokyo_directions):
                scene, rng = _landmark(p, (3, pl, d), ALL_FAMILIES)
                cluster = f"{place}-d{d}"
                w.facades[cluster] = list(scene.facade)
                size = (p.max_side, round(p.max_side * 0.75))
                cam = sample_view(rng, p, scene.facade, "near", size)
                ids, imgs = [], {}
                for cond in sr.CONDITIONS:
                    img, edges = scene.render(cam, cond, rng)
                    iid = f"{cluster}-{cond}"
                    w.add(f"test/{place}/{iid}.png", iid, "test", cond, cluster, place, img, edges, cam)
                    ids.append(iid)
                    imgs[cond] = img
                for iid in ids:
                    queries.append(Query(iid, positives=[o for o in ids if o != iid], junk=[iid]))
                # calibration: a second night shot of the same view, LAB-inverted day, and a nearby
                # second viewpoint for the tiny-descriptor retrieval check (not written to disk)
                crng = _rng(p.seed, 99, pl, d)
                night2, _ = scene.render(cam, "night", crng)
                ld, ln, ln2 = _lightness(imgs["day"]), _lightness(imgs["night"]), _lightness(night2)
                cal["night_vs_night"].append(ncc(ln, ln2))
                cal["inverted_day_vs_night"].append(ncc(_lightness(lab_invert(imgs["day"])), ln))
                cal["day_vs_night"].append(ncc(ld, ln))
                cal["day_vs_sunset"].append(ncc(ld, _lightness(imgs["sunset"])))
                cal["edges_day_vs_night"].append(ncc(_grad(ld), _grad(ln)))
                for cond in sr.CONDITIONS:
                    light[cond].append(float(np.median(_lightness(imgs[cond]))))
                cam2 = sample_view(crng, p, scene.facade, "near", size)
                db_desc.append(tiny_descriptor(imgs["day"]))
                q_day.append(tiny_descriptor(scene.render(cam2, "day", crng)[0]))
                q_sunset.append(tiny_descriptor(scene.render(cam2, "sunset", crng)[0]))
                q_night.append(tiny_descriptor(scene.render(cam2, "night", crng)[0]))
        path = w.finish(GroundTruth(protocol="tokyo", queries=queries, database_split=None))
    db = np.array(db_desc)
    gt_idx = np.arange(len(db))
    means = {k: float(np.mean(v)) for k, v in cal.items()}
    report = {
        "views": len(db),
        "ncc_lightness": {k: v for k, v in means.items() if k != "edges_day_vs_night"},
        "ncc_gradient_day_vs_night": means["edges_day_vs_night"],
        "median_lightness": {k: float(np.mean(v)) for k, v in light.items()},
        "tiny_retrieval": {
            "descriptor": "L* downsampled to 16x12, zero mean, L2; queries from a second nearby viewpoint, "
                          "database = the day images; one positive per query",
            "map_day_to_day": single_positive_map(np.array(q_day), db, gt_idx),
            "map_sunset_to_day": single_positive_map(np.array(q_sunset), db, gt_idx),
            "map_night_to_day": single_positive_map(np.array(q_night), db, gt_idx),
        },
    }
    report["checks"] = {
        "inverted_well_below_night_vs_night":
            means["inverted_day_vs_night"] < means["night_vs_night"] - 0.3,
        "night_gap": report["tiny_retrieval"]["map_night_to_day"] < 0.8 * report["tiny_retrieval"]["map_day_to_day"],
        "night_keeps_structure": means["edges_day_vs_night"] > 0.1,
    }
    return path, report


def _grad(lum: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


# --- synth-roxford / synth-rparis ------------------------------------------------------------------

#: database viewpoint families per landmark, cycled: mostly near/oblique, some zoom/far/glimpse
_DB_KINDS: tuple[str, ...] = ("near", "oblique", "near", "zoom", "far", "oblique", "near", "glimpse",
                              "oblique", "zoom", "near", "far")


def revisited_label(q_vis: np.ndarray, q_cam: sr.Camera, d_vis: np.ndarray, d_cam: sr.Camera,
                    facade: tuple[float, float, float, float]) -> str:
    """easy / hard / junk / none of a database view of the query's landmark, from the geometry.

    ``covered`` is the share of the query's visible facade that the database view also sees.
    Junk: tiny overlap (under 25 %). Easy: most of it (at least 60 %) at a modest change of
    viewing angle (at most 20 degrees) and scale (within a factor 1.6). Hard: everything else
    (strong viewpoint change, scale change or partial view).
    """
    nq = np.count_nonzero(q_vis)
    covered = np.count_nonzero(q_vis & d_vis) / nq if nq else 0.0
    if covered < 0.25:
        return "junk"
    dang = abs(viewing_angle(q_cam, facade) - viewing_angle(d_cam, facade))
    scale = apparent_scale(d_cam, facade) / apparent_scale(q_cam, facade)
    if covered >= 0.6 and dang <= 20.0 and 1 / 1.6 <= scale <= 1.6:
        return "easy"
    return "hard"


def write_revisited(out_root: Path, p: SyntheticParams, name: str, ds_code: int,
                    families: tuple[str, ...]) -> Path:
    """Oxford/Paris-like dataset: landmarks + distractors, queries with boxes, easy/hard/junk."""
    prefix = name.split("-")[1][:3]
    with _writing(out_root, name) as w:
        queries: list[Query] = []
        for lm in range(p.revisited_landmarks):
            scene, rng = _landmark(p, (ds_code, lm), families)
            cluster = f"{prefix}-l{lm:02d}"
            w.facades[cluster] = list(scene.facade)
            qs = []
            for qi in range(p.revisited_queries):
                iid = f"{cluster}-q{qi}"
                cam = _shoot(w, scene, rng, "frontal", f"query/{iid}.png", iid, "query", cluster)
                qs.append((iid, cam, sr.facade_visibility(scene.facade, cam)))
            db = []
            for v in range(p.revisited_views):
                iid = f"{cluster}-{v:02d}"
                cam = _shoot(w, scene, rng, _DB_KINDS[v % len(_DB_KINDS)], f"database/{cluster}/{iid}.png", iid,
                             "database", cluster)
                db.append((iid, cam, sr.facade_visibility(scene.facade, cam)))
            for qid, qcam, qvis in qs:
                lab: dict[str, list[str]] = {"easy": [], "hard": [], "junk": []}
                for did, dcam, dvis in db:
                    lab[revisited_label(qvis, qcam, dvis, dcam, scene.facade)].append(did)
                queries.append(Query(qid, easy=lab["easy"], hard=lab["hard"], junk=lab["junk"],
                                     positives=lab["easy"] + lab["hard"], bbox=sr.facade_bbox(scene.facade, qcam)))
        for x in range(p.revisited_distractors):
            scene, rng = _landmark(p, (ds_code, 1000 + x), families)
            cluster = f"{prefix}-x{x:03d}"
            w.facades[cluster] = list(scene.facade)
            for v in range(p.revisited_distractor_views):
                iid = f"{cluster}-{v:02d}"
                _shoot(w, scene, rng, "train", f"database/distractors/{iid}.png", iid, "database", cluster)
        return w.finish(GroundTruth(protocol="revisited", queries=queries, database_split="database"))


# --- synth-daco-night / -fog / -rain ----------------------------------------------------------------

def write_cross_domain(out_root: Path, p: SyntheticParams, name: str) -> Path:
    """A DaCo task (:data:`CROSS_DOMAIN`): pair k is one 'near' view of landmark scene k rendered in domain A's
    and domain B's condition (as Foggy Cityscapes and SYNTHIA are pixel-aligned and Tokyo's pairs are one
    viewpoint), each with its own draws; ``pairs[split]`` lists (B, A) ids. Training images also get their
    translation into the other domain (:data:`TRANSLATIONS`), drawn from a generator of their own."""
    cond_a, cond_b, dom_a, dom_b = CROSS_DOMAIN[name]
    code = 10 + list(CROSS_DOMAIN).index(name)
    size = (p.max_side, round(p.max_side * 0.75))
    pairs: dict[str, list[tuple[str, str]]] = {"train": [], "val": []}
    with _writing(out_root, name) as w:
        splits = ["train"] * p.cross_domain_train_pairs + ["val"] * p.cross_domain_val_pairs
        for k, split in enumerate(splits):
            scene, rng = _landmark(p, (code, k), ALL_FAMILIES)
            cluster = f"pair{k:05d}"
            w.facades[cluster] = list(scene.facade)
            cam = sample_view(rng, p, scene.facade, "near", size)
            ids = []
            for side, cond, dom, other in (("a", cond_a, dom_a, cond_b), ("b", cond_b, dom_b, cond_a)):
                img, edges = scene.render(cam, cond, rng)
                rel = f"{split}/domain_{side}/{k:05d}.png"
                w.add(rel, rel, split, dom, cluster, cluster, img, edges, cam)
                ids.append(rel)
                if split == "train":
                    translation = scene.render(cam, other, _rng(p.seed, code, k, ord(side)))[0]
                    w.add_rendering(TRANSLATIONS, rel, translation)
            pairs[split].append((ids[1], ids[0]))
        return w.finish(GroundTruth(protocol="cross_domain", database_split="val", pairs=pairs))


# --- synth-aachen ------------------------------------------------------------------------------------

def _street_camera(p: SyntheticParams, rng: np.random.Generator, x: float, dist: float, height: float,
                   yaw_deg: float, size: tuple[int, int], hfov: float | None = None) -> sr.Camera:
    """Camera at (x, height, dist) looking towards the street wall, turned by ``yaw_deg``."""
    yaw = np.radians(yaw_deg)
    center = np.array([x, height, dist])
    target = center + np.array([np.sin(yaw), 0.12, -np.cos(yaw)]) * 10.0  # slightly upwards
    k = sr.intrinsics(size[0], size[1], hfov if hfov is not None else float(np.mean(p.hfov_deg)))
    r, t = sr.look_at(center, target, 0.0)
    return sr.Camera(k, r, t, size[0], size[1])


def _facade_hit(spec: sr.SceneSpec, cam: sr.Camera, prefix: str) -> str:
    """The cluster of a street view: the facade its optical axis hits (the 'landmark' the view shows)."""
    c, a = cam.center, cam.R[2]
    x = c[0] + a[0] * (-c[2] / a[2]) if a[2] < 0 else c[0]
    for i, f in enumerate(spec.facades):
        if f[0] <= x < f[2]:
            return f"{prefix}-f{i:02d}"
    return f"{prefix}-f00" if x < 0 else f"{prefix}-f{len(spec.facades) - 1:02d}"


def _localization_size(p: SyntheticParams) -> tuple[int, int]:
    """Landscape 4:3 at ``localization_max_side``: SIFT finds next to nothing in a 96-pixel image."""
    return p.localization_max_side, round(p.localization_max_side * 0.75)


def _pose_positives(cam: sr.Camera, db: list[tuple[str, sr.Camera]]) -> list[str]:
    """Database views within (5 m, 10 deg) of a query: the coarsest localization threshold."""
    return [did for did, dcam in db if np.linalg.norm(dcam.center - cam.center) <= 5.0
            and rotation_angle_deg(dcam.R, cam.R) <= 10.0]


def write_aachen(out_root: Path, p: SyntheticParams) -> Path:
    """Localization split: a street; database on a pose grid (day); day and night queries nearby."""
    rng = _rng(p.seed, 6, 0)
    spec = sr.street_scene(rng, ALL_FAMILIES, p.aachen_facades, boards=p.landmark_boards,
                           neighbour_boards=p.neighbour_boards)
    scene = _Scene(spec, rng, p)
    size = _localization_size(p)
    dist, height = 16.0, 1.7
    total = spec.facades[-1][2]
    xs = np.arange(p.aachen_grid_step_m / 2, total, p.aachen_grid_step_m)

    def facade_at(cam: sr.Camera) -> str:
        return _facade_hit(spec, cam, "aac")

    with _writing(out_root, "synth-aachen") as w:
        for i, f in enumerate(spec.facades):
            w.facades[f"aac-f{i:02d}"] = list(f)
        db: list[tuple[str, sr.Camera]] = []
        for gi, x in enumerate(xs):
            for yi, yaw in enumerate(p.aachen_yaws_deg):
                cam = _street_camera(p, rng, float(x), dist, height, yaw, size)
                img, edges = scene.render(cam, "day", rng)
                iid = f"aac-db-{gi:03d}-{yi}"
                w.add(f"database/{iid}.png", iid, "database", "day", facade_at(cam), f"aac-x{gi:03d}", img, edges,
                      cam, with_pose=True)
                db.append((iid, cam))
        queries: list[Query] = []
        n_q = p.aachen_day_queries + p.aachen_night_queries
        for qi in range(n_q):
            cond = "day" if qi < p.aachen_day_queries else "night"
            # a random grid pose, moved by 0.3-4 m and turned by up to 8 degrees: a correct top-1
            # pose copy is within (5 m, 10 deg), within (0.5 m, 5 deg) only rarely
            _, base = db[int(rng.integers(0, len(db)))]
            ang = float(rng.uniform(0, 2 * np.pi))
            mag = float(rng.uniform(0.3, 4.0))
            c = base.center + np.array([mag * np.cos(ang), float(rng.normal(0, 0.1)), mag * np.sin(ang)])
            base_yaw = float(np.degrees(np.arctan2(base.R[2][0], -base.R[2][2])))
            yaw = base_yaw + float(rng.uniform(-8.0, 8.0))
            cam = _street_camera(p, rng, float(c[0]), float(c[2]), float(c[1]), yaw, size,
                                 hfov=float(rng.uniform(*p.hfov_deg)))
            img, edges = scene.render(cam, cond, rng)
            iid = f"aac-q{qi:03d}-{cond}"
            w.add(f"query/{cond}/{iid}.png", iid, "query", cond, facade_at(cam),
                  f"aac-x{int(np.argmin(np.abs(xs - c[0]))):03d}", img, edges, cam, with_pose=True)
            queries.append(Query(iid, positives=_pose_positives(cam, db)))
        return w.finish(GroundTruth(protocol="localization", queries=queries, database_split="database"))


# --- synth-robotcar ----------------------------------------------------------------------------------

#: the vehicle's lane: distance from the facades, camera height (roof), pitch of the rear camera (m, m, deg)
ROBOTCAR_LANE: tuple[float, float, float] = (12.0, 2.2, 6.0)
#: made-up start times of each traversal (microseconds since 1970, in RobotCar Seasons' 2014-2015 range) and
#: the vehicle's speed: an image's timestamp is its traversal's start plus the time driven to its position
ROBOTCAR_EPOCH_US: dict[str, int] = {
    ROBOTCAR_REFERENCE: 1417176000000000, "night": 1418235000000000, "night-rain": 1418840000000000,
    "dusk": 1424450000000000, "day": 1425997000000000, "overcast": 1432293000000000,
}
ROBOTCAR_SPEED_MPS: float = 6.0


def _route_camera(k: np.ndarray, size: tuple[int, int], center: np.ndarray, yaw_deg: float, pitch_deg: float,
                  roll_deg: float = 0.0) -> sr.Camera:
    """Camera at ``center`` turned ``yaw_deg`` from the wall normal (positive: towards +X) and ``pitch_deg`` up."""
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    direction = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), -np.cos(yaw) * np.cos(pitch)])
    r, t = sr.look_at(center, center + direction * 10.0, roll_deg)
    return sr.Camera(k, r, t, size[0], size[1])


def _timestamps(condition: str, xs: np.ndarray, start: float) -> list[int]:
    """Increasing integer timestamps of positions ``xs`` (sorted) driven from ``start`` in one traversal."""
    out: list[int] = []
    for x in xs:
        ts = ROBOTCAR_EPOCH_US[condition] + round((float(x) - start) / ROBOTCAR_SPEED_MPS * 1e6)
        out.append(max(ts, out[-1] + 1) if out else ts)
    return out


def write_robotcar(out_root: Path, p: SyntheticParams) -> Path:
    """RobotCar Seasons-like localization split: a vehicle drives along a street of facades (+X).

    The database is the overcast reference traversal, one rear-camera image every ``robotcar_step_m``; the
    queries are other traversals in the conditions of :data:`ROBOTCAR_CONDITIONS`, at positions between the
    reference steps, in another part of the lane (``robotcar_lateral_m``) and with the small yaw, pitch and roll
    changes of a differently parked camera. Image ids follow RobotCar Seasons (``<condition>/rear/<timestamp>``)
    so that a pose export names them as the benchmark does; all images share one camera, as the rear camera
    of the real vehicle does.
    """
    rng = _rng(p.seed, 7, 0)
    spec = sr.street_scene(rng, ALL_FAMILIES, p.robotcar_facades, boards=p.landmark_boards,
                           neighbour_boards=p.neighbour_boards)
    scene = _Scene(spec, rng, p)
    size = _localization_size(p)
    k = sr.intrinsics(size[0], size[1], float(np.mean(p.hfov_deg)))
    dist, height, pitch = ROBOTCAR_LANE
    # RobotCar's rear camera looks back along the road and sees the facades of both sides receding. On a
    # planar world the road direction sees the wall edge-on (nothing to recognise), so the rear camera is turned
    # 25-40 degrees from the wall normal instead: the strongly oblique, foreshortened view of the real one.
    # The route is shifted so that the mean optical axis sweeps the facades from start to end.
    shift = dist * float(np.tan(np.radians(np.mean(p.robotcar_yaws_deg))))
    total = spec.facades[-1][2]
    xs = np.arange(p.robotcar_step_m / 2, total, p.robotcar_step_m) - shift
    start = float(xs[0]) - p.robotcar_step_m

    def place_of(x: float) -> str:
        return f"rob-x{int(np.argmin(np.abs(xs - x))):03d}"

    with _writing(out_root, "synth-robotcar") as w:
        for i, f in enumerate(spec.facades):
            w.facades[f"rob-f{i:02d}"] = list(f)
        db: list[tuple[str, sr.Camera]] = []
        drng = _rng(p.seed, 7, 1)
        stamps = _timestamps(ROBOTCAR_REFERENCE, np.repeat(xs, len(p.robotcar_yaws_deg)), start)
        for gi, x in enumerate(xs):
            for yi, yaw in enumerate(p.robotcar_yaws_deg):
                cam = _route_camera(k, size, np.array([float(x), height, dist]), yaw, pitch)
                img, edges = scene.render(cam, "overcast", drng)
                iid = f"{ROBOTCAR_REFERENCE}/rear/{stamps[gi * len(p.robotcar_yaws_deg) + yi]}.png"
                w.add(f"database/{iid}", iid, "database", "day", _facade_hit(spec, cam, "rob"), place_of(float(x)),
                      img, edges, cam, with_pose=True)
                db.append((iid, cam))
        queries: list[Query] = []
        for ci, (cond, (render_cond, domain)) in enumerate(ROBOTCAR_CONDITIONS.items()):
            qrng = _rng(p.seed, 7, 2, ci)  # one stream per condition: a count changes no other condition
            poses = []
            for _ in range(p.robotcar_queries):
                # between two reference steps (never at one), in another part of the lane
                i = int(qrng.integers(0, max(1, len(xs) - 1)))
                x = float(xs[i]) + p.robotcar_step_m * float(qrng.uniform(0.15, 0.85))
                side = 1.0 if qrng.random() < 0.5 else -1.0
                z = dist + side * float(qrng.uniform(*p.robotcar_lateral_m))
                y = height + float(qrng.normal(0.0, 0.05))
                yaw = p.robotcar_yaws_deg[int(qrng.integers(0, len(p.robotcar_yaws_deg)))] \
                    + float(qrng.uniform(-5.0, 5.0))
                poses.append((x, y, z, yaw, pitch + float(qrng.uniform(-2.0, 2.0)), float(qrng.normal(0.0, 0.7))))
            poses.sort(key=lambda q: q[0])  # a traversal drives the route in order: its timestamps increase
            for (x, y, z, yaw, pt, roll), ts in zip(poses, _timestamps(cond, np.array([q[0] for q in poses]), start),
                                                    strict=True):
                cam = _route_camera(k, size, np.array([x, y, z]), yaw, pt, roll)
                img, edges = scene.render(cam, render_cond, qrng)
                iid = f"{cond}/rear/{ts}.png"
                w.add(f"query/{iid}", iid, "query", domain, _facade_hit(spec, cam, "rob"), place_of(x), img, edges,
                      cam, with_pose=True)
                queries.append(Query(iid, positives=_pose_positives(cam, db)))
        return w.finish(GroundTruth(protocol="localization", queries=queries, database_split="database"),
                        # RobotCar Seasons' names on visuallocalization.net: rear/<timestamp>
                        metadata={"ltvl_style": "RobotCar_Seasons", "ltvl_cameras": ["rear"]})


# --- entry points -------------------------------------------------------------------------------------

def generate(out_root: Path, params: SyntheticParams, calibration_path: Path | None = None) -> list[Path]:
    """Write every requested ``synth-*`` dataset under ``out_root``; return the dataset folders.

    The calibration report goes to ``out_root/synthetic-calibration.json`` (and also to
    ``calibration_path`` when given, e.g. the pipeline's metrics folder). Same params -> same bytes.
    """
    out_root = Path(out_root)
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # images are tiny: OpenCV's worker threads cost more than they save
    try:
        return _generate(out_root, params, calibration_path)
    finally:
        cv2.setNumThreads(threads)


def _generate(out_root: Path, params: SyntheticParams, calibration_path: Path | None) -> list[Path]:
    out: list[Path] = []
    cal: dict[str, Any] | None = None
    for name in params.datasets:  # every name is one of DATASETS (the setting's choices)
        if name == "synth-tokyo":
            path, cal = write_tokyo(out_root, params)
        elif name in CROSS_DOMAIN:
            path = write_cross_domain(out_root, params, name)
        elif name in ("synth-roxford", "synth-rparis"):
            code, families = (4, ROXFORD_FAMILIES) if name == "synth-roxford" else (5, RPARIS_FAMILIES)
            path = write_revisited(out_root, params, name, code, families)
        else:
            write = {"synth-sfm": write_sfm, "synth-whiten": write_whiten, "synth-aachen": write_aachen,
                     "synth-robotcar": write_robotcar}[name]
            path = write(out_root, params)
        out.append(path)
    if cal is not None:
        # no timings in here: the calibration file must be byte-identical across runs
        cal["params"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(params).items()}
        atomic_write_json(out_root / "synthetic-calibration.json", cal)
        if calibration_path is not None:
            atomic_write_json(calibration_path, cal)
    return out


def contact_sheet(tokyo_dir: Path, out_png: Path, n_views: int = 6) -> Path:
    """Figure: the same Tokyo-like views at day / sunset / night and the day edge map (one row each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from darkside.data.images import load_rgb
    from darkside.data.manifest import load_manifest

    man = load_manifest(tokyo_dir)
    by_cluster: dict[str, dict[str, list[Any]]] = {}
    for r in man.records:
        by_cluster.setdefault(r.cluster, {}).setdefault(r.domain, []).append(r)
    # one view at three lightings (the Tokyo layout); a training scene's views are different poses
    clusters = [c for c in sorted(by_cluster)
                if all(len(by_cluster[c].get(d, [])) == 1 for d in sr.CONDITIONS)][:n_views]
    if not clusters:
        raise DarksideError(f"{tokyo_dir / 'manifest.csv'}: no view rendered once at each of day, sunset and night")
    fig, axes = plt.subplots(len(clusters), 4, figsize=(8, 1.6 * len(clusters)), squeeze=False)
    for row, c in enumerate(clusters):
        recs = {d: by_cluster[c][d][0] for d in sr.CONDITIONS}
        panels = [np.asarray(load_rgb(man.image_path(recs[d]))) for d in sr.CONDITIONS]
        panels.append(np.asarray(load_rgb(man.root / "edges" / recs["day"].path)))
        for col, (ax, im) in enumerate(zip(axes[row], panels, strict=True)):
            ax.imshow(im, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title((*sr.CONDITIONS, "edges")[col], fontsize=9)
        axes[row][0].set_ylabel(c, fontsize=7)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return Path(out_png)
