"""Typed settings for each command. The CLI builds these; the library reads only these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codeaudit.data.options import DataConfig
from codeaudit.models.options import LoadOptions

__all__ = [
    "ARCH_DEFAULTS",
    "AuditConfig",
    "BackdoorConfig",
    "DataConfig",
    "HardenConfig",
    "LoadOptions",
    "MembershipConfig",
    "PoisonConfig",
    "PredictConfig",
    "TrainConfig",
]

# Per-architecture defaults chosen so that the models actually fit the data they are given
# (membership audits need models that can memorise; see docs/training.md).
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "lstm": {"epochs": 20, "lr": 2e-3, "batch_size": 32, "max_len": 512},
    "bigru": {"epochs": 20, "lr": 2e-3, "batch_size": 32, "max_len": 512},
    "transformer": {"epochs": 20, "lr": 5e-4, "batch_size": 32, "max_len": 512},
    "pretrained": {"epochs": 5, "lr": 2e-5, "batch_size": 16, "max_len": 512},
}


@dataclass(frozen=True)
class TrainConfig:
    data: str
    output: str
    arch: str = "bigru"
    val: str | None = None
    val_split: float = 0.1  # held out (by pair) when no --val file is given; 0 disables
    epochs: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    max_len: int | None = None
    seed: int = 0
    patience: int = 0  # early stopping on validation loss; 0 trains every epoch
    weight_decay: float = 0.01
    min_freq: int = 2
    vocab_size: int = 20000
    embed_dim: int = 128
    hidden_dim: int = 128
    num_layers: int = 1
    dropout: float = 0.1
    pretrained: str | None = None  # local Hugging Face directory to fine-tune (transformer)
    transformer: dict[str, Any] = field(default_factory=dict)  # small-config overrides
    device: str = "auto"
    force: bool = False
    data_options: DataConfig = field(default_factory=DataConfig)

    def resolved(self, key: str) -> Any:
        """A hyper-parameter, or the architecture's default when unset."""
        value = getattr(self, key)
        if value is not None:
            return value
        defaults = ARCH_DEFAULTS["pretrained" if self.pretrained else self.arch]
        return defaults[key]


@dataclass(frozen=True)
class PredictConfig:
    model: str
    data: str
    batch_size: int = 64
    device: str = "auto"
    model_options: LoadOptions = field(default_factory=LoadOptions)  # how MODEL is loaded and fed
    data_options: DataConfig = field(default_factory=DataConfig)
    rules: tuple[str, ...] = ()  # extra rule files or directories


@dataclass(frozen=True)
class MembershipConfig:
    model: str
    members: str
    nonmembers: str
    population: str | None = None
    features: str | None = None  # None: all 15 combinations
    classifiers: tuple[str, ...] = ("logreg",)  # --thorough: all four
    folds: int = 3
    shadows: int = 0
    references: int = 0
    boundary_samples: int = 0  # label-only boundary attack on this many samples (--thorough: 200)
    boundary_rewrites: int = 8
    n_boot: int = 200
    top_risk: int = 0
    seed: int = 0
    batch_size: int = 64
    device: str = "auto"
    model_options: LoadOptions = field(default_factory=LoadOptions)
    cache_dir: str | None = None
    plot: str | None = None
    rules: tuple[str, ...] = ()
    force: bool = False
    data_options: DataConfig = field(default_factory=DataConfig)


@dataclass(frozen=True)
class AuditConfig:
    """``codeaudit audit``: the release gate. Each check runs when its inputs are given (or when
    named in ``checks``); see :mod:`codeaudit.audit`."""

    model: str
    members: str | None = None  # membership check
    nonmembers: str | None = None  # membership check
    data: str | None = None  # backdoor check (issue 5)
    population: str | None = None
    checks: tuple[str, ...] = ()  # empty: every check whose inputs are given
    thorough: bool = False
    folds: int = 3
    shadows: int = 0
    references: int = 0
    n_boot: int = 200
    seed: int = 0
    batch_size: int = 64
    device: str = "auto"
    model_options: LoadOptions = field(default_factory=LoadOptions)
    cache_dir: str | None = None
    rules: tuple[str, ...] = ()
    data_options: DataConfig = field(default_factory=DataConfig)


