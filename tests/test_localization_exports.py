"""The localization exports, read back by the ``kapture`` package: pairs files by its CSV reader (the one
kapture-localization's pairs readers use) against the kapture records, the LTVL2020 poses file against what kapture's
own exporter (``kapture_export_LTVL2020.py``, installed with kapture) writes for the same kapture data."""

import importlib.metadata
import importlib.util
import json
from pathlib import Path

import kapture
import kapture.io.csv as kcsv
import native_fixtures
import numpy as np
import pytest

from darkside.config import ScoreSettings
from darkside.data.importers.kapture import KapturePart, import_kapture
from darkside.data.manifest import GroundTruth, ImageRecord, Query, load_manifest, write_dataset
from darkside.data.registry import prepare_dataset
from darkside.errors import DarksideError, ManifestError
from darkside.evaluate.localization import benchmark_names, write_ltvl_poses
from darkside.evaluate.score import score_dataset
from darkside.extract.hdf5 import DescriptorSet, write_descriptors

K = 3
SETTINGS = ScoreSettings(chunk_size=4, recall_ks=(1,), pairs_topk=K,
                         localization_thresholds=((0.25, 2.0), (0.5, 5.0), (5.0, 10.0)))


def _kapture_export_ltvl():
    """``export_ltvl`` of the kapture distribution's own tool file (its ``tools`` folder is no regular package)."""
    path = Path(importlib.metadata.distribution("kapture").locate_file("tools/kapture_export_LTVL2020.py"))
    spec = importlib.util.spec_from_file_location("kapture_export_LTVL2020", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.export_ltvl


def _records(kapture_dir: Path) -> set[str]:
    """Image names of a kapture folder, as kapture reads them."""
    return set(kcsv.records_camera_from_file(kcsv.get_csv_fullpath(kapture.RecordsCamera, str(kapture_dir)))
               .data_list())


def _ltvl(path: Path) -> dict[str, np.ndarray]:
    """An LTVL2020 file: name -> (qw, qx, qy, qz, tx, ty, tz), the quaternion's sign fixed (q and -q are one
    rotation, kapture's quaternion maths and the suite's may pick either)."""
    out = {}
    for line in path.read_text().splitlines():
        name, *values = line.split(" ")
        assert len(values) == 7, line
        p = np.array([float(v) for v in values])
        q = p[:4]
        if q[np.flatnonzero(np.abs(q) > 1e-12)[0]] < 0:
            p[:4] = -q
        assert name not in out, f"{path}: {name} twice"
        out[name] = p
    return out


def _descriptors(tmp_path: Path, prepared: Path, twins: dict[str, str]) -> tuple[Path, dict[str, list[str]]]:
    """Random unit descriptors for the database, each query its twin's: (h5, query -> expected top-K ids)."""
    m = load_manifest(prepared, check_files=False)
    db = [r.image_id for r in m.select(split="database")]
    rng = np.random.default_rng(7)
    X = rng.normal(size=(len(db), 16))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    queries = [r.image_id for r in m.select(split="query")]
    Q = X[[db.index(twins[q]) for q in queries]]
    order = np.argsort(-(Q @ X.T), axis=1, kind="stable")[:, :K]
    expected = {q: [db[j] for j in row] for q, row in zip(queries, order, strict=True)}
    h5 = write_descriptors(tmp_path / "d.h5", DescriptorSet(db + queries, np.concatenate([X, Q]).astype(np.float32)))
    return h5, expected


def _score(tmp_path: Path, prepared: Path, twins: dict[str, str]) -> tuple[dict, Path, dict[str, list[str]]]:
    h5, expected = _descriptors(tmp_path, prepared, twins)
    pairs = tmp_path / "pairs"
    res = json.loads(score_dataset(h5, prepared, SETTINGS, tmp_path / "m.json", pairs_dir=pairs).read_text())
    return res, pairs, expected


def _check_pairs(pairs: Path, map_dir: Path, query_dirs: list[Path], expected: dict[str, list[str]]) -> None:
    """Both pairs files name kapture's images (every query, in rank order); the CSV parses as kapture's table."""
    map_images = _records(map_dir)
    query_images = set().union(*(_records(d) for d in query_dirs))
    for k in (1, K):
        with (pairs / f"pairs-top{k}.csv").open() as fh:
            table = kcsv.table_from_file(fh)
        assert all(len(row) == 3 for row in table)
        got: dict[str, list[tuple[str, float]]] = {}
        for q, db, score in table:
            assert q in query_images and db in map_images, (q, db)
            got.setdefault(q, []).append((db, float(score)))
        assert set(got) == query_images
        for q, ranked in got.items():
            assert [db for db, _ in ranked] == expected[q][:k]
            scores = [s for _, s in ranked]
            assert scores == sorted(scores, reverse=True)
        hloc = [line.split(" ") for line in (pairs / f"pairs-top{k}.txt").read_text().splitlines()]
        assert [(q, db) for q, db in hloc] == [(q, db) for q, db, _ in table]


def test_aachen_exports_read_back_by_kapture(tmp_path):
    raw = tmp_path / "raw" / "aachen-v11"
    twins = native_fixtures.kapture_aachen(raw, query_poses=True)
    prepared = prepare_dataset("aachen-v11", tmp_path / "raw", tmp_path / "prep")
    assert load_manifest(prepared, check_files=False).metadata["ltvl_style"] == "Default"
    res, pairs, expected = _score(tmp_path, prepared, twins)
    query_dirs = [raw / "query_night" / "query", raw / "query_day" / "query"]
    _check_pairs(pairs, raw / "mapping", query_dirs, expected)
    # kapture's exporter without options (kapture-localization's --benchmark-style Default) names the file only
    export_ltvl = _kapture_export_ltvl()
    reference: dict[str, np.ndarray] = {}
    for i, d in enumerate(query_dirs):
        export_ltvl(str(d), str(tmp_path / f"ref{i}.txt"))
        reference |= _ltvl(tmp_path / f"ref{i}.txt")
    assert sorted(reference) == ["2010-10-30_17-47-25_73.jpg", "IMG_20130210_163012.jpg",
                                 "IMG_20161227_173116.jpg", "IMG_20170702_003917.jpg"]
    ours = _ltvl(pairs / "poses-top1.txt")
    assert sorted(ours) == sorted(reference)
    for name, pose in reference.items():  # each query took its twin's pose, which its kapture holds
        np.testing.assert_allclose(ours[name], pose, atol=1e-12, err_msg=name)
    assert res["localization"]["rates"]["0.25m,2deg"] == pytest.approx(100.0)


def test_robotcar_exports_read_back_by_kapture(tmp_path):
    raw = tmp_path / "raw" / "robotcar-seasons"
    twins = native_fixtures.kapture_robotcar(raw, query_poses=True)
    prepared = prepare_dataset("robotcar-seasons", tmp_path / "raw", tmp_path / "prep")
    meta = load_manifest(prepared, check_files=False).metadata
    assert (meta["ltvl_style"], meta["ltvl_cameras"]) == ("RobotCar_Seasons", ["rear"])
    res, pairs, expected = _score(tmp_path, prepared, twins)
    # the pairs keep every camera's queries, by their kapture names
    _check_pairs(pairs, raw / "mapping", [raw / "query"], expected)
    assert {line.split(" ")[0].split("/")[1] for line in (pairs / "pairs-top1.txt").read_text().splitlines()} == {
        "left", "rear", "right"}
    # kapture's exporter with -p (what --benchmark-style RobotCar_Seasons passes) prepends the sensor id, for
    # every camera; the server scores the rear camera only, which is all the suite writes
    export_ltvl = _kapture_export_ltvl()
    export_ltvl(str(raw / "query"), str(tmp_path / "ref.txt"), prepend_camera_name=True)
    reference = _ltvl(tmp_path / "ref.txt")
    assert {n.split("/")[0] for n in reference} == {"left", "rear", "right"}
    rear = {n: p for n, p in reference.items() if n.startswith("rear/")}
    assert sorted(rear) == ["rear/1418235223450115.jpg", "rear/1418235223451115.jpg",
                            "rear/1418235223550115.jpg", "rear/1418235223551115.jpg"]
    ours = _ltvl(pairs / "poses-top1.txt")
    assert sorted(ours) == sorted(rear)
    for name, pose in rear.items():  # through the rig (kapture: rigs_remove) or per camera, as kapture reads it
        np.testing.assert_allclose(ours[name], pose, atol=1e-9, err_msg=name)
    assert res["localization"]["rates"]["0.25m,2deg"] == pytest.approx(100.0)


def test_robotcar_import_wants_each_image_in_its_camera_folder(tmp_path):
    raw = tmp_path / "raw" / "robotcar-seasons"
    native_fixtures.kapture_robotcar(raw)
    rec = raw / "query" / "sensors" / "records_camera.txt"
    rec.write_text(rec.read_text().replace("night/left/", "night/rear/", 1))
    with pytest.raises(DarksideError, match=r"of camera 'left' is not in a 'left' folder"):
        prepare_dataset("robotcar-seasons", tmp_path / "raw", tmp_path / "prep")


def test_import_refuses_queries_sharing_a_benchmark_name(tmp_path):
    raw = tmp_path / "raw"
    cam = "c, , camera, SIMPLE_PINHOLE, 64, 48, 60, 32, 24\n"
    native_fixtures.kapture(raw / "mapping", cam, "0, c, db/0.jpg\n", traj="0, c, 1, 0, 0, 0, 0, 0, 0\n")
    native_fixtures.kapture(raw / "query", cam, "1, c, query/day/a/IMG_1.jpg\n2, c, query/night/b/IMG_1.jpg\n")
    parts = [KapturePart(raw / "mapping", "database", "day"), KapturePart(raw / "query", "query", "day")]
    with pytest.raises(DarksideError, match=r"two query images would be named 'IMG_1.jpg'"):
        import_kapture(parts, raw, tmp_path / "prep", "x", benchmark={"ltvl_style": "Default"})
    # without a declared style the ids (distinct) are the names
    import_kapture(parts, raw, tmp_path / "prep", "x")


def _rec(image_id: str) -> ImageRecord:
    return ImageRecord(f"images/{image_id}", image_id, "query", "night", "c", "c", 8, 8)


def test_benchmark_names_follow_the_declared_style(tmp_path):
    recs = [_rec("night-rain/rear/1418235223450115.png"), _rec("night-rain/left/1418235223450115.png"),
            _rec("query/night/nexus5x/IMG_1.jpg")]
    # the synthetic benchmark declares nothing: its ids
    assert benchmark_names({}, recs) == [r.image_id for r in recs]
    assert benchmark_names({"ltvl_style": "Default"}, recs) == ["1418235223450115.png", "1418235223450115.png",
                                                               "IMG_1.jpg"]
    robotcar = {"ltvl_style": "RobotCar_Seasons", "ltvl_cameras": ["rear"]}
    assert benchmark_names(robotcar, recs) == ["rear/1418235223450115.png", None, None]
    # read from a prepared folder's dataset.json, as a synthetic RobotCar-like set would declare it
    root = write_dataset(tmp_path / "synth-robotcar", "synth-robotcar", recs, GroundTruth("localization", [
        Query(r.image_id) for r in recs], database_split="database"), metadata=robotcar)
    assert benchmark_names(root, recs) == benchmark_names(load_manifest(root, check_files=False), recs)
    assert benchmark_names(root, recs)[0] == "rear/1418235223450115.png"
    with pytest.raises(ManifestError, match=r"ltvl_style 'Robotcar' is not one of"):
        benchmark_names({"ltvl_style": "Robotcar"}, recs)
    with pytest.raises(DarksideError, match=r"needs a <camera>/ folder"):
        benchmark_names({"ltvl_style": "RobotCar_Seasons"}, [_rec("top.png")])


def test_write_ltvl_poses_omits_and_refuses(tmp_path):
    ident = [1.0, 0, 0, 0, 0, 0, 0]
    p = write_ltvl_poses(tmp_path / "p.txt", ["a.jpg", None, "c.jpg"], np.array([ident, ident, [np.nan] * 7]))
    assert p.read_text() == "a.jpg 1.0 0.0 0.0 0.0 0.0 0.0 0.0\n"
    with pytest.raises(DarksideError, match=r"two images are named 'a.jpg'"):
        write_ltvl_poses(tmp_path / "p.txt", ["a.jpg", "a.jpg"], np.array([ident, ident]))
    with pytest.raises(DarksideError, match=r"white space"):
        write_ltvl_poses(tmp_path / "p.txt", ["a b.jpg"], np.array([ident]))
    with pytest.raises(DarksideError, match=r"2 names for 1 poses"):
        write_ltvl_poses(tmp_path / "p.txt", ["a.jpg", "b.jpg"], np.array([ident]))
