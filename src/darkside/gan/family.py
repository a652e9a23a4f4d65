"""What every generator family (:mod:`darkside.gan.families`) shares: its settings' common part, the
network bundle, the registry, and the generator file that the translator loads.

A family declares its typed ``Settings`` (a frozen dataclass, as hloc's models declare ``default_conf``,
that its params.yaml entry is checked against), its networks once in :meth:`GanBundle.block_specs` (to
build them, count their parameters and rebuild the generator from a file) and one optimisation step in
:meth:`GanBundle.train_step`. Named variants are overlays of its settings, selected by the entry's
``variant``. Images inside training are tensors in [-1, 1] (mean 0.5, std 0.5).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from darkside.errors import ConfigError, DarksideError
from darkside.gan.edges import DetectorSettings, build_detector, load_detector_file
from darkside.gan.losses import discriminator_loss
from darkside.gan.networks import PatchGAN, ResnetGenerator, init_weights
from darkside.gan.pool import ImagePool
from darkside.gan.schedule import lr_factor as constant_then_linear
from darkside.gan.schedule import set_epoch_lr
from darkside.settings import parse, setting, to_plain
from darkside.state import save_torch

GENERATOR_FORMAT = "darkside-gan-generator/2"
NIGHT = "night"  # the lighting domain a day->night translator translates to


class DomainBatch(NamedTuple):
    """A multi-domain family's batch: (B, 3, crop, crop) source and target crops in [-1, 1] (pair i cut by
    the same window from two images of different lighting domains) and each image's domain."""

    source: torch.Tensor
    target: torch.Tensor
    source_domains: tuple[str, ...]
    target_domains: tuple[str, ...]


# --- settings -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GanTraining:
    """``gan.common``: the data and optimiser block every generator family shares (SPEC section 5)."""

    crop: int = setting("training crop side (paper 256)", ge=1)
    scale_min: float = setting("lower bound of the crop scale s (paper 0.8)", gt=0, le=1)
    lr: float = setting("Adam lr of generators and discriminators", gt=0)
    beta1: float = setting(ge=0, le=1)
    beta2: float = setting(ge=0, le=1)
    sample_images: int = setting("translations in the per-epoch sample grid", ge=0)
    cache_images: bool = setting("decode the training images once and keep them in memory")
    precision: Literal["fp32", "bf16"] = setting(
        "each training step's forward passes: fp32 (the paper) or bf16 autocast (faster on a GPU; moves the numbers)",
        default="fp32")


@dataclass(frozen=True)
class FamilySettings:
    """The schedule every family's entry gives (SPEC section 5's table: batch and epochs per family)."""

    batch_size: int = setting(ge=1)
    pairs_per_epoch: int = setting("random (day, night) pairs per epoch, drawn with replacement (paper 10000)",
                                   ge=1)
    epochs_constant: int = setting("epochs at the base lr", ge=0)
    epochs_decay: int = setting("epochs of linear decay towards zero", ge=0)
    # gandtr trains every family at gan.common's 256; DRIT++'s official recipe crops 216 on some data, and a
    # rehearsal at tiny sizes keeps DRIT++'s content discriminator (7x7 kernels need >= 224) at full size alone
    crop: int | None = setting("this family's training crop side in place of gan.common.crop (null: gan.common's)",
                               ge=1, default=None, kw_only=True)

    @property
    def epochs(self) -> int:
        return self.epochs_constant + self.epochs_decay


@dataclass(frozen=True)
class ResnetGanSettings(FamilySettings):
    """A family built from the ResNet generator and the 70x70 PatchGAN (SPEC section 5)."""

    ngf: int = setting("generator base filters (paper 64)", ge=1)
    n_blocks: int = setting("residual blocks (paper 9)", ge=0)
    ndf: int = setting("discriminator base filters (paper 64)", ge=1)
    n_layers_d: int = setting("PatchGAN layers (3 = 70x70)", ge=1)
    norm: Literal["instance", "batch"] = setting("norm of generator and discriminator")
    init: Literal["normal", "kaiming", "xavier"] = setting()
    init_gain: float = setting("std of the normal init, and of batch-norm gammas around 1", ge=0)


