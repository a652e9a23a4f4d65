import json
from pathlib import Path

import numpy as np
from PIL import Image

from darkside.data.daynight import DayNightSettings, filter_day_night, median_lightness
from darkside.data.manifest import GroundTruth, ImageRecord, load_manifest, write_dataset


def _img(path, value, size=(64, 48)):
    arr = np.full((size[1], size[0], 3), value, np.uint8)
    arr[:4, :4] = 255  # a lit window must not fool the median
    Image.fromarray(arr).save(path)


def test_median_lightness_known_values():
    assert median_lightness(np.zeros((4, 4, 3), np.uint8)) == 0.0
    assert abs(median_lightness(np.full((4, 4, 3), 255, np.uint8)) - 100.0) < 1e-3


def test_filter_uses_labels_classifies_unlabelled_and_drops_small(tmp_path):
    (tmp_path / "images").mkdir()
    specs = [("d1", "day", 200, (64, 48)), ("d2", "day", 180, (64, 48)), ("n1", "night", 15, (64, 48)),
             ("small", "day", 200, (40, 30)), ("u_day", "other", 190, (64, 48)), ("u_night", "other", 10, (64, 48)),
             ("wrong", "night", 220, (64, 48))]  # a mislabelled bright "night" image
    records = []
    for name, domain, value, size in specs:
        _img(tmp_path / "images" / f"{name}.png", value, size)
        records.append(ImageRecord(f"{name}.png", name, "train", domain, name, name, *size))
    write_dataset(tmp_path, "toy", records, GroundTruth("training"))
    day, night, report = filter_day_night(load_manifest(tmp_path), DayNightSettings(48, 30.0))
    assert [r.image_id for r in day] == ["d1", "d2", "u_day"]
    assert [r.image_id for r in night] == ["n1", "u_night", "wrong"]  # labels win over the classifier
    assert report["dropped_min_side"] == 1 and report["classified_unlabelled"] == 2
    # 5 labelled images (incl. the small one), the classifier misses only the mislabelled one
    assert report["classifier"]["labelled_evaluated"] == 5
    assert report["classifier"]["accuracy"] == 80.0


def test_domains_tsv_labels_every_kept_image_of_every_domain(tmp_path):
    """domains.tsv: every kept image in manifest order, day and night as the two lists (an `other` image as
    classified), sunset under its own label, the small ones dropped; the report counts each domain."""
    from darkside.data.daynight import read_domains, write_day_night_lists

    (tmp_path / "images").mkdir()
    specs = [("d1", "day", 200, (64, 48)), ("s1", "sunset", 120, (64, 48)), ("n1", "night", 15, (64, 48)),
             ("s_small", "sunset", 120, (40, 30)), ("u_night", "other", 10, (64, 48)), ("s2", "sunset", 90, (64, 48)),
             ("u_day", "other", 190, (64, 48))]
    records = []
    for name, domain, value, size in specs:
        _img(tmp_path / "images" / f"{name}.png", value, size)
        records.append(ImageRecord(f"{name}.png", name, "train", domain, name, name, *size))
    records.append(ImageRecord("val.png", "val", "val", "sunset", "v", "v", 64, 48))  # not the training split
    _img(tmp_path / "images" / "val.png", 120)
    write_dataset(tmp_path, "toy", records, GroundTruth("training"))
    manifest, settings = load_manifest(tmp_path), DayNightSettings(48, 30.0)
    out = write_day_night_lists(manifest, settings, tmp_path / "lists", tmp_path / "report.json")
    assert (out / "domains.tsv").read_text() == (
        "path\tdomain\nd1.png\tday\ns1.png\tsunset\nn1.png\tnight\nu_night.png\tnight\ns2.png\tsunset\n"
        "u_day.png\tday\n")
    # the two lists as filter_day_night gives them (the two-domain families' input is unchanged)
    day, night, report = filter_day_night(manifest, settings)
    assert (out / "day.txt").read_text() == "d1.png\nu_day.png\n" == "".join(f"{r.path}\n" for r in day)
    assert (out / "night.txt").read_text() == "n1.png\nu_night.png\n" == "".join(f"{r.path}\n" for r in night)
    assert json.loads((tmp_path / "report.json").read_text())["domains"] == {"day": 2, "night": 2, "sunset": 2}
    assert report["domains"] == {"day": 2, "night": 2, "sunset": 2} and report["dropped_min_side"] == 1
    assert read_domains(out / "domains.tsv", "/root") == [
        (Path("/root/d1.png"), "day"), (Path("/root/s1.png"), "sunset"), (Path("/root/n1.png"), "night"),
        (Path("/root/u_night.png"), "night"), (Path("/root/s2.png"), "sunset"), (Path("/root/u_day.png"), "day")]