@dataclass(frozen=True)
class HardenConfig:
    """``codeaudit harden``: NMID (masking plus keyed noise), calibrated and verified."""

    model: str
    output: str
    sigma: float | None = None  # None: "auto", calibrated on --members/--nonmembers
    expose: str = "top1"  # label | top1 | probs
    target_auc: float = 0.6
    floor_margin: float = 0.02  # tolerated excess over what labels alone give away
    calibration_slack: float = 0.01  # calibrate this far below each target (estimation noise)
    members: str | None = None
    nonmembers: str | None = None
    calibration_share: float = 0.5  # of the data used to choose sigma; the rest verifies it
    sweep: bool = False
    plot: str | None = None  # privacy-utility curve (PNG)
    export: tuple[str, ...] = ()  # "torchscript"
    export_output: str | None = None  # default: OUTPUT with .torchscript before the suffix
    queries: int = 16  # repeated-query averaging attack
    rewrites: int = 8  # rewrite-averaging attack (0: off)
    boundary_samples: int = 200  # label-only boundary attack (0: off)
    boundary_rewrites: int = 8
    classifiers: tuple[str, ...] = ("logreg",)
    folds: int = 3
    n_boot: int = 200
    seed: int = 0
    batch_size: int = 64
    device: str = "auto"
    model_options: LoadOptions = field(default_factory=LoadOptions)
    key: str | None = None  # 32 hex digits; None: a fresh random key (library use only)
    rules: tuple[str, ...] = ()
    force: bool = False
    data_options: DataConfig = field(default_factory=DataConfig)


@dataclass(frozen=True)
class BackdoorConfig:
    """``codeaudit backdoor``: EliBadCode trigger inversion, verdict and (optionally) unlearning."""

    model: str
    data: str  # labelled clean functions
    output: str | None = None  # repaired checkpoint (with unlearn)
    unlearn: bool = False
    unlearn_scope: str = "head"  # head | full
    unlearn_epochs: int = 1
    unlearn_lr: float = 5e-3
    trigger_share: float = 0.2  # of victim-label training samples that carry the trigger
    eval_share: float = 0.3  # of the data (by pair) held out to measure the repair
    manifest: str | None = None  # codeaudit poison manifest: real-trigger ASR
    victim_samples: int = 30
    heldout: int = 200  # held-out victim samples for the verdict (at most)
    steps: int = 100
    topk: int = 64
    candidates: int = 64
    trigger_len: int = 5
    beta: float = 0.15
    threshold: float | None = None  # None: the default (0.5)
    keep_shortcuts: bool = False  # search the data's label-pure names too (EliBadCode as is)
    patience: int = 10
    seed: int = 0
    batch_size: int = 32
    device: str = "auto"
    model_options: LoadOptions = field(default_factory=LoadOptions)
    rules: tuple[str, ...] = ()
    force: bool = False
    data_options: DataConfig = field(default_factory=DataConfig)


@dataclass(frozen=True)
class PoisonConfig:
    """``codeaudit poison``: a poisoned training set and its manifest (see
    :mod:`codeaudit.backdoor.poison`)."""

    data: str
    output: str
    trigger_type: str  # identifier | postfix | deadcode | grammar
    trigger: str | None = None  # None: the type's default (identifier has none; grammar: none)
    rate: float = 0.02  # share of the victim-label samples (label != target_label)
    target_label: int = 0
    seed: int = 0
    manifest: str | None = None  # default: OUTPUT.manifest.json
    force: bool = False
    data_options: DataConfig = field(default_factory=DataConfig)