@dataclass(frozen=True)
class GanSetup:
    """Everything one generator run is built from: the shared block, the family's own settings (its
    variant applied) and, for edge families, the detector's settings."""

    family: str
    common: GanTraining
    settings: Any
    detector: DetectorSettings | None = None

    @property
    def epochs(self) -> int:
        return self.settings.epochs

    def to_plain(self) -> dict[str, Any]:
        return to_plain(self)

    @classmethod
    def from_plain(cls, d: Mapping[str, Any], where: str) -> GanSetup:
        """Rebuild a setup a run recorded (its generator file, its checkpoint)."""
        try:
            family = family_class(str(d["family"]))
            det = d.get("detector")
            return cls(family.name, parse(GanTraining, d["common"], f"{where}.common"),
                       parse(family.Settings, d["settings"], f"{where}.settings"),
                       parse(DetectorSettings, det, f"{where}.detector") if det is not None else None)
        except (KeyError, TypeError) as exc:
            raise DarksideError(f"{where}: not a generator setup ({exc})") from None


@dataclass(frozen=True)
class GanVariant:
    """``gan.variants.<name>``: another trained run of a family, its ``gan.families`` entry with some settings
    replaced (MDUIT's Table 1 ablations), trained by the same rule into ``results/gans/<name>``; its recipes
    (``<name>-cd``, ``<name>-content``...) exist like a family's. (A family's own named ``variant`` overlays are
    one key of its entry; a variant here may set that key too.)"""

    family: str = setting("the family whose entry gives every setting the overrides leave",
                          choices=lambda: list(family_settings()), key_in="gan.families")
    overrides: dict[str, Any] = setting("settings of the family's entry replaced for this run (checked as the "
                                        "family's own settings)")

    def settings(self, entry: Mapping[str, Any], where: str) -> Any:
        """The family's typed settings: its ``entry`` with the overrides applied; errors name the override
        (``where`` is the variant's key path)."""
        return parse(family_class(self.family).Settings, {**entry, **self.overrides}, f"{where}.overrides")


@dataclass(frozen=True)
class BlockSpec:
    """One network of a family. ``role`` decides the paper's Table 8 convention (see params.py)."""

    name: str
    role: str                     # generator | discriminator | head (CUT's MLPs) | student | frozen
    build: Callable[[], nn.Module]
    family_init: bool = True      # False: the network keeps PyTorch's default init, not the family's ``init``


#: roles initialised by the family's ``init`` and trained by Adam at ``gan.common``'s lr and betas
TRAINED_WITH_BASE_LR = ("generator", "discriminator", "head")


# --- the registry -------------------------------------------------------------------------------------

FAMILIES: dict[str, type[GanBundle]] = {}


def register_family(cls: type[GanBundle]) -> type[GanBundle]:
    """Class decorator: make ``cls`` the family ``cls.name`` (a module of darkside.gan.families or a plugin)."""
    if cls.name in FAMILIES and FAMILIES[cls.name] is not cls:
        raise DarksideError(f"gan family {cls.name!r} is registered twice")
    FAMILIES[cls.name] = cls
    return cls


def family_class(name: str) -> type[GanBundle]:
    import darkside.gan.families  # noqa: F401  (imports every built-in family module)

    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"gan family {name!r} is not one of {sorted(FAMILIES)}") from None


def family_settings() -> dict[str, type]:
    """family name -> its settings class (the schema of ``gan.families``)."""
    import darkside.gan.families  # noqa: F401

    return {name: cls.Settings for name, cls in FAMILIES.items()}


def setup_for(family: str, common: GanTraining, settings: Any, detectors: Mapping[str, DetectorSettings]
              ) -> GanSetup:
    """The setup of ``family`` from its parsed entry, its variant applied, with its detector if it has one."""
    cls = family_class(family)
    settings = cls.effective(settings)
    kind = getattr(settings, "detector", None)
    if kind is not None and kind not in detectors:
        raise ConfigError(f"gan.families.{family}.detector: no edges.detectors.{kind} settings")
    if settings.crop is not None:  # the family's own crop: every reader of the crop reads setup.common
        common = dataclasses.replace(common, crop=settings.crop)
    return GanSetup(family, common, settings, detectors[kind] if kind is not None else None)


