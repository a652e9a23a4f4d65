import json

import pytest

from darkside.data.manifest import (
    GroundTruth,
    ImageRecord,
    Query,
    load_groundtruth,
    load_manifest,
    write_dataset,
)
from darkside.errors import ManifestError


def _dataset(tmp_path, records=None, gt=None):
    records = records or [
        ImageRecord("a.png", "a", "test", "day", "s1", "p1", 4, 3),
        ImageRecord("b.png", "b", "test", "night", "s1", "p1", 4, 3, pose=(1, 0, 0, 0, 0.5, 0, 2)),
    ]
    (tmp_path / "images").mkdir(exist_ok=True)
    for r in records:
        (tmp_path / "images" / r.path).write_bytes(b"x")
    gt = gt or GroundTruth("tokyo", [Query("a", positives=["b"], junk=["a"]), Query("b", positives=["a"])])
    return write_dataset(tmp_path, "toy", records, gt)


def test_round_trip(tmp_path):
    root = _dataset(tmp_path)
    m = load_manifest(root)
    assert m.ids == ["a", "b"]
    assert m.records[1].pose == (1, 0, 0, 0, 0.5, 0, 2)
    assert m.records[0].pose is None
    gt = load_groundtruth(root, m)
    assert gt.protocol == "tokyo" and gt.queries[0].positives == ["b"] and gt.queries[0].junk == ["a"]


def test_missing_column(tmp_path):
    root = _dataset(tmp_path)
    csv = (root / "manifest.csv").read_text().replace("domain", "lighting", 1)
    (root / "manifest.csv").write_text(csv)
    with pytest.raises(ManifestError, match=r"manifest.csv: missing column\(s\) domain"):
        load_manifest(root)


def test_unknown_domain(tmp_path):
    root = _dataset(tmp_path)
    csv = (root / "manifest.csv").read_text().replace(",night,", ",dusk,")
    (root / "manifest.csv").write_text(csv)
    with pytest.raises(ManifestError, match=r"manifest.csv:3: unknown domain 'dusk'"):
        load_manifest(root)


def test_dangling_image_path(tmp_path):
    root = _dataset(tmp_path)
    (root / "images" / "b.png").unlink()
    with pytest.raises(ManifestError, match=r"manifest.csv:3: image .*b.png does not exist"):
        load_manifest(root)
    assert len(load_manifest(root, check_files=False)) == 2


def test_duplicate_id(tmp_path):
    root = _dataset(tmp_path)
    lines = (root / "manifest.csv").read_text().splitlines()
    (root / "manifest.csv").write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(ManifestError, match="duplicate image id 'a'"):
        load_manifest(root)


def test_groundtruth_unknown_id(tmp_path):
    root = _dataset(tmp_path)
    gt = json.loads((root / "groundtruth.json").read_text())
    gt["queries"][0]["positives"] = ["zzz"]
    (root / "groundtruth.json").write_text(json.dumps(gt))
    with pytest.raises(ManifestError, match=r"queries\[0\].positives: image id 'zzz' is not in the manifest"):
        load_groundtruth(root)


def test_groundtruth_revisited_needs_easy_hard(tmp_path):
    root = _dataset(tmp_path)
    gt = {"protocol": "revisited", "queries": [{"query": "a", "easy": ["b"], "junk": []}]}
    (root / "groundtruth.json").write_text(json.dumps(gt))
    with pytest.raises(ManifestError, match=r"queries\[0\].hard: missing"):
        load_groundtruth(root)


def test_groundtruth_unknown_protocol_and_key(tmp_path):
    root = _dataset(tmp_path)
    (root / "groundtruth.json").write_text(json.dumps({"protocol": "oxford"}))
    with pytest.raises(ManifestError, match="protocol: 'oxford' is not one of"):
        load_groundtruth(root)
    (root / "groundtruth.json").write_text(json.dumps({"protocol": "tokyo", "querys": []}))
    with pytest.raises(ManifestError, match="querys: unknown key"):
        load_groundtruth(root)


def test_write_refuses_inconsistent_groundtruth(tmp_path):
    records = [ImageRecord("a.png", "a", "test", "day", "s1", "p1", 4, 3)]
    with pytest.raises(ManifestError, match="image id 'b' is not in the manifest"):
        write_dataset(tmp_path, "toy", records, GroundTruth("tokyo", [Query("a", positives=["b"])]))
    assert not (tmp_path / "manifest.csv").exists()


def test_missing_files_name_the_step(tmp_path):
    with pytest.raises(ManifestError, match=r"dataset\.json: missing"):
        load_manifest(tmp_path)
