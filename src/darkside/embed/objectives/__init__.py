"""The objectives of the contrastive learners of DaCo's tables, one module per objective, behind a tiny registry.

An objective is what one training step of :func:`darkside.embed.daco.train_daco` optimises, given the views the
loop made of a batch of training images. Each module here registers a subclass of :class:`Objective` with

- ``name``: its key in a learner's ``objective`` entry (``daco.learners.<learner>.objective.<name>``);
- ``Settings``: a frozen dataclass of its own numbers (the temperature, DaCo's lambda, MoCo's queue...), which
  that entry is checked against;
- ``views``: the views it reads (``o1``, ``o2`` of the image, ``g1``, ``g2`` of its translation into the other
  domain); the loop makes those and no others, so a learner that reads ``g`` views needs the translations
  (its ``translations`` is not ``none``) and one that does not refuses them;
- :meth:`Objective.loss` of a :class:`Views` batch and, where it keeps state across steps (MoCo's key encoder
  and queue, NPID's memory bank), :meth:`Objective.after_step`, called after the optimiser's step.

An objective is a module: its state (buffers, a key encoder's weights) goes into the run's checkpoint through
``state_dict`` and comes back on resume. Its parameters are not trained by the optimiser (which holds the
network's): an objective that needs trainable parts of its own would add them to :meth:`trainable`.
Adding an objective: one module here and its entry in a learner of params.yaml.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from darkside.errors import DarksideError

VIEWS = ("o1", "o2", "g1", "g2")


@dataclass(frozen=True)
class Views:
    """A batch's views, (B, 3, crop, crop) each, the ones the objective did not ask for None; ``index`` (B,) the
    training images' positions in the run's training list (NPID's memory bank rows)."""

    index: torch.Tensor
    o1: torch.Tensor
    o2: torch.Tensor | None = None
    g1: torch.Tensor | None = None
    g2: torch.Tensor | None = None


class Objective(nn.Module):
    """What a learner optimises. ``net`` (a :class:`~darkside.embed.daco.DacoNet`) gives (feature, projection),
    both unit norm; ``images`` is the number of training images (both domains)."""

    name: ClassVar[str]
    Settings: ClassVar[type]
    views: ClassVar[tuple[str, ...]] = ("o1", "o2")

    def __init__(self, settings: Any, net: nn.Module, images: int) -> None:
        super().__init__()
        self.settings = settings

    def loss(self, net: nn.Module, batch: Views) -> torch.Tensor:
        raise NotImplementedError

    def after_step(self, net: nn.Module, batch: Views) -> None:
        """State updates after the optimiser's step (default: none)."""

    def trainable(self) -> list[nn.Parameter]:
        """Parameters of the objective's own that the optimiser trains beside the network's (default: none)."""
        return []

    @classmethod
    def reads_translations(cls) -> bool:
        return any(v.startswith("g") for v in cls.views)


#: objective name -> its class, filled by the modules of this package (imported below) and by plugins
OBJECTIVES: dict[str, type[Objective]] = {}

ObjectiveType = TypeVar("ObjectiveType", bound=type[Objective])


def register_objective(cls: ObjectiveType) -> ObjectiveType:
    if cls.name in OBJECTIVES and OBJECTIVES[cls.name] is not cls:
        raise DarksideError(f"objective {cls.name!r} is registered twice")
    if not set(cls.views) <= set(VIEWS) or "o1" not in cls.views:
        raise DarksideError(f"objective {cls.name!r}: views {cls.views} must include o1 and be among {VIEWS}")
    OBJECTIVES[cls.name] = cls
    return cls


def objective_settings() -> dict[str, type]:
    """objective name -> its settings class (the schema of a learner's ``objective``)."""
    return {name: cls.Settings for name, cls in OBJECTIVES.items()}


def objective_class(name: str) -> type[Objective]:
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise DarksideError(f"objective {name!r} is not one of {sorted(OBJECTIVES)}") from None


def build_objective(entry: dict[str, Any], net: nn.Module, images: int) -> Objective:
    """The objective a learner's parsed ``objective`` entry (one name -> its settings) names, for ``net``."""
    ((name, settings),) = entry.items()
    return objective_class(name)(settings, net, images)


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
