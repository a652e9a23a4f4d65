"""Ensembles of descriptor files (Table 4): similarity = the mean of the parts' similarities, images aligned by
id, a missing image stays missing, a mismatch is one line naming both files; the verb and the typed ensemble."""

import json

import h5py
import numpy as np
import pytest

from darkside.cli import main
from darkside.errors import ConfigError, DarksideError
from darkside.extract.ensemble import combine, ensemble_descriptors
from darkside.extract.hdf5 import DescriptorSet, read_descriptors, write_descriptors
from darkside.hashing import sha256_file
from darkside.recipes import Ensemble, ensemble_by_name, part_recipes, recipe_by_name, recipe_or_ensemble


def _part(path, ids, dim, rng, qids=None, skipped=(), dataset="d", **attrs):
    """A descriptor file of random (not unit) descriptors; returns the path and the unit rows by id."""
    x = rng.normal(size=(len(ids), dim)).astype(np.float32)
    q = rng.normal(size=(len(qids), dim)).astype(np.float32) if qids is not None else None
    write_descriptors(path, DescriptorSet(list(ids), x, list(qids) if qids is not None else None, q,
                                          {"dataset": dataset, "model": f"models/{path.stem}.pt",
                                           "model_sha256": "ab" * 32, "skipped_ids": list(skipped), **attrs}))
    unit = lambda m: m / np.linalg.norm(m, axis=1, keepdims=True)  # noqa: E731
    return path, dict(zip(ids, unit(x.astype(np.float64)), strict=True)), (
        dict(zip(qids, unit(q.astype(np.float64)), strict=True)) if q is not None else None)


def test_similarity_is_the_mean_of_the_parts_similarities(tmp_path):
    rng = np.random.default_rng(0)
    ids, qids = [f"i{k}" for k in range(7)], ["i1", "i4", "i6"]
    parts = [_part(tmp_path / f"p{k}.h5", ids, dim, rng, qids) for k, dim in enumerate((8, 5, 3))]
    out = ensemble_descriptors([p for p, _, _ in parts], tmp_path / "e.h5")
    assert out == tmp_path / "e.h5"
    e = read_descriptors(out)
    assert e.image_ids == ids and e.descriptors.shape == (7, 16) and e.query_descriptors.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(e.descriptors, axis=1), 1.0, atol=1e-6)
    db = [np.stack([u[i] for i in ids]) for _, u, _ in parts]
    qs = [np.stack([q[i] for i in qids]) for _, _, q in parts]
    np.testing.assert_allclose(e.descriptors @ e.descriptors.T, np.mean([d @ d.T for d in db], axis=0), atol=1e-6)
    np.testing.assert_allclose(e.query_descriptors @ e.descriptors.T,  # cropped queries against the database
                               np.mean([q @ d.T for q, d in zip(qs, db, strict=True)], axis=0), atol=1e-6)
    # two parts: the mean of two similarities, whatever the parts' scales
    a, b = rng.normal(size=(4, 6)) * 3, rng.normal(size=(4, 2)) * 0.1
    na, nb = (m / np.linalg.norm(m, axis=1, keepdims=True) for m in (a, b))
    c = combine([a, b])
    np.testing.assert_allclose(c @ c.T, (na @ na.T + nb @ nb.T) / 2, atol=1e-6)


def test_images_are_aligned_by_id_and_attrs_record_the_parts(tmp_path):
    rng = np.random.default_rng(1)
    ids = [f"i{k}" for k in range(6)]
    a, ua, _ = _part(tmp_path / "a.h5", ids, 4, rng, preset="mini")
    b, ub, _ = _part(tmp_path / "b.h5", ids[::-1], 4, rng, preset="mini")  # the same images, another order
    e = read_descriptors(ensemble_descriptors([a, b], tmp_path / "e.h5"))
    assert e.image_ids == ids  # the first part's order
    want = np.stack([np.concatenate([ua[i], ub[i]]) / np.sqrt(2) for i in ids])
    np.testing.assert_allclose(e.descriptors, want, atol=1e-6)
    parts = e.attrs["parts"]
    assert [p["descriptors"] for p in parts] == [str(a), str(b)]
    assert [p["sha256"] for p in parts] == [sha256_file(a), sha256_file(b)]
    assert [p["model"] for p in parts] == ["models/a.pt", "models/b.pt"] and [p["dim"] for p in parts] == [4, 4]
    assert e.attrs["dataset"] == "d" and e.attrs["preset"] == "mini" and e.attrs["skipped_images"] == 0
    assert e.attrs["model"] == "models/a.pt + models/b.pt"
    with h5py.File(tmp_path / "e.h5") as f:  # plain h5py reads the record as JSON
        assert json.loads(f.attrs["parts"])[1]["sha256"] == sha256_file(b)


