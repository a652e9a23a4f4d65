import h5py
import numpy as np
import pytest

from darkside.atomic import atomic_path, atomic_write_json
from darkside.errors import DarksideError
from darkside.extract.hdf5 import DescriptorSet, read_descriptors, write_descriptors


def test_atomic_path_success_and_failure(tmp_path):
    target = tmp_path / "out" / "file.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "killed.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_json(tmp_path):
    p = atomic_write_json(tmp_path / "m.json", {"b": 1, "a": [1.5]})
    assert p.read_text() == '{\n  "a": [\n    1.5\n  ],\n  "b": 1\n}\n'


def test_hdf5_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    desc = rng.standard_normal((5, 8)).astype(np.float32)
    q = rng.standard_normal((2, 8)).astype(np.float32)
    data = DescriptorSet(["a/1", "a/2", "b", "c", "d"], desc, ["q1", "q2"], q,
                         {"model": "vgg16-gem", "settings": {"scales": [1.0, 0.5]}, "skipped_images": 0})
    path = write_descriptors(tmp_path / "x.h5", data)
    back = read_descriptors(path)
    assert back.image_ids == data.image_ids and back.query_ids == ["q1", "q2"]
    np.testing.assert_array_equal(back.descriptors, desc)
    np.testing.assert_array_equal(back.query_descriptors, q)
    assert back.attrs["settings"] == {"scales": [1.0, 0.5]} and back.attrs["skipped_images"] == 0
    with h5py.File(path) as f:  # readable with plain h5py
        assert f["descriptors"].shape == (5, 8)


def test_hdf5_errors(tmp_path):
    with pytest.raises(DarksideError, match="does not exist"):
        read_descriptors(tmp_path / "none.h5")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(DarksideError, match=r"bad\.h5: unreadable HDF5 file"):
        read_descriptors(tmp_path / "bad.h5")
