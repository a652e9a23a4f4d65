"""Paradigms 2a/2b: cameras, matching, triangulation, PnP against hand-built geometry; the jobs end to end on a
small synthetic street."""

from __future__ import annotations

import json

import numpy as np
import pytest

from darkside.data.cameras import parse_camera, pinhole, sensor_camera
from darkside.errors import DarksideError, ManifestError
from darkside.geometry import matrix_to_quaternion, pose_errors
from darkside.localize.features import LocalFeatureSettings
from darkside.localize.geometry import (
    PoseSettings,
    TriangulationSettings,
    estimate_pose,
    fundamental_matrix,
    project,
    projection_matrix,
    sampson_distance,
    triangulate,
    triangulate_batch,
    triangulate_track,
)
from darkside.localize.global_map import GlobalMapSettings
from darkside.localize.matching import MatchSettings, mutual_nearest
from darkside.localize.sfm import build_tracks

K = np.array([[200.0, 0.0, 127.5], [0.0, 200.0, 95.5], [0.0, 0.0, 1.0]])


def look(center, target) -> np.ndarray:
    """World->camera pose (7,) of a camera at ``center`` looking at ``target``, world Y up."""
    z = np.asarray(target, float) - center
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return np.concatenate([matrix_to_quaternion(R), -R @ center])


def scene(rng, n=80, planar=False) -> np.ndarray:
    depth = np.zeros(n) if planar else rng.uniform(-2, 1, n)
    return np.column_stack([rng.uniform(-6, 6, n), rng.uniform(0, 8, n), depth])


# --- cameras -----------------------------------------------------------------------------------------

def test_camera_models_move_the_principal_point_to_opencv_pixels():
    cam = parse_camera("SIMPLE_RADIAL 1600 800 600 0.01", 1600, 1200)
    assert cam.K.tolist() == [[1600.0, 0.0, 799.5], [0.0, 1600.0, 599.5], [0.0, 0.0, 1.0]]
    assert cam.distortion.tolist() == [0.01, 0.0, 0.0, 0.0]
    assert np.array_equal(parse_camera(pinhole(K), 256, 192).K, K)
    assert sensor_camera(["PINHOLE", "640", "480", "500", "501", "320", "240"]) == "PINHOLE 500 501 320 240"
    assert sensor_camera(["FISHEYE", "640", "480", "1"]) is None
    with pytest.raises(ManifestError, match="unknown camera model 'FOO'"):
        parse_camera("FOO 1 2 3", 10, 10)
    with pytest.raises(ManifestError, match="takes 4 numbers"):
        parse_camera("PINHOLE 1 2 3", 10, 10)


# --- matching ----------------------------------------------------------------------------------------

def test_mutual_nearest_keeps_only_pairs_that_choose_each_other():
    e = np.eye(4, dtype=np.float32)
    d1 = np.stack([e[0], e[1], (e[1] + 0.1 * e[2]) / np.linalg.norm(e[1] + 0.1 * e[2])])
    d2 = np.stack([e[1], e[0], e[3]])
    # d1[1] and d1[2] both want d2[0]; only d1[1] is d2[0]'s nearest; d2[2] is nobody's
    assert mutual_nearest(d1, d2).tolist() == [[0, 1], [1, 0]]
    # ratio: d1[1]'s nearest (distance 0) and second (sqrt 2) pass 0.8; an ambiguous descriptor fails it
    amb = (e[0] + e[1]) / np.sqrt(2)
    assert mutual_nearest(np.stack([amb]), np.stack([e[0], e[1] * 0.999 + e[2] * 0.0447]), ratio=0.8).size == 0
    assert mutual_nearest(d1, d2[:0]).shape == (0, 2)


