"""What every generator family shares: settings, the network bundle, checkpoint state, translator.

A family is a :class:`GanBundle` subclass that declares its networks once in
:meth:`GanBundle.block_specs` (used both to build them and to count parameters) and implements
:meth:`GanBundle.train_step`. Images inside training are tensors in [-1, 1] (mean 0.5, std 0.5).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from darkside.atomic import atomic_path
from darkside.config import check_keys
from darkside.errors import ConfigError, DarksideError
from darkside.gan.edges import DETECTORS, build_detector, detector_param_groups, load_detector_file
from darkside.gan.edges.hed import INPUT_MODES
from darkside.gan.networks import INITS, NORMS, PatchGAN, ResnetGenerator, init_weights
from darkside.gan.pool import ImagePool
from darkside.gan.schedule import lr_factor, set_epoch_lr

GENERATOR_FORMAT = "darkside-gan-generator/1"

# gandtr ran CycleGAN with N(0, 0.2) and no identity loss; the official CycleGAN defaults are a
# named overlay rather than an ``if official:`` branch.
CYCLEGAN_OFFICIAL = {"init": "normal", "init_gain": 0.02, "identity_weight": 0.5}


@dataclass(frozen=True)
class GanSettings:
    """Every number of one family's generator training (SPEC §5); see the params YAML proposal."""

    family: str
    crop: int                     # training crop side (paper 256)
    scale_min: float              # lower bound of the crop scale s (paper 0.8)
    pairs_per_epoch: int          # random (day, night) pairs per epoch, with replacement (paper 10000)
    batch_size: int
    epochs_constant: int          # epochs at the base lr
    epochs_decay: int             # epochs of linear decay
    lr: float                     # Adam lr for G and D (and nothing else)
    beta1: float
    beta2: float
    ngf: int                      # generator base filters
    n_blocks: int                 # residual blocks
    ndf: int                      # discriminator base filters
    n_layers_d: int               # PatchGAN layers (3 = 70x70)
    norm: str                     # instance | batch (generator and discriminator)
    init: str                     # normal | kaiming
    init_gain: float              # std of the normal init and of batch-norm gammas around 1
    cycle_weight: float           # CycleGAN cycle L1 weight
    identity_weight: float        # CycleGAN identity weight, relative to cycle_weight (official 0.5)
    pool_size: int                # image pool size (0 = off)
    edge_weight: float            # edge-consistency L1 weight in the G loss
    detector: str | None          # hed | rcf | null
    detector_width: float         # channel multiplier of the detector (1 = published)
    detector_input: str           # caffe255 | gandtr01 (HED input scaling, see edges.hed)
    detector_weights: str | None  # published / pretrained weights file; null = seeded random init
    student_lr: float
    student_beta1: float
    student_beta2: float
    student_weight_decay: float
    student_lr_multipliers: bool  # Caffe HED per-layer lr multipliers
    sample_images: int            # translations in the per-epoch sample grid
    cache_images: bool            # decode all training images once and keep them in memory

    @property
    def epochs(self) -> int:
        return self.epochs_constant + self.epochs_decay

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "gan") -> GanSettings:
        """Strict constructor: unknown or missing keys and wrong types raise ConfigError naming the key."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        check_keys(d, fields, where)
        values = {}
        for key, f in fields.items():
            values[key] = _check_type(d[key], str(f.type), f"{where}.{key}")
        s = cls(**values)
        s._validate(where)
        return s

    def _validate(self, where: str) -> None:
        choices = {"norm": NORMS, "init": INITS, "detector_input": INPUT_MODES}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{where}.{key}: {getattr(self, key)!r} is not one of {list(allowed)}")
        if self.detector is not None and self.detector not in DETECTORS:
            raise ConfigError(f"{where}.detector: {self.detector!r} is not one of {list(DETECTORS)}")
        for key in ("crop", "pairs_per_epoch", "batch_size", "ngf", "ndf", "n_layers_d"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be >= 1")
        if self.pairs_per_epoch < self.batch_size:
            raise ConfigError(f"{where}.pairs_per_epoch: smaller than batch_size {self.batch_size}")
        if not 0 < self.scale_min <= 1:
            raise ConfigError(f"{where}.scale_min: must be in (0, 1]")
        if self.epochs < 1:
            raise ConfigError(f"{where}.epochs_constant: epochs_constant + epochs_decay must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> GanSettings:
        return GanSettings.from_dict({**self.to_dict(), **changes})


def _check_type(value: Any, annotation: str, where: str) -> Any:
    """Coerce/check one YAML value against the dataclass annotation (YAML writes 2e-4 as a string
    only in YAML 1.1 corner cases, so numbers are checked, not parsed)."""
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: must not be null")
    base = annotation.replace(" | None", "")
    if base == "bool":
        ok = isinstance(value, bool)
    elif base == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{where}: expected {base}, got {type(value).__name__} {value!r}")
    return value


def settings_for(gan_section: Mapping[str, Any], family: str, where: str = "gan") -> GanSettings:
    """Merge ``common`` with ``families.<family>`` of a params ``gan`` section into GanSettings."""
    try:
        common = gan_section["common"]
        fam = gan_section["families"][family]
    except (KeyError, TypeError):
        raise ConfigError(f"{where}.families.{family}: no such generator family") from None
    return GanSettings.from_dict({**common, **fam, "family": family}, where=f"{where}.families.{family}")


@dataclass(frozen=True)
class BlockSpec:
    """One network of a family. ``role`` decides the paper's Table 8 convention (see params.py)."""

    name: str
    role: str                     # generator | discriminator | student | frozen
    build: Callable[[], nn.Module]


