"""Restricted unpickler: numpy ground-truth pickles load, code-running pickles are refused unrun."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from darkside.data.safe_pickle import ForbiddenGlobalError, load_pickle
from darkside.errors import DarksideError

GND = {
    "imlist": ["all_souls_000001", "radcliffe_camera_000002"],
    "qimlist": ["all_souls_000013"],
    "gnd": [
        {
            "bbx": np.array([1.5, 2.0, 30.0, 40.0]),
            "easy": np.array([0]),
            "hard": np.array([], dtype=np.int64),
            "junk": [1],
            "score": np.float64(0.25),
            "n": np.int32(7),
        }
    ],
    "extra": (set([1, 2]), frozenset(["a"]), b"raw", 3 + 4j, None, True),
}


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_ground_truth_round_trips(tmp_path, protocol):
    path = tmp_path / "gnd.pkl"
    path.write_bytes(pickle.dumps(GND, protocol=protocol))
    obj = load_pickle(path)
    g = obj["gnd"][0]
    np.testing.assert_array_equal(g["bbx"], [1.5, 2.0, 30.0, 40.0])
    assert g["easy"].dtype == np.int64 or g["easy"].dtype == np.intp
    assert g["hard"].shape == (0,) and g["score"] == 0.25 and g["n"] == 7 and g["n"].dtype == np.int32
    assert obj["extra"] == GND["extra"] and obj["imlist"] == GND["imlist"]


def test_numpy1_module_path_is_accepted(tmp_path):
    # numpy 1.x writes 'numpy.core.multiarray'; protocol 2 spells globals as text lines
    data = pickle.dumps({"a": np.arange(4.0)}, protocol=2)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in data
    (tmp_path / "old.pkl").write_bytes(data)
    np.testing.assert_array_equal(load_pickle(tmp_path / "old.pkl")["a"], [0.0, 1.0, 2.0, 3.0])


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_code_running_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"gnd": [_Evil(marker)]}, protocol=2))
    with pytest.raises(ForbiddenGlobalError) as err:
        load_pickle(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "system" in msg and "forbidden global" in msg
    assert not marker.exists()


@pytest.mark.parametrize(
    "module, name",
    [("builtins", "eval"), ("subprocess", "Popen"), ("numpy", "load"), ("numpy.core.multiarray", "frombuffer_evil")],
)
def test_other_globals_are_refused(tmp_path, module, name):
    path = tmp_path / "g.pkl"
    path.write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"q\x00.")
    with pytest.raises(ForbiddenGlobalError, match=f"{module}.{name}"):
        load_pickle(path)


def test_truncated_and_missing_pickles_are_one_line_errors(tmp_path):
    path = tmp_path / "t.pkl"
    path.write_bytes(pickle.dumps(GND, protocol=4)[:50])
    with pytest.raises(DarksideError, match="not a valid pickle"):
        load_pickle(path)
    with pytest.raises(DarksideError, match="does not exist"):
        load_pickle(tmp_path / "none.pkl")