def test_epipolar_geometry_of_known_poses():
    rng = np.random.default_rng(0)
    X = scene(rng, 30)
    p1, p2 = look(np.array([-2.0, 1.7, 12.0]), [0, 3, 0]), look(np.array([3.0, 1.5, 11.0]), [1, 3, 0])
    x1, _ = project(projection_matrix(K, p1), X)
    x2, _ = project(projection_matrix(K, p2), X)
    F = fundamental_matrix(K, p1, K, p2)
    assert np.max(sampson_distance(F, x1, x2)) < 1e-9
    line = F @ np.append(x1[0], 1.0)
    n = line[:2] / np.linalg.norm(line[:2])
    # a point moved 3 px off its epipolar line: the algebraic error is 3 |l2|, shared by both images' gradients
    moved = x2[0] + 3 * n
    l1 = F.T @ np.append(moved, 1.0)
    expected = 3 * np.linalg.norm(line[:2]) / np.sqrt(np.linalg.norm(line[:2]) ** 2 + np.linalg.norm(l1[:2]) ** 2)
    assert sampson_distance(F, x1[:1], moved[None])[0] == pytest.approx(expected, rel=1e-9)
    assert 0 < expected < 3


# --- triangulation -----------------------------------------------------------------------------------

def test_two_known_poses_triangulate_known_points():
    rng = np.random.default_rng(1)
    X = scene(rng, 50)
    p1, p2 = look(np.array([-2.0, 1.7, 12.0]), [0, 3, 0]), look(np.array([3.0, 1.5, 11.0]), [1, 3, 0])
    P = np.stack([projection_matrix(K, p1), projection_matrix(K, p2)])
    for Xi in X:
        x = np.stack([project(P[0], Xi[None])[0][0], project(P[1], Xi[None])[0][0]])
        assert np.linalg.norm(triangulate(P, x) - Xi) < 1e-9
    s = TriangulationSettings(max_reprojection_error_px=2.0, min_angle_deg=1.5)
    centers = np.array([[-2.0, 1.7, 12.0], [3.0, 1.5, 11.0]])
    x = np.stack([project(P[i], X[:1])[0][0] for i in range(2)])
    point, keep = triangulate_track(P, x, centers, s)
    assert keep.all() and np.linalg.norm(point - X[0]) < 1e-9
    # the same two rays from cameras 1 cm apart meet under less than 1.5 degrees: rejected
    near = np.stack([projection_matrix(K, p1), projection_matrix(K, look(np.array([-1.99, 1.7, 12.0]), [0, 3, 0]))])
    xn = np.stack([project(near[i], X[:1])[0][0] for i in range(2)])
    assert triangulate_track(near, xn, np.array([[-2.0, 1.7, 12.0], [-1.99, 1.7, 12.0]]), s)[0] is None
    # a third view that saw something else is dropped, the point kept from the other two
    P3 = np.concatenate([P, projection_matrix(K, look(np.array([0.0, 2.0, 14.0]), [0, 3, 0]))[None]])
    x3 = np.concatenate([x, project(P3[2], X[:1])[0] + 25.0])
    point, keep = triangulate_track(P3, x3, np.concatenate([centers, [[0.0, 2.0, 14.0]]]), s)
    assert keep.tolist() == [True, True, False] and np.linalg.norm(point - X[0]) < 1e-9


def test_a_batch_of_tracks_triangulates_as_each_track_alone():
    # tracks of four views with 0-3 wrong observations, some seen from nearly one place: the stacked rounds
    # (all tracks keep the same count per round) must give each track what it gets alone
    rng = np.random.default_rng(7)
    s = TriangulationSettings(max_reprojection_error_px=2.0, min_angle_deg=1.5)
    X = scene(rng, 40)
    P, x, C = [], [], []
    for n, Xi in enumerate(X):
        centers = np.array([[-3.0, 1.7, 12.0], [-1.0, 1.6, 11.5], [1.5, 1.8, 12.5], [3.5, 1.5, 11.0]])
        if n % 5 == 0:
            centers = centers[:1] + rng.normal(0, 0.01, (4, 3))  # under the minimum angle
        Pn = np.stack([projection_matrix(K, look(c, [0, 3, 0])) for c in centers])
        xn = np.stack([project(Pn[i], Xi[None])[0][0] for i in range(4)]) + rng.normal(0, 0.2, (4, 2))
        wrong = rng.choice(4, size=n % 4, replace=False)
        xn[wrong] += rng.uniform(10, 40, (len(wrong), 2))
        P.append(Pn), x.append(xn), C.append(centers)
    points, keep, ok = triangulate_batch(np.stack(P), np.stack(x), np.stack(C), s)
    alone = [triangulate_track(Pn, xn, cn, s) for Pn, xn, cn in zip(P, x, C, strict=True)]
    assert ok.tolist() == [a[0] is not None for a in alone]
    assert 10 < ok.sum() < 40  # some tracks kept, some not
    for n, (point, kept) in enumerate(alone):
        if point is not None:
            assert np.array_equal(keep[n], kept) and np.allclose(points[n], point, atol=1e-9)
            if n % 4 == 0:  # no wrong observation: the point is the scene's
                assert np.linalg.norm(point - X[n]) < 0.5


