"""`darkside extract` on a dataset with a truncated image: one line naming the file and no output,
or, with --on-corrupt skip, the image is skipped and counted in the HDF5 attributes."""

import numpy as np
import yaml
from PIL import Image

from darkside.cli import main
from darkside.data.manifest import GroundTruth, ImageRecord, Query, write_dataset
from darkside.extract.hdf5 import read_descriptors


def _dataset(tmp_path):
    root = tmp_path / "toy"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    records = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(root / "images" / f"{i}.png")
        records.append(ImageRecord(f"{i}.png", f"im{i}", "test", "day", f"s{i // 2}", "p", 56, 40))
    data = (root / "images" / "2.png").read_bytes()
    (root / "images" / "2.png").write_bytes(data[: len(data) // 2])  # truncated mid-stream
    gt = GroundTruth("tokyo", [Query(f"im{i}", positives=[f"im{i ^ 1}"], junk=[f"im{i}"]) for i in range(4)])
    write_dataset(root, "toy", records, gt)
    return root


def test_truncated_image_stops_extraction_with_one_line(tmp_path, repo_root, capsys):
    # the mini backbone starts from the DAG's pre-trained weights; a seeded random trunk is enough here
    p = yaml.safe_load((repo_root / "params.yaml").read_text())
    p["presets"]["mini"]["backbones"]["vgg16"].update(init="random", weights=None)
    params = str(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    model = tmp_path / "model.pt"
    assert main(["init-model", "--params", params, "--backbone", "vgg16", "--out", str(model)]) == 0
    root = _dataset(tmp_path)
    out = tmp_path / "d.h5"
    capsys.readouterr()
    assert main(["extract", "--params", params, "--model", str(model), "--dataset", str(root),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # logging and progress come before the error
    errors = [line for line in err if line.startswith("darkside: error: ")]
    assert errors == [err[-1]] and "2.png: corrupt or truncated image" in err[-1]
    assert not out.exists() and not list(tmp_path.glob("*.part"))

    assert main(["extract", "--params", params, "--model", str(model), "--dataset", str(root),
                 "--out", str(out), "--on-corrupt", "skip"]) == 0
    ds = read_descriptors(out)
    assert ds.image_ids == ["im0", "im1", "im3"]
    assert ds.attrs["skipped_images"] == 1 and ds.attrs["skipped_ids"] == ["im2"]
