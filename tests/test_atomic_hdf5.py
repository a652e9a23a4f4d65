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


def _local(rng, sizes, dim=4):
    from darkside.extract.hdf5 import LocalFeatures
    return LocalFeatures.concat([(rng.standard_normal((n, dim)).astype(np.float32),
                                  rng.random(n).astype(np.float32)) for n in sizes], dim)


def test_local_features_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    local, qlocal = _local(rng, [3, 0, 2]), _local(rng, [4])
    data = DescriptorSet(["a", "b", "c"], np.eye(3, dtype=np.float32), ["q"], np.eye(3, dtype=np.float32)[:1],
                         local=local, query_local=qlocal)
    back = read_descriptors(write_descriptors(tmp_path / "l.h5", data))
    assert back.local.offsets.tolist() == [0, 3, 3, 5] and back.query_local.offsets.tolist() == [0, 4]
    np.testing.assert_array_equal(back.local.of(2), local.descriptors[3:5])
    np.testing.assert_array_equal(back.local.attention, local.attention)
    np.testing.assert_array_equal(back.query_local.descriptors, qlocal.descriptors)
    with h5py.File(tmp_path / "l.h5") as f:  # plain h5py: the documented layout
        assert f["local/descriptors"].shape == (5, 4) and f["local/offsets"].dtype == np.int64
        assert f["local/attention"].shape == (5,) and f["queries/local/offsets"][()].tolist() == [0, 4]


def test_truncated_local_descriptor_file_is_one_line_naming_it(tmp_path):
    rng = np.random.default_rng(0)
    path = write_descriptors(tmp_path / "l.h5", DescriptorSet(["a", "b"], np.eye(2, dtype=np.float32),
                                                              local=_local(rng, [300, 200], dim=64)))
    raw = path.read_bytes()
    (tmp_path / "cut.h5").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DarksideError, match=r"cut\.h5: ") as err:
        read_descriptors(tmp_path / "cut.h5")
    assert "\n" not in str(err.value)
    with h5py.File(path, "a") as f:  # offsets that do not end at the descriptors' count
        del f["local/offsets"]
        f["local/offsets"] = np.array([0, 300, 400], dtype=np.int64)
    with pytest.raises(DarksideError, match=r"l\.h5: /local is inconsistent .*truncated local-descriptor file"):
        read_descriptors(path)
    with h5py.File(path, "a") as f:
        del f["local/attention"]
    with pytest.raises(DarksideError, match=r"l\.h5: /local lacks one of"):
        read_descriptors(path)