def generator_spec(s: GanSettings, name: str) -> BlockSpec:
    return BlockSpec(name, "generator", lambda: ResnetGenerator(s.ngf, s.n_blocks, s.norm))


def discriminator_spec(s: GanSettings, name: str) -> BlockSpec:
    return BlockSpec(name, "discriminator", lambda: PatchGAN(s.ndf, s.n_layers_d, s.norm))


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def adam(params: Any, lr: float, betas: tuple[float, float], weight_decay: float = 0.0) -> torch.optim.Adam:
    opt = torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    set_epoch_lr(opt, 1.0)  # records initial_lr per group (the base lr x its Caffe multiplier)
    return opt


class GanBundle(nn.Module):
    """All networks, optimisers and pools of one family, built deterministically from ``seed``."""

    family: ClassVar[str]
    generator_name: ClassVar[str] = "generator_X"   # the day->night generator used downstream

    def __init__(self, settings: GanSettings, device: torch.device | str = "cpu", seed: int = 0) -> None:
        super().__init__()
        self.settings = settings
        self.device = torch.device(device)
        self.seed = seed
        self.nets = nn.ModuleDict()
        self.roles: dict[str, str] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for spec in self.block_specs(settings):
                net = spec.build()
                if spec.role in ("generator", "discriminator"):
                    init_weights(net, settings.init, settings.init_gain)
                self.nets[spec.name] = net
                self.roles[spec.name] = spec.role
        self._init_detectors()
        self.to(self.device)
        for name, role in self.roles.items():
            if role == "frozen":
                self.nets[name].eval()
                set_requires_grad([self.nets[name]], False)
        self.optimizers: dict[str, torch.optim.Optimizer] = self.build_optimizers()
        self.pools: dict[str, ImagePool] = {}
        self.epoch = 0

    # -- declared by each family -------------------------------------------------------------
    @classmethod
    def block_specs(cls, s: GanSettings) -> list[BlockSpec]:
        raise NotImplementedError

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        s = self.settings
        return {name: adam(self.nets[name].parameters(), s.lr, (s.beta1, s.beta2))
                for name, role in self.roles.items() if role in ("generator", "discriminator")}

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        """One optimisation step on (day, night) batches in [-1, 1]; returns the loss values."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------
    def _init_detectors(self) -> None:
        """Teacher/frozen detector from the weights file (or its seeded init); student = teacher."""
        s = self.settings
        teacher = next((n for n, r in self.roles.items() if r == "frozen"), None)
        if teacher is None:
            return
        if s.detector_weights is not None:
            load_detector_file(self.nets[teacher], s.detector_weights)
        for name, role in self.roles.items():
            if role == "student":
                self.nets[name].load_state_dict(self.nets[teacher].state_dict())

    def generator(self) -> nn.Module:
        """The day->night generator (for the translator and sample grids)."""
        return self.nets[self.generator_name]

    def set_epoch(self, epoch: int) -> None:
        """Set every optimiser's lr for 0-based ``epoch`` (constant then linear decay)."""
        self.epoch = epoch
        factor = lr_factor(epoch, self.settings.epochs_constant, self.settings.epochs_decay)
        for opt in self.optimizers.values():
            set_epoch_lr(opt, factor)

    def train(self, mode: bool = True) -> GanBundle:
        super().train(mode)
        for name, role in self.roles.items():
            if role == "frozen":
                self.nets[name].eval()  # the frozen detector never leaves eval mode
        return self

    def training_state(self) -> dict[str, Any]:
        """Everything a resumed run needs besides the data RNG (which is derived from the epoch)."""
        return {"nets": self.nets.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "pools": {k: p.state_dict() for k, p in self.pools.items()},
                "epoch": self.epoch}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, p in self.pools.items():
            p.load_state_dict(state["pools"][k], self.device)
        self.epoch = int(state["epoch"])


