"""The embedded synthetic benchmark: determinism, ground truth, geometry, night model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from darkside.data import synthetic_render as sr
from darkside.data.manifest import load_groundtruth, load_manifest
from darkside.data.synthetic import (
    DATASETS,
    SyntheticParams,
    contact_sheet,
    generate,
    lab_invert,
    ncc,
    overlap,
    revisited_label,
    rotation_angle_deg,
    single_positive_map,
)
from darkside.errors import DarksideError
from darkside.geometry import matrix_to_quaternion, quaternion_to_matrix
from darkside.settings import parse

SMALL = dict(train_scenes=3, train_views=4, day_night_pairs=2, val_scenes=2, val_views=3, whiten_scenes=2,
             whiten_views=3, tokyo_places=10, tokyo_directions=2, revisited_landmarks=2, revisited_queries=2,
             revisited_views=12, revisited_distractors=2, revisited_distractor_views=2, aachen_facades=3,
             aachen_day_queries=4, aachen_night_queries=4, small_fraction=0.3, landmark_boards=2, neighbour_boards=0.5,
             robotcar_facades=2, robotcar_step_m=6.0, robotcar_queries=2, cross_domain_train_pairs=3,
             cross_domain_val_pairs=2)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    paths = generate(root, SyntheticParams(**SMALL))
    assert [p.name for p in paths] == list(DATASETS)
    return root


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path) -> None:
    small = {**SMALL, "train_scenes": 2, "val_scenes": 1, "tokyo_places": 2, "datasets": ("synth-sfm", "synth-tokyo")}
    generate(tmp_path / "a", SyntheticParams(**small))
    generate(tmp_path / "b", SyntheticParams(**small))
    generate(tmp_path / "c", SyntheticParams(**small, seed=1))
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b and len(a) > 30
    common = set(a) & set(c)
    assert sum(a[k] != c[k] for k in common) > 0.9 * len(common)
    # regenerating in place replaces the datasets (no staging folders left behind)
    generate(tmp_path / "a", SyntheticParams(**small))
    assert _digest(tmp_path / "a") == a
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


def test_manifests_load_and_every_image_has_an_edge_map(bench: Path) -> None:
    for name in DATASETS:
        man = load_manifest(bench / name)
        gt = load_groundtruth(bench / name, man)
        assert man.source == "synthetic" and len(man) > 0
        cams = json.loads((bench / name / "cameras.json").read_text())["images"]
        for r in man.records:
            edge = np.asarray(Image.open(bench / name / "edges" / r.path))
            assert edge.shape == (r.height, r.width) and set(np.unique(edge)) <= {0, 255}
            assert Image.open(man.image_path(r)).size == (r.width, r.height)
            assert (cams[r.image_id]["width"], cams[r.image_id]["height"]) == (r.width, r.height)
        assert gt.protocol == {"synth-sfm": "training", "synth-whiten": "training", "synth-tokyo": "tokyo",
                               "synth-roxford": "revisited", "synth-rparis": "revisited",
                               "synth-aachen": "localization", "synth-robotcar": "localization",
                               "synth-daco-night": "cross_domain", "synth-daco-fog": "cross_domain",
                               "synth-daco-rain": "cross_domain"}[name]


def test_sfm_splits_pairs_and_min_side_filter(bench: Path) -> None:
    man = load_manifest(bench / "synth-sfm")
    gt = load_groundtruth(bench / "synth-sfm", man)
    rec = {r.image_id: r for r in man.records}
    train = man.select("train")
    day, night = [r for r in train if r.domain == "day"], [r for r in train if r.domain == "night"]
    dusk = [r for r in train if r.domain == "sunset"]
    assert len(day) + len(dusk) == 3 * 4 and 0 < len(night) < len(day)
    assert dusk and {r.image_id for r in dusk} & {i for pair in gt.pairs["train"] for i in pair}  # dusk shots pair
    assert {r.cluster for r in man.select("val")}.isdisjoint({r.cluster for r in train})
    sides = [min(r.width, r.height) for r in train]
    assert min(sides) < 56 <= max(sides)  # the day/night min-side filter has something to drop
    for split in ("train", "val"):
        assert gt.pairs[split]
        for q, p in gt.pairs[split]:
            assert q != p and rec[q].cluster == rec[p].cluster and rec[q].split == rec[p].split == split
            assert rec[q].domain in ("day", "sunset") and rec[p].domain in ("day", "sunset")
    assert len(gt.day_night_pairs) == 2
    for n, d in gt.day_night_pairs:
        assert rec[n].domain == "night" and rec[d].domain == "day" and rec[n].cluster == rec[d].cluster
    # N/D night images are near, never at, their day partner's pose
    cams = json.loads((bench / "synth-sfm" / "cameras.json").read_text())["images"]
    for n, d in gt.day_night_pairs:
        tn, td = np.array(cams[n]["pose"][4:]), np.array(cams[d]["pose"][4:])
        assert 0 < np.linalg.norm(tn - td) < 10
    wg = load_groundtruth(bench / "synth-whiten")
    assert wg.pairs["whiten"]


def test_tokyo_structure(bench: Path) -> None:
    man = load_manifest(bench / "synth-tokyo")
    gt = load_groundtruth(bench / "synth-tokyo", man)
    cams = json.loads((bench / "synth-tokyo" / "cameras.json").read_text())["images"]
    rec = {r.image_id: r for r in man.records}
    assert len(man) == 10 * 2 * 3 and len(gt.queries) == len(man) and gt.database_split is None
    assert len({r.place for r in man.records}) == 10
    for q in gt.queries:
        assert len(q.positives) == 2 and q.junk == [q.query]
        domains = {rec[i].domain for i in [q.query, *q.positives]}
        assert domains == {"day", "sunset", "night"}
        assert all(rec[i].cluster == rec[q.query].cluster for i in q.positives)
        assert all(cams[i]["pose"] == cams[q.query]["pose"] for i in q.positives)  # one pose, 3 lightings
        assert rec[q.query].cluster.startswith(rec[q.query].place + "-")


def test_revisited_queries_have_positives_boxes_and_geometry_labels(bench: Path) -> None:
    for name in ("synth-roxford", "synth-rparis"):
        man = load_manifest(bench / name)
        gt = load_groundtruth(bench / name, man)
        rec = {r.image_id: r for r in man.records}
        assert gt.database_split == "database" and len(gt.queries) == 4
        n_hard = 0
        for q in gt.queries:
            assert rec[q.query].split == "query"
            assert q.easy and q.positives == q.easy + q.hard
            n_hard += len(q.hard)
            labelled = q.easy + q.hard + q.junk
            assert len(set(labelled)) == len(labelled)
            assert all(rec[i].split == "database" and rec[i].cluster == rec[q.query].cluster for i in labelled)
            x1, y1, x2, y2 = q.bbox
            r = rec[q.query]
            assert 0 <= x1 < x2 <= r.width - 1 and 0 <= y1 < y2 <= r.height - 1
            assert (x2 - x1) * (y2 - y1) > 0.2 * r.width * r.height  # frontal query: the facade is large
        assert n_hard > 0
        assert sum(r.cluster.split("-")[1].startswith("x") for r in man.records) == 4  # distractors


def test_revisited_label_by_hand() -> None:
    k = sr.intrinsics(96, 72, 60.0)
    facade = (-10.0, 0.0, 10.0, 15.0)

    def cam(x: float, d: float, tx: float = 0.0) -> sr.Camera:
        r, t = sr.look_at(np.array([x, 1.7, d]), np.array([tx, 7.0, 0.0]))
        return sr.Camera(k, r, t, 96, 72)

    q = cam(0.0, 25.0)
    qv = sr.facade_visibility(facade, q)
    same = cam(1.0, 24.0)
    assert revisited_label(qv, q, sr.facade_visibility(facade, same), same, facade) == "easy"
    oblique = cam(20.0, 16.0)  # 50 degrees off the normal
    assert revisited_label(qv, q, sr.facade_visibility(facade, oblique), oblique, facade) == "hard"
    sliver = cam(22.0, 14.0, tx=24.0)  # looks at the neighbour: the facade is barely in view
    assert revisited_label(qv, q, sr.facade_visibility(facade, sliver), sliver, facade) == "junk"
    assert overlap(qv, qv) == 1.0 and overlap(qv, np.zeros_like(qv)) == 0.0


def test_localization_poses_and_positives(bench: Path) -> None:
    man = load_manifest(bench / "synth-aachen")
    gt = load_groundtruth(bench / "synth-aachen", man)
    rec = {r.image_id: r for r in man.records}
    assert gt.database_split == "database"
    assert {rec[q.query].domain for q in gt.queries} == {"day", "night"}
    assert all(r.pose is not None for r in man.records)

    def rt(pose: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        return quaternion_to_matrix(np.array(pose[:4])), np.array(pose[4:])

    near_fine = 0
    for q in gt.queries:
        assert q.positives and rec[q.query].split == "query"
        rq, tq = rt(rec[q.query].pose)
        errs = []
        for p in q.positives:
            rp, tp = rt(rec[p].pose)
            dist = np.linalg.norm(-rq.T @ tq + rp.T @ tp)
            ang = rotation_angle_deg(rq, rp)
            assert dist <= 5.0 and ang <= 10.0
            errs.append((dist, ang))
        near_fine += any(d <= 0.5 and a <= 5.0 for d, a in errs)
    assert near_fine < len(gt.queries) / 2  # a pose copy is rarely within (0.5 m, 5 deg)


def test_stored_poses_reproduce_the_rendered_geometry(bench: Path) -> None:
    """Project facade corners with K and the manifest pose; compare with the stored homography
    and with the ground-truth edge map written by the renderer."""
    checked = 0
    for name in ("synth-aachen", "synth-robotcar", "synth-tokyo", "synth-sfm"):
        man = load_manifest(bench / name)
        cam_json = json.loads((bench / name / "cameras.json").read_text())
        for r in man.records:
            c = cam_json["images"][r.image_id]
            pose = r.pose if r.pose is not None else tuple(c["pose"])
            rot, t = quaternion_to_matrix(np.array(pose[:4])), np.array(pose[4:])
            k = np.array([[c["fx"], 0, c["cx"]], [0, c["fy"], c["cy"]], [0, 0, 1]])
            fac = cam_json["facades"].get(r.cluster, None)
            if fac is None:
                continue
            x0, y0, x1, y1 = fac
            corners = np.array([[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0]], float)
            pc = corners @ rot.T + t
            uv = (pc @ k.T)[:, :2] / (pc @ k.T)[:, 2:]
            hom = np.array(c["homography"]) @ np.column_stack([corners[:, :2], np.ones(4)]).T
            np.testing.assert_allclose(uv, (hom[:2] / hom[2]).T, atol=1e-6)
            edges = np.asarray(Image.open(bench / name / "edges" / r.path)) > 0
            near = cv2.dilate(edges.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            for u, v in uv:
                if 1 <= u <= r.width - 2 and 1 <= v <= r.height - 2:
                    assert near[round(v), round(u)], (r.image_id, u, v)
                    checked += 1
    assert checked > 20


def test_edge_maps_align_with_day_image_gradients(bench: Path) -> None:
    man = load_manifest(bench / "synth-tokyo")
    ratios = []
    for r in man.select(domain="day"):
        gray = cv2.cvtColor(np.asarray(Image.open(man.image_path(r))), cv2.COLOR_RGB2GRAY).astype(np.float32)
        mag = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
        edge = np.asarray(Image.open(bench / "synth-tokyo" / "edges" / r.path)) > 0
        far = cv2.dilate(edge.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
        ratios.append(mag[edge].mean() / mag[far].mean())
    assert min(ratios) > 1.5


def test_calibration_night_model(bench: Path) -> None:
    cal = json.loads((bench / "synthetic-calibration.json").read_text())
    n = cal["ncc_lightness"]
    assert n["night_vs_night"] > 0.7
    assert n["inverted_day_vs_night"] < n["night_vs_night"] - 0.4  # inversion is a poor stand-in
    assert n["day_vs_sunset"] > n["day_vs_night"]
    assert cal["ncc_gradient_day_vs_night"] > 0.1  # night keeps structure
    # darker than day; lit windows and backlit boards can lift a night's median above a sunset's
    assert max(cal["median_lightness"]["night"], cal["median_lightness"]["sunset"]) < cal["median_lightness"]["day"]
    tr = cal["tiny_retrieval"]
    assert tr["map_night_to_day"] < tr["map_day_to_day"]
    assert all(cal["checks"].values())


def test_night_is_not_a_global_gain(bench: Path) -> None:
    """Some pixels are brighter at night than by day (lit windows, lamps): no gain < 1 does that,
    and bright day windows are not all bright at night."""
    man = load_manifest(bench / "synth-tokyo")
    by = {}
    for r in man.records:
        by.setdefault(r.cluster, {})[r.domain] = np.asarray(Image.open(man.image_path(r))).astype(float).mean(2)
    brighter = [np.mean(v["night"] > v["day"] + 20) for v in by.values()]
    assert np.mean(brighter) > 0.005
    # darker in most views (an overcast day next to a lamp-lit night comes close, and a view filled by lit
    # windows and a backlit board is brighter at night; the ambient is bright enough that facades keep their
    # structure, so the typical ratio is about four fifths)
    ratios = np.array([np.median(v["night"]) / np.median(v["day"]) for v in by.values()])
    assert np.mean(ratios < 1.0) > 0.6 and np.median(ratios) < 0.9
    # the brightest day pixels (sky-reflecting windows, sky) split at night: some dark, some lit
    top = [v["day"] > np.percentile(v["day"], 85) for v in by.values()]
    dark = np.mean([np.mean(v["night"][t] < 40) for v, t in zip(by.values(), top, strict=True)])
    lit = np.mean([np.mean(v["night"][t] > 100) for v, t in zip(by.values(), top, strict=True)])
    assert dark > 0.15 and lit > 0.15


def test_helpers_by_hand() -> None:
    assert ncc(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])) == pytest.approx(1.0)
    assert ncc(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert ncc(np.ones(3), np.arange(3.0)) == 0.0
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    db = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    # query 0: positive row 2 ranks 2nd (0.6 < 1.0) -> AP 1/2; query 1: positive row 1 ranks 1st
    assert single_positive_map(q, db, np.array([2, 1])) == pytest.approx(0.75)
    grey = np.full((2, 2, 3), 255, np.uint8)
    assert lab_invert(grey).max() <= 1  # white -> black
    r, _ = sr.look_at(np.array([3.0, 2.0, 20.0]), np.array([-1.0, 5.0, 0.0]), 7.0)
    np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(r)), r, atol=1e-12)
    assert rotation_angle_deg(r, r) == pytest.approx(0.0, abs=1e-6)


def _touches(poly: np.ndarray, box: tuple[float, float, float, float]) -> bool:
    lo, hi = poly.min(0), poly.max(0)
    return bool(hi[0] > box[0] and lo[0] < box[2] and hi[1] > box[1] and lo[1] < box[3])


def test_a_board_replaces_the_details_it_covers() -> None:
    spec = sr.SceneSpec(x_range=(-30.0, 30.0), y_range=(-6.0, 32.0))
    x0, _, x1, top = sr.add_building(spec, np.random.default_rng(4), -10.0, 20.0, "classic", boards=1)
    blocks = [p for p, _ in spec.boards]
    assert 2 <= len(blocks) <= 8
    bx0, by0 = np.min([p.min(0) for p in blocks], 0)
    bx1, by1 = np.max([p.max(0) for p in blocks], 0)
    # the blocks tile the board's rectangle, which sits on the upper floors inside the facade
    area = sum((p[:, 0].max() - p[:, 0].min()) * (p[:, 1].max() - p[:, 1].min()) for p in blocks)
    assert area == pytest.approx((bx1 - bx0) * (by1 - by0))
    assert x0 < bx0 < bx1 < x1 and 0 < by0 < by1 < top
    box = (bx0 - 0.15, by0 - 0.15, bx1 + 0.15, by1 + 0.15)
    # no window, window shadow or sign is left under it; what spans the facade (ledges) is painted over
    assert not [w for w in spec.windows if _touches(w, box)]
    assert not [p for p, _ in spec.signs if _touches(p, box)]
    spanning = [p for p, _ in spec.fills if _touches(p, box) and np.ptp(p[:, 0]) > 0.6 * (x1 - x0)]
    assert spanning  # the wall itself at least
    # the board is drawn last, so its colours are what the albedo shows
    assert [p for p, _ in spec.fills[-len(blocks):]] == blocks
    # no boards asked: none drawn, and the same random stream as before boards existed
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    plain = sr.landmark_scene(a, "brick", ("brick", "modern"))
    zero = sr.landmark_scene(b, "brick", ("brick", "modern"), boards=0, neighbour_boards=0.0)
    assert not zero.boards and len(plain.fills) == len(zero.fills) and a.random() == b.random()
    busy = sr.landmark_scene(np.random.default_rng(9), "brick", ("brick",), boards=3, neighbour_boards=1.0)
    assert len(busy.facades) >= 3 and len(busy.boards) >= 2 * len(busy.facades)
    # overlapping boards: the later one hides the earlier one's blocks in the albedo and in the emission alike
    stacked = sr.SceneSpec(x_range=(-30.0, 30.0), y_range=(-6.0, 32.0))
    sr.add_building(stacked, np.random.default_rng(1), -10.0, 20.0, "modern", boards=6)
    fills = {p.tobytes() for p, _ in stacked.fills}
    assert all(p.tobytes() in fills for p, _ in stacked.boards)


def test_a_board_keeps_its_colours_at_night() -> None:
    """A backlit board is what still identifies a facade at night: its blocks keep their hue, where the
    windows around it turn from sky blue to lamp yellow."""
    spec = sr.SceneSpec(x_range=(-30.0, 30.0), y_range=(-6.0, 32.0))
    sr.add_building(spec, np.random.default_rng(4), -10.0, 20.0, "classic", boards=1)
    layers = sr.build_layers(spec, np.random.default_rng(0), ppm=8.0, lit_fraction=0.8)
    cam_r, cam_t = sr.look_at(np.array([0.0, 8.0, 30.0]), np.array([0.0, 8.0, 0.0]))
    cam = sr.Camera(sr.intrinsics(160, 120, 60.0), cam_r, cam_t, 160, 120)
    day = sr.render(layers, cam, "day", np.random.default_rng(1)).astype(float)
    night = sr.render(layers, cam, "night", np.random.default_rng(1)).astype(float)
    checked = 0
    for poly, rgb in spec.boards:
        cx, cy = poly[:4].mean(0)
        uv, _ = cam.project(np.array([[cx, cy, 0.0]]))
        u, v = np.round(uv[0]).astype(int)
        strongest = int(np.argmax(rgb))
        if max(rgb) - sorted(rgb)[1] < 0.3:  # greys and two-channel colours: no single dominant channel
            continue
        for img in (day, night):
            assert int(np.argmax(img[v - 1:v + 2, u - 1:u + 2].mean((0, 1)))) == strongest
        checked += 1
    assert checked >= 1


def test_params_from_dict() -> None:
    p = parse(SyntheticParams, {"seed": 3, "hfov_deg": [50, 60], "datasets": ["synth-tokyo"]}, "data.synthetic")
    assert p.seed == 3 and p.hfov_deg == (50.0, 60.0) and p.datasets == ("synth-tokyo",)
    assert parse(SyntheticParams, {}, "data.synthetic") == SyntheticParams()
    with pytest.raises(DarksideError, match=r"data\.synthetic\.bogus: unknown key"):
        parse(SyntheticParams, {"bogus": 1}, "data.synthetic")
    with pytest.raises(DarksideError, match=r"data\.synthetic\.train_scenes"):
        parse(SyntheticParams, {"train_scenes": "many"}, "data.synthetic")
    with pytest.raises(DarksideError, match=r"data\.synthetic\.val_scenes: -1 must be at least 0"):
        parse(SyntheticParams, {"val_scenes": -1}, "data.synthetic")
    with pytest.raises(DarksideError, match=r"data\.synthetic\.max_side"):
        parse(SyntheticParams, {"max_side": True}, "data.synthetic")
    with pytest.raises(DarksideError, match=r"data\.synthetic\.datasets"):
        parse(SyntheticParams, {"datasets": ["synth-nope"]}, "data.synthetic")


def test_contact_sheet(bench: Path, tmp_path: Path) -> None:
    out = contact_sheet(bench / "synth-tokyo", tmp_path / "sheet.png", n_views=3)
    assert out == tmp_path / "sheet.png" and Image.open(out).size[0] > 300
    with pytest.raises(DarksideError):
        contact_sheet(bench / "synth-sfm", tmp_path / "x.png")


def test_night_twins_are_the_same_views_at_night(bench: Path) -> None:
    """Every day and dusk view of the training set (train and val splits) has its night rendering at the same
    camera (the oracle's input); no other dataset has any, and no manifest lists them."""
    from darkside.data.synthetic import NIGHT_TWINS

    man = load_manifest(bench / "synth-sfm")
    twins = bench / "synth-sfm" / NIGHT_TWINS
    day = [r for r in man.records if r.split in ("train", "val") and r.domain in ("day", "sunset")]
    assert sorted(str(p.relative_to(twins)) for p in twins.rglob("*.png")) == sorted(r.path for r in day)
    darker = []
    for r in day:
        img = np.asarray(Image.open(man.image_path(r)).convert("RGB"))
        twin = np.asarray(Image.open(twins / r.path).convert("RGB"))
        assert twin.shape == img.shape
        lum = [cv2.cvtColor(a, cv2.COLOR_RGB2Lab)[..., 0] for a in (img, twin)]
        darker.append(np.median(lum[1]) < np.median(lum[0]))  # night is darker than the day/dusk shot
        edges = np.asarray(Image.open(bench / "synth-sfm" / "edges" / r.path).convert("L")) > 0
        grad = cv2.Laplacian(lum[1].astype(np.float32), cv2.CV_32F)
        # the twin's structure sits on the day view's ground-truth edges (same camera), not beside them
        assert np.abs(grad[edges]).mean() > np.abs(grad[~edges]).mean()
    assert np.mean(darker) > 0.6  # not all: close-ups of lit windows and backlit boards
    assert not list((bench / "synth-whiten").glob(f"{NIGHT_TWINS}/**/*.png"))
