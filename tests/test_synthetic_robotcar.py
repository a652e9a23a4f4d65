"""synth-robotcar (a RobotCar Seasons-like localization split), its two weather conditions, and the image size
of the localization splits."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from darkside.data import synthetic_render as sr
from darkside.data.cameras import parse_camera
from darkside.data.manifest import load_groundtruth, load_manifest
from darkside.data.synthetic import (
    ALL_FAMILIES,
    ROBOTCAR_CONDITIONS,
    ROBOTCAR_LANE,
    ROBOTCAR_REFERENCE,
    SyntheticParams,
    generate,
)
from darkside.errors import ConfigError
from darkside.geometry import quaternion_to_matrix, rotation_angle_deg

TINY = dict(robotcar_facades=2, robotcar_step_m=4.0, robotcar_queries=3, localization_max_side=128,
            aachen_facades=2, aachen_day_queries=2, aachen_night_queries=2, landmark_boards=2, neighbour_boards=0.5,
            datasets=("synth-aachen", "synth-robotcar"))
QUERY_ID = re.compile(r"^(day|overcast|dusk|night|night-rain)/rear/(\d{16})\.png$")
DB_ID = re.compile(rf"^{ROBOTCAR_REFERENCE}/rear/(\d{{16}})\.png$")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth-rc")
    generate(root, SyntheticParams(**TINY))
    return root


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _center(pose: tuple[float, ...]) -> np.ndarray:
    r = quaternion_to_matrix(np.array(pose[:4]))
    return -r.T @ np.array(pose[4:])


def _yaw_deg(pose: tuple[float, ...]) -> float:
    axis = quaternion_to_matrix(np.array(pose[:4]))[2]  # the optical axis in world coordinates
    return float(np.degrees(np.arctan2(axis[0], -axis[2])))


def test_counts_domains_and_condition_names(bench: Path) -> None:
    man = load_manifest(bench / "synth-robotcar")
    gt = load_groundtruth(bench / "synth-robotcar", man)
    facades = json.loads((bench / "synth-robotcar" / "cameras.json").read_text())["facades"]
    total = max(f[2] for f in facades.values())
    db, qs = man.select("database"), man.select("query")
    assert len(db) == len(np.arange(2.0, total, 4.0)) and len(facades) == 2
    assert len(qs) == 3 * len(ROBOTCAR_CONDITIONS) == len(gt.queries)
    assert gt.protocol == "localization" and gt.database_split == "database"
    assert all(DB_ID.match(r.image_id) and r.domain == "day" for r in db)
    for r in man.records:
        assert r.path == f"{r.split}/{r.image_id}"  # the condition is in the path as in the id
        assert (r.width, r.height) == (128, 96)  # localization_max_side, not max_side
    by_cond: dict[str, list] = {}
    for r in qs:
        m = QUERY_ID.match(r.image_id)
        assert m, r.image_id
        assert r.domain == ROBOTCAR_CONDITIONS[m.group(1)][1]
        by_cond.setdefault(m.group(1), []).append((int(m.group(2)), _center(r.pose)[0]))
    assert sorted(by_cond) == sorted(ROBOTCAR_CONDITIONS) and {len(v) for v in by_cond.values()} == {3}
    assert {r.domain for r in qs} == {"day", "sunset", "night"}
    # one traversal per condition, driven along +X: timestamps increase with the position on the route
    for stamps in [*by_cond.values(), [(int(DB_ID.match(r.image_id).group(1)), _center(r.pose)[0]) for r in db]]:
        ts, xs = np.array(stamps).T
        assert len(set(ts)) == len(ts) and np.all(np.diff(xs[np.argsort(ts)]) > 0)
    # clusters are the facades the views look at, places the nearest reference step
    assert {r.cluster for r in man.records} <= set(facades) and len({r.cluster for r in db}) == 2
    assert all(r.place.startswith("rob-x") for r in man.records)


def test_queries_sit_off_the_reference_steps_with_pose_positives(bench: Path) -> None:
    man = load_manifest(bench / "synth-robotcar")
    gt = load_groundtruth(bench / "synth-robotcar", man)
    rec = {r.image_id: r for r in man.records}
    db = np.array([_center(r.pose) for r in man.select("database")])
    dist, height, _ = ROBOTCAR_LANE
    assert np.allclose(db[:, 1:], [height, dist])  # the reference lane: one line at one height
    assert np.allclose(np.diff(db[:, 0]), 4.0)
    assert all(_yaw_deg(r.pose) == pytest.approx(-30.0, abs=1e-6) for r in man.select("database"))
    lateral = []
    for q in gt.queries:
        r = rec[q.query]
        c = _center(r.pose)
        # between two steps (15-85 % of the way), never at one
        assert np.min(np.abs(db[:, 0] - c[0])) >= 0.15 * 4.0 - 1e-6
        lateral.append(c[2] - dist)
        assert abs(_yaw_deg(r.pose) + 30.0) <= 5.5
        assert q.positives
        rq = quaternion_to_matrix(np.array(r.pose[:4]))
        for p in q.positives:
            assert np.linalg.norm(_center(rec[p].pose) - c) <= 5.0
            assert rotation_angle_deg(quaternion_to_matrix(np.array(rec[p].pose[:4])), rq) <= 10.0
    lateral = np.array(lateral)
    assert np.all(np.abs(lateral) <= 3.0) and lateral.min() < 0 < lateral.max()  # both sides of the lane


@pytest.mark.parametrize("name", ["synth-robotcar", "synth-aachen"])
def test_every_posed_row_has_the_renderers_camera(bench: Path, name: str) -> None:
    """The manifest's camera column and pose project a facade point where the renderer's homography does, and
    onto the ground-truth edges the renderer drew."""
    man = load_manifest(bench / name)
    cams = json.loads((bench / name / "cameras.json").read_text())
    checked = 0
    for r in man.records:
        assert r.pose is not None and r.camera is not None and r.camera.startswith("PINHOLE ")
        intr = parse_camera(r.camera, r.width, r.height)
        c = cams["images"][r.image_id]
        np.testing.assert_allclose(intr.K, [[c["fx"], 0, c["cx"]], [0, c["fy"], c["cy"]], [0, 0, 1]], atol=1e-9)
        assert not intr.distortion.any()
        rot, t = quaternion_to_matrix(np.array(r.pose[:4])), np.array(r.pose[4:])
        x0, y0, x1, y1 = cams["facades"][r.cluster]
        pts = np.array([[x0, y0, 0.0], [x1, y0, 0.0], [x1, y1, 0.0], [x0, y1, 0.0], [(x0 + x1) / 2, y1 / 2, 0.0]])
        pc = pts @ rot.T + t
        uv, _ = cv2.projectPoints(pts, cv2.Rodrigues(rot)[0], t, intr.K, intr.distortion)
        uv = uv.reshape(-1, 2)
        hom = np.array(c["homography"]) @ np.column_stack([pts[:, :2], np.ones(len(pts))]).T
        front = pc[:, 2] > 0.1
        np.testing.assert_allclose(uv[front], (hom[:2] / hom[2]).T[front], atol=1e-6)
        edges = cv2.dilate((np.asarray(Image.open(bench / name / "edges" / r.path)) > 0).astype(np.uint8),
                           np.ones((3, 3), np.uint8)) > 0
        for (u, v), ok in zip(uv[:4], front[:4], strict=True):  # the facade's corners lie on its outline
            if ok and 1 <= u <= r.width - 2 and 1 <= v <= r.height - 2:
                assert edges[round(v), round(u)], (r.image_id, u, v)
                checked += 1
    assert checked > 5


def _street_view(size: tuple[int, int] = (160, 120)) -> tuple[sr.SceneLayers, sr.Camera]:
    rng = np.random.default_rng(11)
    spec = sr.street_scene(rng, ALL_FAMILIES, 2, boards=1)
    layers = sr.build_layers(spec, rng, ppm=8.0, lit_fraction=0.8)
    r, t = sr.look_at(np.array([18.0, 2.2, 12.0]), np.array([12.0, 4.0, 0.0]))
    return layers, sr.Camera(sr.intrinsics(*size, 62.5), r, t, *size)


def test_overcast_has_less_shading_contrast_than_day() -> None:
    """Ledge and lintel shadows: walls in shadow against lit walls, on the same view, for every day exposure."""
    layers, cam = _street_view()
    m = cam.plane_homography() @ layers.world_from_tex
    shade, glass, _, sky = (cv2.warpPerspective(layers.shade_glass_wgrad_sky[..., i], m, (cam.width, cam.height),
                                                flags=cv2.INTER_NEAREST) for i in range(4))
    wall = cv2.erode(((glass == 0) & (sky == 0)).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    shadow = wall & (cv2.erode((shade < 0.75).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    lit = wall & (cv2.erode((shade == 1).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    assert shadow.sum() > 50 and lit.sum() > 500

    # the renderer's own warp of the albedo (ss=1): image / albedo is the light falling on each wall pixel
    albedo = cv2.warpPerspective(layers.albedo, m, (cam.width, cam.height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE).mean(2) * 255

    def contrast(cond: str, seed: int) -> float:
        light = sr.render(layers, cam, cond, np.random.default_rng(seed), ss=1).astype(float).mean(2) / albedo
        return float(np.median(light[lit]) / np.median(light[shadow]))

    day = [contrast("day", s) for s in range(6)]
    overcast = [contrast("overcast", s) for s in range(6)]
    assert min(day) > 1.2  # the shadows show by day, whatever the sun's strength
    assert max(overcast) < min(day) and max(overcast) - 1 < 0.5 * (min(day) - 1)  # and hardly under clouds
    # and the sky is grey: its colour channels nearly equal where day's is blue
    r, t = sr.look_at(np.array([18.0, 2.0, 30.0]), np.array([18.0, 25.0, 0.0]))
    up = sr.Camera(cam.K, r, t, cam.width, cam.height)
    img = sr.render(layers, up, "overcast", np.random.default_rng(0), ss=1).astype(float)
    day_img = sr.render(layers, up, "day", np.random.default_rng(0), ss=1).astype(float)
    top = cv2.warpPerspective(layers.shade_glass_wgrad_sky[..., 3], up.plane_homography() @ layers.world_from_tex,
                              (up.width, up.height), flags=cv2.INTER_NEAREST) == 1
    assert top.sum() > 200
    assert np.ptp(img[top].mean(0)) < 20 < np.ptp(day_img[top].mean(0))


def _sobel(a: np.ndarray) -> np.ndarray:
    return np.hypot(cv2.Sobel(a, cv2.CV_32F, 1, 0), cv2.Sobel(a, cv2.CV_32F, 0, 1))


def test_night_rain_is_the_night_plus_rain() -> None:
    """Same view, same lit windows, same generator: night-rain draws what night draws, then its streaks; it
    differs from night, is darker (wet walls) and flatter (the veil) off the streaks, and brighter on them."""
    layers, cam = _street_view((192, 144))
    lit = sr.lit_draw(layers, np.random.default_rng(0))
    for seed in range(3):
        night = sr.render(layers, cam, "night", np.random.default_rng(seed), lit=lit).astype(np.float32).mean(2)
        rain = sr.render(layers, cam, "night-rain", np.random.default_rng(seed), lit=lit).astype(np.float32).mean(2)
        replay = np.random.default_rng(seed)
        sr.render(layers, cam, "night", replay, lit=lit)
        streaks = sr.rain_streaks(cam.height, cam.width, replay)  # what the rain rendering drew next
        near = cv2.dilate((streaks > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        core = streaks > 0.5
        assert core.mean() > 0.01 and near.mean() < 0.3
        assert np.abs(rain - night).mean() > 5
        assert rain[~near].mean() < night[~near].mean()
        assert (rain - night)[core].mean() > 10
        assert _sobel(rain)[~near].mean() < 0.95 * _sobel(night)[~near].mean()  # lower contrast
        # thin streaks, all slanted alike: the layer's dominant gradient is 8-22 degrees off the horizontal
        gx, gy = cv2.Sobel(streaks, cv2.CV_32F, 1, 0), cv2.Sobel(streaks, cv2.CV_32F, 0, 1)
        tilt = 0.5 * np.degrees(np.arctan2(2 * (gx * gy).sum(), (gx * gx - gy * gy).sum()))
        assert 5.0 < abs(tilt) < 25.0, tilt
    with pytest.raises(ValueError, match="unknown condition"):
        sr.render(layers, cam, "snow", np.random.default_rng(0))


def test_same_params_same_bytes_and_no_other_dataset_moves(bench: Path, tmp_path: Path) -> None:
    only = {**TINY, "datasets": ("synth-robotcar",)}
    generate(tmp_path / "a", SyntheticParams(**only))
    again = _digest(tmp_path / "a" / "synth-robotcar")
    assert again == _digest(bench / "synth-robotcar") and len(again) > 40
    # synth-robotcar draws from streams of its own: synth-aachen's bytes do not depend on it being written
    generate(tmp_path / "b", SyntheticParams(**{**TINY, "datasets": ("synth-aachen",)}))
    assert _digest(tmp_path / "b" / "synth-aachen") == _digest(bench / "synth-aachen")
    # a query count changes neither the reference traversal nor another condition's queries
    generate(tmp_path / "c", SyntheticParams(**{**only, "robotcar_queries": 2}))
    more, fewer = again, _digest(tmp_path / "c" / "synth-robotcar")
    common = {k for k in fewer if k.startswith(("images/database/", "edges/database/"))}
    assert common and all(fewer[k] == more[k] for k in common)
    assert sum(k.startswith("images/query/") for k in fewer) == 2 * len(ROBOTCAR_CONDITIONS)
    generate(tmp_path / "d", SyntheticParams(**only, seed=1))
    other = _digest(tmp_path / "d" / "synth-robotcar")
    assert sum(other.get(k) != v for k, v in again.items()) > 0.9 * len(again)


def test_robotcar_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"data\.synthetic\.robotcar_lateral_m"):
        SyntheticParams(robotcar_lateral_m=(3.0, 1.0))
    assert SyntheticParams().localization_max_side == SyntheticParams().max_side  # aachen's default size unchanged