def test_an_image_missing_in_a_part_stays_missing(tmp_path):
    rng = np.random.default_rng(2)
    ids, qids = [f"i{k}" for k in range(6)], ["i0", "i2", "i5"]
    a, _, _ = _part(tmp_path / "a.h5", ids, 4, rng, qids)
    # b skipped i3 (and query i2) at extraction, and its i4 is not finite
    b, _, _ = _part(tmp_path / "b.h5", [i for i in ids if i != "i3"], 4, rng, ["i0", "i5"], skipped=["i3", "i2"])
    with h5py.File(b, "r+") as f:
        f["descriptors"][3] = np.nan  # row of i4
    e = read_descriptors(ensemble_descriptors([a, b], tmp_path / "e.h5"))
    assert e.image_ids == ["i0", "i1", "i2", "i5"] and np.isfinite(e.descriptors).all()
    assert e.query_ids == ["i0", "i5"]
    assert set(e.attrs["skipped_ids"]) == {"i3", "i2", "i4"} and e.attrs["skipped_images"] == 3


def test_a_mismatch_is_one_line_naming_both_files(tmp_path):
    rng = np.random.default_rng(3)
    a, _, _ = _part(tmp_path / "a.h5", ["x", "y", "z"], 4, rng, ["x"])
    b, _, _ = _part(tmp_path / "b.h5", ["x", "y", "w"], 4, rng, ["x"])  # w is no image of a's, z not skipped
    with pytest.raises(DarksideError, match=r"a\.h5: image ids do not match those of .*b\.h5 \('z'") as exc:
        ensemble_descriptors([a, b], tmp_path / "e.h5")
    assert "\n" not in str(exc.value)
    c, _, _ = _part(tmp_path / "c.h5", ["x", "y", "z"], 4, rng, ["y"])
    with pytest.raises(DarksideError, match=r"a\.h5: query ids do not match those of .*c\.h5"):
        ensemble_descriptors([a, c], tmp_path / "e.h5")
    d, _, _ = _part(tmp_path / "d.h5", ["x", "y", "z"], 4, rng)
    with pytest.raises(DarksideError, match=r"a\.h5: has cropped queries \(/queries\) but .*d\.h5 has none"):
        ensemble_descriptors([a, d], tmp_path / "e.h5")
    f, _, _ = _part(tmp_path / "f.h5", ["x", "y", "z"], 4, rng, ["x"], dataset="other")
    with pytest.raises(DarksideError, match=r"a\.h5: dataset 'd' differs from .*f\.h5's 'other'"):
        ensemble_descriptors([a, f], tmp_path / "e.h5")
    with pytest.raises(DarksideError, match="two or more"):
        ensemble_descriptors([a], tmp_path / "e.h5")
    assert not (tmp_path / "e.h5").exists()


def test_the_verb_combines_each_dataset_of_one_job(tmp_path, capsys):
    rng = np.random.default_rng(4)
    files = {(m, d): _part(tmp_path / f"{m}-{d}.h5", ["i0", "i1", "i2"], 3, rng, dataset=d)[0]
             for m in ("a", "b") for d in ("tokyo", "oxford")}
    argv = ["ensemble"]
    for d in ("tokyo", "oxford"):
        argv += ["--part", str(files["a", d]), "--part", str(files["b", d]), "--out", str(tmp_path / f"e-{d}.h5")]
    assert main(argv) == 0
    for d in ("tokyo", "oxford"):
        e = read_descriptors(tmp_path / f"e-{d}.h5")
        assert e.attrs["dataset"] == d and [p["descriptors"] for p in e.attrs["parts"]] == [
            str(files["a", d]), str(files["b", d])]
    assert main(["ensemble", "--part", str(files["a", "tokyo"]), "--out", str(tmp_path / "x.h5")]) == 2
    assert "needs two or more --part files before it" in capsys.readouterr().err
    assert main(["ensemble", "--part", str(files["a", "tokyo"]), "--part", str(files["b", "tokyo"]), "--out",
                 str(tmp_path / "y.h5"), "--part", str(files["a", "oxford"])]) == 2
    assert "has no --out after it" in capsys.readouterr().err


def test_an_ensemble_is_typed_by_its_part_recipes():
    e = recipe_or_ensemble("hedngan-cd+cyclegan-cd", ["hedngan", "cyclegan"])
    assert isinstance(e, Ensemble) and [p.name for p in part_recipes(e)] == ["hedngan-cd", "cyclegan-cd"]
    # it trains nothing itself: no generator, weights or test-time translation of its own
    assert (e.generator, e.weights_of, e.night_to_day, e.finetune) == (None, None, None, False)
    assert not e.day_night_pairs and ensemble_by_name("gem+gem-nd").day_night_pairs  # N/D: a part's
    assert part_recipes(recipe_by_name("gem")) == (recipe_by_name("gem"),)
    with pytest.raises(ConfigError, match=r"recipe 'nonesuch\+gem': ensemble part 'nonesuch' is not a recipe"):
        recipe_or_ensemble("nonesuch+gem")
    with pytest.raises(ConfigError, match="two or more different recipes"):
        ensemble_by_name("gem+gem")