def _union_find_tracks(order, pairs):
    """Reference: tracks as connected components by a plain union-find."""
    parent = {}

    def find(n):
        while parent.setdefault(n, n) != n:
            n = parent[n]
        return n

    for (a, b), m in pairs.items():
        for i, j in m:
            ra, rb = find((order.index(a), int(i))), find((order.index(b), int(j)))
            parent[max(ra, rb)] = min(ra, rb)
    groups = {}
    for n in list(parent):
        groups.setdefault(find(n), []).append(n)
    tracks = [sorted(g) for g in groups.values() if len({i for i, _ in g}) == len(g)]
    return sorted([[(order[i], k) for i, k in t] for t in tracks], key=lambda t: (order.index(t[0][0]), t[0][1]))


def test_tracks_are_the_connected_components_of_random_matches():
    rng = np.random.default_rng(3)
    order = [f"img{i}" for i in range(6)]
    pairs = {(a, b): rng.integers(0, 60, (rng.integers(0, 12), 2)) for n, a in enumerate(order) for b in order[n + 1:]}
    tracks = build_tracks(order, pairs)
    assert tracks == _union_find_tracks(order, pairs) and len(tracks) > 5


def test_tracks_join_matches_across_pairs_and_drop_inconsistent_chains():
    order = ["a", "b", "c"]
    pairs = {("a", "b"): np.array([[0, 5], [1, 6]]), ("b", "c"): np.array([[5, 9], [6, 7]]),
             ("a", "c"): np.array([[1, 8]])}  # a1-b6-c7 and a1-c8: c twice -> dropped
    assert build_tracks(order, pairs) == [[("a", 0), ("b", 5), ("c", 9)]]


# --- PnP ---------------------------------------------------------------------------------------------

POSE = PoseSettings(max_error_px=2.0, min_inliers=12, min_inlier_ratio=0.01, iterations=2000, confidence=0.9999)


@pytest.mark.parametrize("planar", [False, True])
def test_pnp_recovers_the_pose_exactly_without_noise(planar):
    rng = np.random.default_rng(2)
    X = scene(rng, 60, planar)
    truth = look(np.array([1.0, 1.6, 10.0]), [0.5, 3.0, 0.0])
    x, _ = project(projection_matrix(K, truth), X)
    pose, inliers = estimate_pose(x, X, K, POSE)
    pos, rot = pose_errors(pose[None], truth[None])
    assert inliers.all() and pos[0] < 1e-6 and rot[0] < 1e-6


