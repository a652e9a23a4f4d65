import copy

import pytest
import yaml

from darkside.config import load_params, load_preset, validate
from darkside.errors import ConfigError


@pytest.fixture()
def params(repo_root):
    return load_params(repo_root / "params.yaml")


def _error(params) -> str:
    with pytest.raises(ConfigError) as exc:
        validate(params)
    return str(exc.value)


def test_committed_params_are_valid(params):
    assert params["preset"] == "mini"
    assert set(params["presets"]) >= {"mini", "paper"}


def test_unknown_key_is_named(params):
    p = copy.deepcopy(params)
    p["presets"]["mini"]["extract"]["scalez"] = [1]
    assert _error(p) == "params.yaml: presets.mini.extract.scalez: unknown key"


def test_wrong_type_is_named(params):
    p = copy.deepcopy(params)
    p["presets"]["paper"]["extract"]["scales"][1] = "half"
    msg = _error(p)
    assert msg.startswith("params.yaml: presets.paper.extract.scales[1]:")
    assert "number" in msg


def test_missing_key_is_named(params):
    p = copy.deepcopy(params)
    del p["presets"]["mini"]["evaluate"]["recall_ks"]
    assert "presets.mini.evaluate" in _error(p) and "recall_ks" in _error(p)


def test_unknown_preset(params):
    p = copy.deepcopy(params)
    p["preset"] = "huge"
    assert "preset: 'huge'" in _error(p)


def test_bad_enum_value(params):
    p = copy.deepcopy(params)
    p["presets"]["mini"]["backbones"]["vgg16"]["init"] = "imagenet"
    assert "presets.mini.backbones.vgg16.init" in _error(p)


def test_cli_reports_schema_error_in_one_line(tmp_path, repo_root, capsys):
    from darkside.cli import main

    p = yaml.safe_load((repo_root / "params.yaml").read_text())
    p["presets"]["mini"]["evaluate"]["chunk_size"] = 0
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(p))
    assert main(["params", "--params", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "presets.mini.evaluate.chunk_size" in err


def test_snakemake_validates_with_the_same_schema(repo_root, params):
    """workflow/schemas/params.schema.yaml is the package's schema (Snakemake's `validate`)."""
    link = repo_root / "workflow" / "schemas" / "params.schema.yaml"
    from darkside.config import SCHEMA_PATH

    assert link.resolve() == SCHEMA_PATH.resolve()
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate as sm_validate

    sm_validate(copy.deepcopy(params), str(link))
    bad = copy.deepcopy(params)
    bad["presets"]["mini"]["extract"]["batch_size"] = "many"
    with pytest.raises(WorkflowError):
        sm_validate(bad, str(link))


# --- the paper preset carries the paper's values (SPEC section 7 and 8) -------------------------------

def test_paper_preset_extraction_values(repo_root):
    paper = load_preset(repo_root / "params.yaml", "paper")
    e = paper.extract
    assert e.image_size == 1024  # test images at max side 1024
    assert e.scales == pytest.approx((1.0, 2 ** -0.5, 0.5))  # scales 1, 1/sqrt(2), 1/2
    assert paper.raw["whitening"]["image_size"] == 1024  # whitening fitted at 1024 px
    assert paper.roles["whiten"] == "sfm120k-whiten"
    assert paper.raw["day_night"]["min_side"] == 512


def test_paper_preset_backbones(repo_root):
    paper = load_preset(repo_root / "params.yaml", "paper")
    vgg, r101 = paper.backbone("vgg16"), paper.backbone("resnet101")
    assert (vgg.arch, vgg.width, vgg.blocks, vgg.init) == ("vgg16", 1.0, None, "imagenet-caffe")
    assert vgg.weights.endswith("imagenet-caffe-vgg16-features-d369c8e.pth")
    assert (r101.arch, r101.width, r101.blocks, r101.init) == ("resnet101", 1.0, None, "imagenet-caffe")
    assert r101.weights.endswith("imagenet-caffe-resnet101-features-10a101d.pth")


def test_paper_preset_evaluation_values(repo_root):
    ev = load_preset(repo_root / "params.yaml", "paper").evaluate
    assert ev.recall_ks == (1, 2, 4, 8)
    assert ev.localization_thresholds == ((0.25, 2.0), (0.5, 5.0), (5.0, 10.0))
    assert ev.pairs_topk == 20


def test_presets_share_one_structure(params):
    """Same code, two scales: the presets differ in values only, never in keys."""
    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict) and k not in ("backbones",):
                out |= keys(v, prefix + k + ".")
        return out

    assert keys(params["presets"]["mini"]) == keys(params["presets"]["paper"])


def test_paper_preset_finetune_is_the_pinned_recipe(repo_root):
    """params.yaml's paper metric-learning numbers are exactly the ones the recipe tests pin (SPEC 6)."""
    from darkside.embed.recipes import PAPER_FINETUNE, FinetuneSettings

    paper = load_preset(repo_root / "params.yaml", "paper")
    assert FinetuneSettings.from_dict(paper.raw["finetune"]) == FinetuneSettings.from_dict(PAPER_FINETUNE)


def test_mini_preset_finetune_is_the_fixture_tests_use(repo_root):
    """``MINI_FINETUNE`` (what the fast training tests start from) is params.yaml's mini section, so a
    change of a mini value cannot leave the tests exercising a recipe the suite no longer runs."""
    from darkside.embed.recipes import MINI_FINETUNE, FinetuneSettings

    mini = load_preset(repo_root / "params.yaml", "mini")
    assert FinetuneSettings.from_dict(mini.raw["finetune"]) == FinetuneSettings.from_dict(MINI_FINETUNE)
