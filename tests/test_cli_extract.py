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


def _mini_params(tmp_path, repo_root):
    p = yaml.safe_load((repo_root / "params.yaml").read_text())
    p["presets"]["mini"]["backbones"]["vgg16"].update(init="random", weights=None)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    return str(tmp_path / "params.yaml")


def _day_night_dataset(root, night_images=None):
    """Two day and two night images; ``night_images`` replaces the nights' pixels."""
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    records = []
    for i, domain in enumerate(["day", "night", "day", "night"]):
        arr = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
        if domain == "night" and night_images is not None:
            arr = night_images[i]
        Image.fromarray(arr).save(root / "images" / f"{i}.png")
        records.append(ImageRecord(f"{i}.png", f"im{i}", "test", domain, f"s{i // 2}", "p", 56, 40))
    gt = GroundTruth("tokyo", [Query(f"im{i}", positives=[f"im{i ^ 1}"], junk=[f"im{i}"]) for i in range(4)])
    write_dataset(root, "toy", records, gt)
    return root


def test_night_images_are_translated_to_day_at_test_time(tmp_path, repo_root, capsys):
    """`extract --night-to-day` sends exactly the night-domain images through the two-way family's night->day
    generator: the same descriptors as extracting a copy whose night images were translated beforehand."""
    import torch
    from test_gan_train import tiny

    from darkside.gan.family import build, save_generator
    from darkside.gan.translator import load_night_to_day

    params = _mini_params(tmp_path, repo_root)
    model = tmp_path / "model.pt"
    assert main(["init-model", "--params", params, "--backbone", "vgg16", "--out", str(model)]) == 0
    gen = save_generator(build(tiny("cyclegan"), "cpu", seed=0), tmp_path / "cyclegan.pt")
    root = _day_night_dataset(tmp_path / "toy")
    n2d = load_night_to_day(gen)
    translated = {}
    for i in (1, 3):
        x = torch.from_numpy(np.asarray(Image.open(root / "images" / f"{i}.png"), dtype=np.float32) / 255.0)
        y = n2d.translate(x.permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
        translated[i] = (y * 255.0 + 0.5).astype(np.uint8)
    copy = _day_night_dataset(tmp_path / "copy", translated)
    out, ref, plain = tmp_path / "n2d.h5", tmp_path / "ref.h5", tmp_path / "plain.h5"
    assert main(["extract", "--params", params, "--model", str(model), "--dataset", str(root), "--out", str(out),
                 "--night-to-day", str(gen)]) == 0
    assert main(["extract", "--params", params, "--model", str(model), "--dataset", str(copy), "--out", str(ref)]) == 0
    assert main(["extract", "--params", params, "--model", str(model), "--dataset", str(root),
                 "--out", str(plain)]) == 0
    a, b, c = (read_descriptors(p) for p in (out, ref, plain))
    np.testing.assert_allclose(a.descriptors, b.descriptors, atol=1e-6)
    np.testing.assert_array_equal(a.descriptors[[0, 2]], c.descriptors[[0, 2]])  # day images untouched
    assert not np.allclose(a.descriptors[[1, 3]], c.descriptors[[1, 3]], atol=1e-4)
    assert a.attrs["settings"]["night_to_day"] == str(gen) and c.attrs["settings"]["night_to_day"] is None

    one_way = save_generator(build(tiny("cut"), "cpu", seed=0), tmp_path / "cut.pt")
    capsys.readouterr()
    assert main(["extract", "--params", params, "--model", str(model), "--dataset", str(root),
                 "--out", str(tmp_path / "x.h5"), "--night-to-day", str(one_way)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"darkside: error: {one_way}: CUT has no night->day generator (a one-way family, or a file written without it)")