def test_pnp_under_pixel_noise_and_outliers():
    rng = np.random.default_rng(3)
    X = scene(rng, 200)
    truth = look(np.array([-1.0, 1.7, 11.0]), [0.0, 3.0, 0.0])
    x, _ = project(projection_matrix(K, truth), X)
    x = x + rng.normal(0, 0.5, x.shape)
    bad = rng.random(len(x)) < 0.3
    x[bad] += rng.uniform(-60, 60, (bad.sum(), 2))  # 30 % gross outliers
    pose, inliers = estimate_pose(x, X, K, POSE, seed=0)
    pos, rot = pose_errors(pose[None], truth[None])
    # 140 inliers at 0.5 px on a 200 px focal length, points ~11 m away: centimetres and a tenth of a degree
    assert pos[0] < 0.1 and rot[0] < 0.3
    assert not inliers[bad & (np.abs(x - project(projection_matrix(K, truth), X)[0]).max(axis=1) > 10)].any()
    assert np.array_equal(estimate_pose(x, X, K, POSE, seed=0)[0], pose)  # same seed, same pose
    # too few correspondences: no estimate
    assert estimate_pose(x[:8], X[:8], K, POSE)[0] is None


# --- the jobs end to end -------------------------------------------------------------------------------

def test_the_jobs_localize_day_queries_of_a_small_street(tmp_path):
    from darkside.data.manifest import load_manifest
    from darkside.data.synthetic import SyntheticParams, generate
    from darkside.geometry import camera_centers
    from darkside.localize.run import MapSettings, QuerySettings, run_global_map, run_local_features, run_localize

    params = SyntheticParams(datasets=("synth-aachen",), aachen_facades=3, aachen_day_queries=4,
                             aachen_night_queries=2, localization_max_side=192)
    generate(tmp_path / "data", params)
    ds = tmp_path / "data" / "synth-aachen"
    feats = run_local_features(ds, tmp_path / "f.h5", LocalFeatureSettings("sift", 512, 0.02, True))
    match = MatchSettings(ratio=0.9, max_epipolar_error_px=2.0, min_matches=8)
    tri = TriangulationSettings(max_reprojection_error_px=2.0, min_angle_deg=1.5)
    gmap = run_global_map(ds, feats, tmp_path / "map.h5", MapSettings(match, tri, GlobalMapSettings(6)))
    m = load_manifest(ds)
    db, queries = m.select(split="database"), m.select(split="query")
    C = camera_centers(np.array([r.pose for r in db]))
    lines = [f"{q.image_id}, {db[j].image_id}, 1.0" for q in queries
             for j in np.argsort(np.linalg.norm(C - camera_centers(np.array(q.pose)), axis=1))[:10]]
    (tmp_path / "pairs.csv").write_text("# query, map, score\n" + "\n".join(lines) + "\n")
    s = QuerySettings(10, match, tri, PoseSettings(3.0, 12, 0.01, 500, 0.9999), 0)
    out = run_localize(ds, feats, gmap, tmp_path / "pairs.csv", tmp_path / "metrics", tmp_path / "poses", s,
                       [(0.25, 2.0), (0.5, 5.0), (5.0, 10.0)])
    assert [p.name for p in out] == ["synth-aachen.local-sfm.json", "synth-aachen.global-map.json"]
    for p in out:
        body = json.loads(p.read_text())
        pq = body["localization"]["per_query"]
        day = [e for e, d in zip(pq["position_error_m"], pq["domains"], strict=True) if d == "day"]
        # day queries next to their mapping images (192 px images): every one within a metre, most within half
        assert len(day) == 4 and all(e is not None and e < 1.0 for e in day), day
        assert np.median(day) < 0.5, day
        assert body["metrics"]["5m,10deg"] >= 100 * 4 / 6 - 1e-9
    poses = (tmp_path / "poses" / "poses-global-map.txt").read_text().splitlines()
    assert len(poses) >= 4 and all(len(line.split()) == 8 for line in poses)
    # the same inputs give the same bytes
    again = run_localize(ds, feats, gmap, tmp_path / "pairs.csv", tmp_path / "m2", tmp_path / "p2", s,
                         [(0.25, 2.0), (0.5, 5.0), (5.0, 10.0)])
    assert [json.loads(a.read_text())["localization"] for a in again] == \
        [json.loads(b.read_text())["localization"] for b in out]
    with pytest.raises(DarksideError, match="retrieval pairs file missing"):
        run_localize(ds, feats, gmap, tmp_path / "none.csv", tmp_path / "m3", tmp_path / "p3", s, [(5.0, 10.0)])


