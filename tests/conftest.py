import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def load_benchmark(name: str):
    """A script of ``benchmarks/`` as a module (they are run as files, not installed)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pytest_configure(config):
    sys.path.insert(0, str(ROOT / "src"))


@pytest.fixture
def gan_images(tmp_path) -> dict[str, list[Path]]:
    """Three random 40 x 48 day and three night PNGs: a generator family's tiny training lists; and two sunset
    ones (a multi-domain family's third lighting domain; drawn after the others, which they leave as they were)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths: dict[str, list[Path]] = {"day": [], "night": [], "sunset": []}
    for kind, n in (("day", 3), ("night", 3), ("sunset", 2)):
        for i in range(n):
            p = tmp_path / "img" / f"{kind}{i}.png"
            p.parent.mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(p)
            paths[kind].append(p)
    return paths


@pytest.fixture
def interrupted_and_resumed(tmp_path, gan_images):
    """``run(setup, domains=None) -> (reference generator.pt, resumed generator.pt, resumed run folder,
    the interrupted run's checkpoint)``: the setup trained uninterrupted (seed 3), and trained again but stopped
    by SIGTERM at (epoch 1, step 0), which must leave a checkpoint of epoch 1 and no generator file, then resumed
    (which deletes the checkpoint once its generator is written); ``domains``: train_gan's (a multi-domain
    family's every lighting domain)."""
    import signal

    import torch

    from darkside.errors import Preempted
    from darkside.gan.train import train_gan

    def run(setup, domains=None):
        day, night = gan_images["day"], gan_images["night"]
        ref = train_gan(setup, day, night, tmp_path / "ref", "cpu", seed=3, domains=domains)

        def kill(epoch, step):
            if (epoch, step) == (1, 0):
                os.kill(os.getpid(), signal.SIGTERM)

        out = tmp_path / "run"
        with pytest.raises(Preempted):
            train_gan(setup, day, night, out, "cpu", seed=3, domains=domains, on_step=kill)
        assert not (out / "generator.pt").exists()
        checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
        assert checkpoint["epoch"] == 1
        resumed = train_gan(setup, day, night, out, "cpu", seed=3, domains=domains)
        assert not (out / "checkpoint.pt").exists()
        return ref, resumed, out, checkpoint

    return run
