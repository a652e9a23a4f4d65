"""An authors' published generator file (CyEDA's pretrain/*_net_G_A.pth) becomes a darkside generator file that
translates exactly as the authors' network does; bad files are refused with one line naming them."""

import pickle

import pytest
import torch

from darkside.errors import DarksideError
from darkside.gan.families.cyeda import UnetMaskGenerator
from darkside.gan.family import GanTraining, family_class, setup_for
from darkside.gan.published import import_published, published_name, strip_data_parallel
from darkside.gan.translator import load_translator
from darkside.settings import parse

torch.set_num_threads(1)


def cyeda_setup(base_width: int = 2):
    common = GanTraining(crop=32, scale_min=0.8, lr=2e-4, beta1=0.5, beta2=0.999, sample_images=2, cache_images=True)
    entry = dict(batch_size=2, pairs_per_epoch=4, epochs_constant=1, epochs_decay=1, base_width=base_width,
                 n_masks=3, ndf=4, n_layers_d=3, init="normal", init_gain=0.02, lr=1e-4, edge_weight=3.0,
                 pool_size=3, reconstructions=False)
    return setup_for("cyeda", common, parse(family_class("cyeda").Settings, entry, "gan.families.cyeda"), {})


def authors_file(path, net: torch.nn.Module, data_parallel: bool = True):
    # the authors' code saves network.state_dict() of an nn.DataParallel, hence module.-prefixed keys
    state = {("module." if data_parallel else "") + k: v for k, v in net.state_dict().items()}
    torch.save(state, path)
    return path


@pytest.fixture
def authors_net():
    torch.manual_seed(0)
    net = UnetMaskGenerator(base_width=2, n_masks=3)
    with torch.no_grad():  # non-trivial batch-norm statistics, as a trained file has
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.mark.parametrize("data_parallel", [True, False])
def test_imported_file_translates_as_the_authors_network(tmp_path, authors_net, data_parallel):
    src = authors_file(tmp_path / "bdd100k_net_G_A.pth", authors_net, data_parallel)
    out = import_published("cyeda-bdd", cyeda_setup(), src, tmp_path / "gans" / "cyeda-bdd" / "generator.pt")
    assert published_name(out) == "cyeda-bdd"
    tr = load_translator("cyeda-bdd", out)
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ((authors_net(x * 2 - 1) + 1) / 2).clamp(0, 1)
    assert torch.allclose(tr.translate(x), expected, atol=1e-6)
    # the family name does not stand for the import, nor the import for another name
    with pytest.raises(DarksideError, match="unknown kind 'cyeda-gta'"):
        load_translator("cyeda-gta", out)


def test_strip_data_parallel_only_when_every_key_has_the_prefix():
    t = torch.zeros(1)
    assert strip_data_parallel({"module.a": t, "module.b": t}) == {"a": t, "b": t}
    assert set(strip_data_parallel({"module.a": t, "b": t})) == {"module.a", "b"}


def test_bad_published_files_are_refused_in_one_line(tmp_path, authors_net):
    setup, out = cyeda_setup(), tmp_path / "out.pt"
    with pytest.raises(DarksideError, match=r"absent\.pth: published CyEDA generator file does not exist"):
        import_published("cyeda-bdd", setup, tmp_path / "absent.pth", out)
    wide = authors_file(tmp_path / "wide.pth", UnetMaskGenerator(base_width=4, n_masks=3))
    with pytest.raises(DarksideError, match=r"wide\.pth: weights do not fit the CyEDA generator of this preset "
                                            r"\(key 'conv1_1\.weight' has shape \(4, 3, 3, 3\), "
                                            r"expected \(2, 3, 3, 3\)"):
        import_published("cyeda-bdd", setup, wide, out)
    other = tmp_path / "other.pth"
    torch.save({"module.conv1_1.weight": torch.zeros(2, 3, 3, 3)}, other)
    with pytest.raises(DarksideError, match=r"other\.pth: weights do not fit .* "
                                            r"\(missing key 'conv1_1\.bias'; 115 missing, 0 unexpected\)"):
        import_published("cyeda-bdd", setup, other, out)
    pickled = tmp_path / "pickled.pth"
    pickled.write_bytes(pickle.dumps({"net": authors_net}))
    with pytest.raises(DarksideError, match=r"pickled\.pth: unreadable published CyEDA generator file"):
        import_published("cyeda-bdd", setup, pickled, out)
    truncated = tmp_path / "truncated.pth"  # a download cut short
    truncated.write_bytes(authors_file(tmp_path / "ok.pth", authors_net).read_bytes()[:500])
    with pytest.raises(DarksideError, match=r"truncated\.pth: unreadable"):
        import_published("cyeda-bdd", setup, truncated, out)
    assert not out.exists()  # nothing written on any failure