# --- Table 3 -----------------------------------------------------------------------------------------

def test_table3_reads_each_paradigm_from_its_own_metrics_and_scores_night_queries_only(tmp_path, repo_root):
    import yaml

    from darkside.tables.build import TableInputs, build_table

    p = yaml.safe_load((repo_root / "params.yaml").read_text())["presets"]["mini"]
    aachen = p["data"]["roles"]["localization"][0]
    inputs = TableInputs(preset="mini", tokyo="t", roxford="o", rparis="p", localization=(aachen,), cross_domain={},
                         seeds=(0,),
                         bootstrap_samples=200, bootstrap_seed=0, backbones=("vgg16",), families=())

    def run(position, rotation):
        return {"localization": {"per_query": {"ids": ["d0", "n0", "n1", "n2"],
                                               "domains": ["day", "night", "night", "night"],
                                               "position_error_m": position, "rotation_error_deg": rotation}}}

    files = {"": run([0.1, 9.0, 9.0, 3.0], [1.0, 1.0, 1.0, 1.0]),  # paradigm 1: one night query within 5 m
             ".local-sfm": run([9.0, 0.1, None, 0.4], [1.0, 1.0, None, 4.0]),  # 2a: n0 fine, n2 medium
             ".global-map": run([9.0, 0.1, 0.2, 0.1], [1.0, 1.0, 1.0, 1.0])}  # 2b: all three fine
    for suffix, body in files.items():
        path = tmp_path / "vgg16-gem" / f"{aachen}{suffix}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body))
    table = build_table("table3", inputs, tmp_path)
    block = next(b for b in table.blocks if "VGG-16" in b.title and "Aachen" in b.title)
    gem = next(r for r in block.rows if r.method == "GeM [30]")
    # the day query d0 counts nowhere (it is fine for paradigm 1 and would lift its first cell)
    assert [c.ours for c in gem.cells] == pytest.approx([0.0, 0.0, 100 / 3, 100 / 3, 200 / 3, 200 / 3,
                                                         100.0, 100.0, 100.0])
    assert [c.paper for c in gem.cells[3:6]] == [59.2, 73.8, 87.4]
    # a model whose localize job did not run: its 2a/2b cells say so, its paradigm-1 cells stay
    (tmp_path / "vgg16-cyclegan-cd").mkdir()
    (tmp_path / "vgg16-cyclegan-cd" / f"{aachen}.json").write_text(json.dumps(files[""]))
    table = build_table("table3", inputs, tmp_path)
    row = next(r for r in next(b for b in table.blocks if "VGG-16" in b.title and "Aachen" in b.title).rows
               if r.method == "CycleGAN CD")
    assert row.cells[2].ours == pytest.approx(100 / 3)
    assert all(c.ours is None and "localize job" in c.note for c in row.cells[3:])


def test_paper_preset_pins_kaptures_localization_values(repo_root):
    """kapture's benchmark: top 20, its pycolmap local SfM's RANSAC (8 px, ratio 0.01, up to 100,000 trials at
    0.9999), COLMAP's filters (4 px, 1.5 deg, 15 matches), 4 inliers; SIFT for its 20,000 R2D2 keypoints."""
    import yaml

    loc = yaml.safe_load((repo_root / "params.yaml").read_text())["presets"]["paper"]["localize"]
    assert loc["topk"] == 20
    assert loc["features"] == {"extractor": "sift", "max_keypoints": 20000, "contrast_threshold": 0.04,
                               "root_sift": True, "max_side": None}
    assert loc["matching"] == {"ratio": 1.0, "max_epipolar_error_px": 4.0, "min_matches": 15}
    assert loc["triangulation"] == {"max_reprojection_error_px": 4.0, "min_angle_deg": 1.5}
    assert loc["global_map"] == {"neighbours": 20}
    assert loc["pose"] == {"max_error_px": 8.0, "min_inliers": 4, "min_inlier_ratio": 0.01, "iterations": 100000,
                           "confidence": 0.9999}