# --- building blocks of the families ------------------------------------------------------------------

def generator_spec(s: ResnetGanSettings, name: str) -> BlockSpec:
    return BlockSpec(name, "generator", lambda: ResnetGenerator(s.ngf, s.n_blocks, s.norm))


def discriminator_spec(s: ResnetGanSettings, name: str) -> BlockSpec:
    return BlockSpec(name, "discriminator", lambda: PatchGAN(s.ndf, s.n_layers_d, s.norm))


def detector_spec(setup: GanSetup, name: str, role: str) -> BlockSpec:
    d, kind = setup.detector, getattr(setup.settings, "detector", None)
    if d is None or kind is None:
        raise ConfigError(f"gan.families.{setup.family}.detector: this family needs an edge detector")
    return BlockSpec(name, role, lambda: build_detector(kind, d.width, d.input))


class ContentEmbedding(nn.Module):
    """A family's embedding of an image's content (MDUIT's z_s = H(E_c(x))): ``encoder`` maps (B, 3, H, W) images
    in [-1, 1] to a (B, ``channels``, h, w) map, ``head`` that map to (B, ``dim``) unit rows. The generator file
    carries it (``content_state_dict``) for retrieval with it (the descriptor network ``content``)."""

    def __init__(self, encoder: nn.Module, head: nn.Module, channels: int, dim: int) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head
        self.channels, self.dim = int(channels), int(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def input_seeds(images: torch.Tensor) -> list[int]:
    """One 63-bit seed per image of a (B, C, H, W) batch: a hash of its float32 pixels.

    A translator that draws at random (DRIT++'s night attribute, MDUIT's night appearance) seeds the draw
    for an anchor with it, so the draw is a function of the anchor image alone: the same in every epoch,
    after a resume, in any batch order and on any device.
    """
    arr = images.detach().to("cpu", torch.float32).contiguous().numpy()
    return [int.from_bytes(hashlib.blake2b(a.tobytes(), digest_size=8).digest(), "little") >> 1 for a in arr]


def adam(params: Any, lr: float, betas: tuple[float, float], weight_decay: float = 0.0) -> torch.optim.Adam:
    opt = torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    set_epoch_lr(opt, 1.0)  # records initial_lr per group (the base lr x its Caffe multiplier)
    return opt


class GanBundle(nn.Module):
    """All networks, optimisers and pools of one family, built deterministically from ``seed``."""

    name: ClassVar[str]
    title: ClassVar[str]                              # how tables and figures name the family
    Settings: ClassVar[type]
    variants: ClassVar[Mapping[str, Mapping[str, Any]]] = {}   # named overlays of Settings (``variant``)
    generator_name: ClassVar[str] = "generator_X"   # the day->night generator used downstream
    # a two-way family's night->day generator, kept in the generator file for translation at test time
    night_to_day_name: ClassVar[str | None] = None
    schedule: ClassVar[Callable[[int, int, int], float]] = staticmethod(constant_then_linear)  # lr factor rule
    zero_bias_init: ClassVar[bool] = True           # False: conv biases keep PyTorch's default init (CyEDA)
    # Table 8 counts the families the paper trained with its authors' own code (DRIT++, CyEDA) plainly,
    # every network once; the gandtr-trained ones by the rule in darkside.gan.params
    paper_counts_plain: ClassVar[bool] = False
    # True: the family trains on every lighting domain of the training set (``train_gan``'s ``domains``, the
    # lists' domains.tsv), its steps take :class:`DomainBatch` es; False: (day, night) batches
    multi_domain: ClassVar[bool] = False

    def __init__(self, setup: GanSetup, device: torch.device | str = "cpu", seed: int = 0) -> None:
        super().__init__()
        self.setup = setup
        self.settings = setup.settings
        self.device = torch.device(device)
        self.seed = seed
        self.nets = nn.ModuleDict()
        self.roles: dict[str, str] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for spec in self.block_specs(setup):
                net = spec.build()
                if spec.role in TRAINED_WITH_BASE_LR and spec.family_init:
                    init_weights(net, self.settings.init, self.settings.init_gain, zero_bias=self.zero_bias_init)
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
        # the family's own random draws inside a step (CUT's patch locations), seeded by the run and
        # checkpointed, so that neither the process's global RNG nor a resume changes them
        self.rng = torch.Generator().manual_seed(seed)
        self.epoch = 0

    # -- declared by each family -------------------------------------------------------------
    @classmethod
    def effective(cls, settings: Any) -> Any:
        """``settings`` with the overlay of its ``variant`` (if the family has variants) applied."""
        overlay = cls.variants.get(getattr(settings, "variant", ""), {})
        return dataclasses.replace(settings, **overlay) if overlay else settings

    @classmethod
    def block_specs(cls, setup: GanSetup) -> list[BlockSpec]:
        raise NotImplementedError

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.setup.common
        return {name: adam(self.nets[name].parameters(), c.lr, (c.beta1, c.beta2))
                for name, role in self.roles.items() if role in TRAINED_WITH_BASE_LR}

    def train_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        """One optimisation step on (day, night) batches in [-1, 1] (a multi-domain family: a
        :class:`DomainBatch`); returns the loss values."""
        raise NotImplementedError

    @classmethod
    def translator_net(cls, setup: GanSetup, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
        """An empty day->night module that a generator file's ``state_dict`` loads into. Default: the block
        ``generator_name``; a family whose :meth:`generator` is a composite (an encoder, a decoder and a
        bank of night references, sized from ``state_dict``) overrides it."""
        return next(s for s in cls.block_specs(setup) if s.name == cls.generator_name).build()

    @classmethod
    def content_embedding(cls, setup: GanSetup, nets: Mapping[str, nn.Module] | None = None
                          ) -> ContentEmbedding | None:
        """The family's content embedding of images over its trained ``nets``, or built empty from ``setup``
        (None); None where the family has none (the default; MDUIT's is z_s)."""
        return None

    def choose_pairs(self, images: Iterable[torch.Tensor], domains: np.ndarray, n_pairs: int,
                     rng: np.random.Generator) -> np.ndarray | None:
        """A multi-domain family's epoch: (n_pairs, 2) (source, target) indices into the training images
        ((1, 3, crop, crop) centre squares in [-1, 1], lazily decoded, in list order) whose domains (``domains``,
        one integer per image) differ, or None (the default, drawing nothing from ``rng``): the loop's random
        pairs (:func:`~darkside.gan.crops.domain_pairs`). MDUIT pairs by content similarity with the networks
        as the epoch starts."""
        return None

    def prepare_translator(self, nights: Iterable[torch.Tensor]) -> None:
        """Called once after the last epoch, before the generator file is written, with the training night
        images ((1, 3, crop, crop) centre squares in [-1, 1], lazily decoded): a family whose translator
        needs night references (DRIT++'s attributes, MDUIT's appearances) keeps them. Default: nothing."""

    # -- shared ------------------------------------------------------------------------------
    def _init_detectors(self) -> None:
        """Teacher/frozen detector from the weights file (or its seeded init); student = teacher."""
        teacher = next((n for n, r in self.roles.items() if r == "frozen"), None)
        if teacher is None:
            return
        if self.setup.detector is not None and self.setup.detector.weights is not None:
            load_detector_file(self.nets[teacher], self.setup.detector.weights)
        for name, role in self.roles.items():
            if role == "student":
                self.nets[name].load_state_dict(self.nets[teacher].state_dict())

    def optimise(self, loss: torch.Tensor, *names: str) -> None:
        """One step of the optimisers ``names`` on ``loss``: zero their gradients, backward, step each."""
        for n in names:
            self.optimizers[n].zero_grad(set_to_none=True)
        loss.backward()
        for n in names:
            self.optimizers[n].step()

    def pooled_discriminator_step(self, day: torch.Tensor, night: torch.Tensor, fake_day: torch.Tensor,
                                  fake_night: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The D step of a two-way family (CycleGAN, CyEDA): discriminator_X (nights) and discriminator_Y
        (days) against the fakes of the pools ``fake_night`` and ``fake_day``, one step of both; their losses."""
        d_x, d_y = self.nets["discriminator_X"], self.nets["discriminator_Y"]
        set_requires_grad([d_x, d_y], True)
        pooled_night = self.pools["fake_night"].query(fake_night.detach())
        pooled_day = self.pools["fake_day"].query(fake_day.detach())
        loss_dx = discriminator_loss(d_x(night), d_x(pooled_night))
        loss_dy = discriminator_loss(d_y(day), d_y(pooled_day))
        self.optimise(loss_dx + loss_dy, "discriminator_X", "discriminator_Y")
        return loss_dx, loss_dy

    def night_to_day_generator(self) -> nn.Module:
        """The night->day network of a two-way family (``night_to_day_name``) as its generator file keeps it."""
        assert self.night_to_day_name is not None
        return self.nets[self.night_to_day_name]

    @classmethod
    def night_to_day_net(cls, setup: GanSetup) -> nn.Module:
        """An untrained network of :meth:`night_to_day_generator`'s shape, for loading its state dict."""
        return next(s for s in cls.block_specs(setup) if s.name == cls.night_to_day_name).build()

    def generator(self) -> nn.Module:
        """The day->night module (for the translator and sample grids): x in [-1, 1] -> its night."""
        return self.nets[self.generator_name]

    def lr_factor(self, epoch: int) -> float:
        """The base-lr multiplier of 0-based ``epoch`` under the family's ``schedule``."""
        return self.schedule(epoch, self.settings.epochs_constant, self.settings.epochs_decay)

    def set_epoch(self, epoch: int) -> None:
        """Set every optimiser's lr for 0-based ``epoch`` (constant then linear decay)."""
        self.epoch = epoch
        factor = self.lr_factor(epoch)
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
                "rng": self.rng.get_state(), "epoch": self.epoch}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, p in self.pools.items():
            p.load_state_dict(state["pools"][k], self.device)
        if "rng" in state:  # checkpoints written before families drew from it: nothing was drawn yet
            self.rng.set_state(state["rng"])
        self.epoch = int(state["epoch"])


def build(setup: GanSetup, device: torch.device | str = "cpu", seed: int = 0) -> GanBundle:
    """All networks, optimisers and pools of ``setup.family``, deterministic in ``seed``."""
    return family_class(setup.family)(setup, device, seed)


# --- generator file and translator --------------------------------------------------------------------

def _cpu_state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def save_generator(bundle: GanBundle, path: str | Path, variant: str | None = None) -> Path:
    """Write the day->night generator with the setup that rebuilds it (atomic); a two-way family's night->day
    generator goes along (``night_to_day_state_dict``) for translation at test time, a family's trained
    student detector (HED^N, RCF^N: ``student_state_dict``) for the edge embeddings built on it (EdgeMAC), and a
    family's content embedding (MDUIT: ``content_state_dict``) for retrieval with it, so that the run's declared
    output holds them and not only its undeclared checkpoint. ``variant``: the ``gan.variants`` name of the run
    (its recipes are named after it)."""
    obj = {"format": GENERATOR_FORMAT, "family": bundle.name, "setup": bundle.setup.to_plain(),
           "state_dict": _cpu_state(bundle.generator())}
    if variant is not None:
        obj["variant"] = variant
    if bundle.night_to_day_name is not None:
        obj["night_to_day_state_dict"] = _cpu_state(bundle.night_to_day_generator())
    if (student := next((n for n, r in bundle.roles.items() if r == "student"), None)) is not None:
        obj["student_state_dict"] = _cpu_state(bundle.nets[student])
    if (content := bundle.content_embedding(bundle.setup, bundle.nets)) is not None:
        obj["content_state_dict"] = _cpu_state(content)
    return save_torch(path, obj)


def generator_header(path: str | Path) -> dict[str, Any]:
    """A generator file's top-level entries, memory-mapped: its provenance is read without loading the weights."""
    try:
        obj = torch.load(Path(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        raise DarksideError(f"{path}: cannot read generator ({type(exc).__name__})") from None
    return obj if isinstance(obj, dict) else {}


def variant_name(path: str | Path) -> str | None:
    """The ``gan.variants`` name a generator file was trained as (None: a family's own run, or imported)."""
    name = generator_header(path).get("variant")
    return str(name) if name is not None else None


def load_content_embedding(path: str | Path) -> tuple[ContentEmbedding, GanSetup]:
    """The content embedding a ``generator.pt`` carries (see :func:`save_generator`), rebuilt from the recorded
    setup, on the CPU in eval mode, with that setup; one-line errors."""
    p = Path(path)
    obj = _read_generator_file(p)
    setup = GanSetup.from_plain(obj["setup"], f"{p}:setup")
    cls = family_class(setup.family)
    model = cls.content_embedding(setup)
    if model is None or "content_state_dict" not in obj:
        raise DarksideError(f"{p}: carries no content embedding ({cls.title} has none, or the file was written "
                            f"before generator files carried it: retrain the family)")
    try:
        model.load_state_dict(obj["content_state_dict"])
    except RuntimeError as exc:
        raise DarksideError(f"{p}: content weights do not fit its recorded setup ({str(exc).splitlines()[0]})"
                            ) from None
    return model.eval(), setup


def student_of(path: str | Path) -> nn.Module | None:
    """The night-adapted student detector a ``generator.pt`` carries (see :func:`save_generator`), rebuilt from
    the recorded setup (its detector kind and geometry), on the CPU in eval mode; None when it carries none (a
    family that trains no student); one-line errors."""
    p = Path(path)
    obj = _read_generator_file(p)
    setup = GanSetup.from_plain(obj["setup"], f"{p}:setup")
    kind = getattr(setup.settings, "detector", None)
    if "student_state_dict" not in obj or setup.detector is None or kind is None:
        return None
    model = build_detector(kind, setup.detector.width, setup.detector.input)
    try:
        model.load_state_dict(obj["student_state_dict"])
    except RuntimeError as exc:
        raise DarksideError(f"{p}: student weights do not fit its recorded setup ({str(exc).splitlines()[0]})"
                            ) from None
    return model.eval()


def load_student(path: str | Path) -> nn.Module:
    """:func:`student_of`, where the file must carry a student (an edge embedding built on it)."""
    if (model := student_of(path)) is None:
        setup = GanSetup.from_plain(_read_generator_file(Path(path))["setup"], f"{path}:setup")
        raise DarksideError(f"{path}: carries no student detector ({family_class(setup.family).title} trains none, "
                            f"or the file was written before generator files carried it: retrain the family)")
    return model


def _read_generator_file(p: Path) -> dict[str, Any]:
    if not p.is_file():
        raise DarksideError(f"{p}: generator file does not exist")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DarksideError(f"{p}: cannot read generator ({type(exc).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") != GENERATOR_FORMAT:
        raise DarksideError(f"{p}: not a darkside generator file (format {GENERATOR_FORMAT})")
    return obj


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


def load_generator(path: str | Path, device: torch.device | str = "cpu", night_to_day: bool = False
                   ) -> GeneratorTranslator:
    """Rebuild a translator from a ``generator.pt`` written by :func:`save_generator`: its family builds
    the generator from the recorded setup. ``night_to_day``: the family's night->day generator instead
    (test-time translation; one-line error for a one-way family)."""
    p = Path(path)
    obj = _read_generator_file(p)
    setup = GanSetup.from_plain(obj["setup"], f"{p}:setup")
    cls = family_class(setup.family)
    if night_to_day:
        if cls.night_to_day_name is None or "night_to_day_state_dict" not in obj:
            raise DarksideError(f"{p}: {cls.title} has no night->day generator (a one-way family, or a file "
                                f"written without it)")
        state = obj["night_to_day_state_dict"]
        gen = cls.night_to_day_net(setup)
    else:
        state = obj["state_dict"]
        gen = cls.translator_net(setup, state)
    try:
        gen.load_state_dict(state)
    except RuntimeError as exc:
        raise DarksideError(f"{p}: generator weights do not fit its recorded setup ({str(exc).splitlines()[0]})"
                            ) from None
    return GeneratorTranslator(gen, device)