def detector_spec(s: GanSettings, name: str, role: str) -> BlockSpec:
    if s.detector is None:
        raise ConfigError(f"gan.families.{s.family}.detector: this family needs a detector (hed | rcf)")
    return BlockSpec(name, role, lambda: build_detector(s.detector, s.detector_width, s.detector_input))


def student_optimizer(s: GanSettings, student: nn.Module) -> torch.optim.Optimizer:
    groups = detector_param_groups(student, s.student_lr, s.student_weight_decay, s.student_lr_multipliers)
    return adam(groups, s.student_lr, (s.student_beta1, s.student_beta2))


# -- generator file and translator -----------------------------------------------------------

def save_generator(bundle: GanBundle, path: str | Path) -> Path:
    """Write the day->night generator with the settings that rebuild it (atomic)."""
    state = {k: v.detach().cpu() for k, v in bundle.generator().state_dict().items()}
    obj = {"format": GENERATOR_FORMAT, "family": bundle.family, "settings": bundle.settings.to_dict(),
           "state_dict": state}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


class GeneratorTranslator:
    """Day->night translation of RGB images in [0, 1], generator in eval mode (batch-norm running
    statistics, as gandtr's frozen generator), any size (reflect-padded to a multiple of 4)."""

    def __init__(self, generator: nn.Module, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.generator = generator.to(self.device).eval()
        for p in self.generator.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def translate(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        x = images.to(self.device, torch.float32) * 2.0 - 1.0
        ph, pw = (-h) % 4, (-w) % 4
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        y = self.generator(x)[..., :h, :w]
        return ((y + 1.0) / 2.0).clamp(0.0, 1.0).to(images.device, images.dtype)


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> GeneratorTranslator:
    """Rebuild a translator from a ``generator.pt`` written by :func:`save_generator`."""
    p = Path(path)
    if not p.is_file():
        raise DarksideError(f"{p}: generator file does not exist")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DarksideError(f"{p}: cannot read generator ({type(exc).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") != GENERATOR_FORMAT:
        raise DarksideError(f"{p}: not a darkside generator file (format {GENERATOR_FORMAT})")
    s = GanSettings.from_dict(obj["settings"], where=f"{p}:settings")
    gen = ResnetGenerator(s.ngf, s.n_blocks, s.norm)
    gen.load_state_dict(obj["state_dict"])
    return GeneratorTranslator(gen, device)
