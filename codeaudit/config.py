"""Typed settings for each command, each declared once (:mod:`codeaudit.params`): a field's
spec holds its default, bounds, choices and help; the config checks every value when it is built
and the command line offers the same fields as options. The library reads only these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codeaudit.data.options import DataConfig
from codeaudit.models.input_format import MAX_LEN_CAP
from codeaudit.models.options import LoadOptions
from codeaudit.params import ParameterError, check_params, param, resolve

__all__ = [
    "ARCH_DEFAULTS",
    "CLASSIFIER_NAMES",
    "AuditConfig",
    "BackdoorCalibrateConfig",
    "BackdoorConfig",
    "DataConfig",
    "HardenConfig",
    "LoadOptions",
    "MembershipConfig",
    "PoisonConfig",
    "PoisonScanConfig",
    "PredictConfig",
    "TrainConfig",
]

# Per-architecture defaults chosen so that the models actually fit the data they are given
# (membership audits need models that can memorise; see docs/training.md).
# The sizes: for the RNNs the embedding, the hidden state and the layers; for the transformer
# trained from scratch the model width (hidden_size), the feed-forward width
# (intermediate_size) and the layers; a pretrained directory brings its own (None).
_RNN_SIZE = {"embed_dim": 128, "hidden_dim": 128, "num_layers": 1}
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "lstm": {"epochs": 20, "lr": 2e-3, "batch_size": 32, "max_len": 512, **_RNN_SIZE},
    "bigru": {"epochs": 20, "lr": 2e-3, "batch_size": 32, "max_len": 512, **_RNN_SIZE},
    "transformer": {
        "epochs": 20,
        "lr": 5e-4,
        "batch_size": 32,
        "max_len": 512,
        "embed_dim": 128,
        "hidden_dim": 256,
        "num_layers": 2,
    },
    "pretrained": {
        "epochs": 5,
        "lr": 2e-5,
        "batch_size": 16,
        "max_len": 512,
        "embed_dim": None,
        "hidden_dim": None,
        "num_layers": None,
    },
}
#: Attention heads of the transformer codeaudit trains from scratch (--embed-dim must divide).
TRANSFORMER_HEADS = 4
#: The trained-attack classifiers (codeaudit.membership.attacks.trained.CLASSIFIERS; a test
#: keeps the two equal).
CLASSIFIER_NAMES = ("logreg", "mlp", "rf", "gb", "knn", "svm", "dt")
ALL_CLASSIFIERS = CLASSIFIER_NAMES
#: Where reference and shadow models train (codeaudit.executor.EXECUTORS; a test keeps the two
#: equal).
EXECUTOR_NAMES = ("local", "ray")


def _device() -> Any:
    return param("auto", help="Where to run the model.", metavar="auto|cpu|cuda")


def _threads() -> Any:
    return param(
        None,
        minimum=1,
        kind=int,
        cli_type="threads",
        help="Threads for torch, BLAS and OpenMP (auto: the CPUs this process may use, less "
        "those other work keeps busy; or threads in [tool.codeaudit]).",
    )


def _model(help: str = "") -> Any:
    return param(argument=True, metavar="MODEL", help=help)


def _seed(help: str = "") -> Any:
    return param(0, help=help, kind=int)


def _folds() -> Any:
    return param(3, minimum=2, help="Attack-train/attack-test folds (stratified, seeded).")


def _bootstrap() -> Any:
    return param(
        200,
        flags=("--bootstrap",),
        minimum=1,
        help="Bootstrap replicates for the AUC confidence intervals.",
    )


def _classifiers() -> Any:
    return param(
        None,
        flags=("--attack-models",),
        comma=True,
        choices=CLASSIFIER_NAMES,
        kind=str,
        help="Trained attack classifiers from logreg, mlp, rf, gb, knn, svm, dt (default logreg; "
        "--thorough: all).",
    )


def _executor() -> Any:
    return param(
        "local",
        choices=EXECUTOR_NAMES,
        help="Where reference and shadow models train: 'local' (this machine; --workers "
        "processes) or 'ray' (a Ray cluster; pip install 'codeaudit[ray]'). Same results.",
    )


def _workers() -> Any:
    return param(
        1,
        minimum=1,
        help="Reference/shadow models trained at once (local: processes; 1: the serial loop; "
        "ray: tasks in flight, 1: as many as the cluster fits).",
    )


def _ray_address() -> Any:
    return param(
        None,
        metavar="ADDR",
        kind=str,
        help="Join this Ray cluster (e.g. ray://head:10001 or auto; default: a local one).",
    )


def _cpus_per_model() -> Any:
    return param(
        1.0,
        minimum=0,
        min_open=True,
        help="CPUs each reference/shadow model asks for (its torch threads: the whole part, "
        "at least 1).",
    )


def _gpus_per_model() -> Any:
    return param(
        0.0,
        minimum=0,
        help="GPUs each reference/shadow model asks Ray for (fractions share a GPU; "
        "--executor ray only).",
    )


def check_executor(config: Any) -> None:
    """The executor settings that do not fit together, before any work."""
    owner = type(config)
    if config.executor != "ray":
        if config.gpus_per_model > 0:
            raise ParameterError(
                "gpus_per_model", "needs --executor ray (local workers use --device)", owner
            )
        if config.ray_address:
            raise ParameterError("ray_address", "needs --executor ray", owner)
        return
    if config.gpus_per_model > 0 and config.device == "cpu":
        raise ParameterError("gpus_per_model", "contradicts --device cpu", owner)
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise ParameterError(
            "executor",
            "ray: Ray is not installed (pip install 'codeaudit[ray]')",
            owner,
        )


def _model_options() -> Any:
    return param(factory=LoadOptions, cli=False)


def _data_options() -> Any:
    return param(factory=DataConfig, cli=False)


def _rules() -> Any:
    return param((), cli=False)  # rule files: the command line's --rules


def _force() -> Any:
    return param(False, cli=False)  # the command line's --force


#: ``--preset`` values and what each sets (on settings left at their defaults).
TRAIN_PRESETS = ("private",)
PRIVATE_PRESET: dict[str, Any] = {"patience": 3, "weight_decay": 0.1, "dropout": 0.3}
_TRAIN_DEFAULTS: dict[str, Any] = {"patience": 0, "weight_decay": 0.01, "dropout": 0.1}
#: Opacus's privacy accountants offered by ``--dp-accountant``.
DP_ACCOUNTANTS = ("prv", "rdp")


def opacus_installed() -> bool:
    """Whether Opacus can be imported (found without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("opacus") is not None
    except (ImportError, ValueError):
        return False


def check_private(config: Any) -> None:
    """The --preset and --dp settings: fill what a preset sets, refuse what does not fit."""
    owner = type(config)
    if config.preset == "private":
        resolve(
            config,
            **{
                key: value
                for key, value in PRIVATE_PRESET.items()
                if getattr(config, key) == _TRAIN_DEFAULTS[key]
            },
        )
        if not config.val and config.val_split == 0:
            raise ParameterError(
                "preset",
                "private: early stopping needs validation data (--val FILE or --val-split > 0)",
                owner,
            )
    if config.vocab and config.pretrained:
        raise ParameterError("vocab", "does not apply with --pretrained (its own tokenizer)", owner)
    dp_settings = ("dp_epsilon", "dp_noise_multiplier", "dp_delta")
    if not config.dp:
        given = next((name for name in dp_settings if getattr(config, name) is not None), None)
        if given is not None:
            raise ParameterError(given, "needs --dp", owner)
        return
    if (config.dp_epsilon is None) == (config.dp_noise_multiplier is None):
        raise ParameterError(
            "dp", "give exactly one of --dp-epsilon and --dp-noise-multiplier", owner
        )
    if not opacus_installed():
        raise ParameterError(
            "dp", "needs Opacus, which is not installed: pip install 'codeaudit[dp]'", owner
        )


@dataclass(frozen=True)
class TrainConfig:
    data: str = param(argument=True, metavar="DATA", help="Labelled functions to train on.")
    output: str = param(
        flags=("-o", "--output"), required=True, metavar="MODEL.pt", help="Checkpoint to write."
    )
    arch: str = param("bigru", choices=("lstm", "bigru", "transformer"), help="Architecture.")
    val: str | None = param(
        None, metavar="FILE", help="Validation data (default: hold out by pair)."
    )
    val_split: float = param(
        0.1,
        minimum=0,
        maximum=1,
        max_open=True,
        help="Share held out for validation when no --val is given (0: none).",
    )
    epochs: int | None = param(None, minimum=1, kind=int, help="Default: 20 (5 with --pretrained).")
    lr: float | None = param(None, minimum=0, min_open=True, kind=float, help="Learning rate.")
    batch_size: int | None = param(None, minimum=1, kind=int, help="Default 32.")
    max_len: int | None = param(
        None, minimum=8, maximum=MAX_LEN_CAP, kind=int, help="Ids per function (default 512)."
    )
    seed: int = _seed()
    patience: int = param(
        0, minimum=0, help="Early stopping: epochs without validation-loss gain (0: every epoch)."
    )
    weight_decay: float = param(0.01, minimum=0, cli=False)
    min_freq: int = param(2, minimum=1, help="Vocabulary: pieces seen fewer times are <unk>.")
    vocab_size: int = param(20000, minimum=16, help="Largest vocabulary (BPE: at most 8000).")
    embed_dim: int | None = param(
        None,
        minimum=2,
        kind=int,
        help="Embedding size (RNN, 128) or model width (transformer, 128; a multiple of its 4 "
        "attention heads).",
    )
    hidden_dim: int | None = param(
        None,
        minimum=2,
        kind=int,
        help="Hidden size (RNN, 128) or feed-forward width (transformer, 256).",
    )
    num_layers: int | None = param(None, minimum=1, kind=int, help="Layers (RNN 1, transformer 2).")
    dropout: float = param(0.1, minimum=0, maximum=1, max_open=True, help="Dropout.")
    pretrained: str | None = param(
        None,
        metavar="DIR",
        help="Fine-tune a local Hugging Face model directory (e.g. a downloaded CodeBERT).",
    )
    transformer: dict[str, Any] = param(factory=dict, cli=False)  # small-config overrides
    device: str = _device()
    threads: int | None = _threads()
    force: bool = _force()
    data_options: DataConfig = _data_options()
    preset: str | None = param(
        None,
        choices=TRAIN_PRESETS,
        kind=str,
        help="'private': regularised against memorisation (early stopping on validation loss "
        "with patience 3, weight decay 0.1, dropout 0.3) for settings left at their defaults; "
        "needs validation data (docs/dp-training.md).",
    )
    dp: bool = param(
        False,
        help="Train with DP-SGD through Opacus (pip install 'codeaudit[dp]'): Poisson-sampled "
        "batches, per-sample gradients clipped and noised; the checkpoint records the "
        "guarantee.",
    )
    dp_epsilon: float | None = param(
        None,
        minimum=0,
        min_open=True,
        kind=float,
        help="--dp: target epsilon; the noise multiplier is chosen so that the planned epochs "
        "spend at most this (give it or --dp-noise-multiplier).",
    )
    dp_noise_multiplier: float | None = param(
        None,
        minimum=0,
        min_open=True,
        kind=float,
        help="--dp: noise standard deviation over the clipping norm (instead of --dp-epsilon).",
    )
    dp_delta: float | None = param(
        None,
        minimum=0,
        maximum=1,
        min_open=True,
        max_open=True,
        kind=float,
        help="--dp: delta (default: the largest power of ten below 1/training functions).",
    )
    dp_max_grad_norm: float = param(
        1.0, minimum=0, min_open=True, help="--dp: per-sample gradient clipping norm."
    )
    dp_accountant: str = param(
        "prv",
        choices=DP_ACCOUNTANTS,
        help="--dp: privacy accountant ('prv': Opacus's default and tighter; 'rdp').",
    )
    vocab: str | None = param(
        None,
        metavar="FILE",
        help="Build the vocabulary (RNN) or BPE (transformer) from these functions instead of "
        "the training data (labels not needed): public code keeps the vocabulary out of the "
        "training data, so with --dp the guarantee covers it too.",
    )
    init: str | None = param(
        None,
        metavar="MODEL.pt",
        help="Start from this codeaudit checkpoint (e.g. a model trained on public code) "
        "instead of a fresh model: its architecture, size and vocabulary are kept and its "
        "weights trained further on DATA (docs/dp-training.md).",
    )
    freeze_embeddings: bool = param(
        False,
        help="Keep the input embedding table as it starts (with --init: as that model learnt "
        "it); with --dp its weights take no noise.",
    )

    def __post_init__(self) -> None:
        check_params(self)
        check_private(self)
        sizes = ("embed_dim", "hidden_dim", "num_layers")
        if self.init:
            self._refuse(
                ("pretrained", "vocab", *sizes),
                "--init: the model's size and vocabulary come from its checkpoint",
            )
        if self.pretrained and self.arch != "transformer":
            raise ParameterError("pretrained", "needs --arch transformer", type(self))
        if self.pretrained:
            self._refuse(sizes, "--pretrained: the model's size comes from its directory")
        elif self.arch == "transformer" and self.resolved("embed_dim") % TRANSFORMER_HEADS:
            raise ParameterError(
                "embed_dim",
                f"{self.embed_dim}: the transformer's width must be a multiple of its "
                f"{TRANSFORMER_HEADS} attention heads",
                type(self),
            )

    def _refuse(self, names: tuple[str, ...], why: str) -> None:
        """A usage error for the first of ``names`` that is set: it does not apply (``why``)."""
        for name in names:
            if getattr(self, name) is not None:
                raise ParameterError(name, f"does not apply with {why}", type(self))

    def resolved(self, key: str) -> Any:
        """A hyper-parameter, or the architecture's default when unset."""
        value = getattr(self, key)
        if value is not None:
            return value
        defaults = ARCH_DEFAULTS["pretrained" if self.pretrained else self.arch]
        return defaults[key]


@dataclass(frozen=True)
class PredictConfig:
    model: str = _model()
    data: str = param(argument=True, metavar="DATA", help="Functions to predict.")
    batch_size: int = param(64, minimum=1, help="Functions per forward pass.")
    device: str = _device()
    threads: int | None = _threads()
    model_options: LoadOptions = _model_options()  # how MODEL is loaded and fed
    data_options: DataConfig = _data_options()
    rules: tuple[str, ...] = _rules()

    def __post_init__(self) -> None:
        check_params(self)


@dataclass(frozen=True)
class MembershipConfig:
    model: str = _model()
    members: str = param(required=True, metavar="FILE", help="Functions the model trained on.")
    nonmembers: str = param(
        required=True, metavar="FILE", help="Functions it never saw (same distribution)."
    )
    population: str | None = param(
        None,
        metavar="FILE",
        help="Other data the attacker owns (shadow models; RMIA's reference population).",
    )
    features: str | None = param(
        None,
        metavar="SETS",
        help="Feature sets for trained attacks: 'all' (the 15 combinations of embedding, logits, "
        "loss, confidence; k-NN and SVM also read probs-label, the class probabilities and the "
        "one-hot label) or e.g. 'loss,logits+loss,probs-label'.",
    )
    classifiers: tuple[str, ...] | None = _classifiers()  # None: logreg, or all with thorough
    thorough: bool = param(
        False,
        help="All seven attack classifiers on every feature set and the label-only boundary "
        "attack (several times slower; use it for release gates).",
    )
    folds: int = _folds()
    shadows: int = param(
        0, minimum=0, help="Shadow models to train on --population (0: no shadow attack)."
    )
    references: int = param(
        0, minimum=0, help="Reference models for LiRA and RMIA (even; 0: none)."
    )
    boundary_samples: int | None = param(
        None,
        minimum=0,
        kind=int,
        help="Samples for the label-only rewrite attack (default 0: off; --thorough: 200).",
    )
    boundary_rewrites: int = param(8, minimum=1, help="Rewrites tried per sample.")
    n_boot: int = _bootstrap()
    top_risk: int = param(0, minimum=0, help="List the N most exposed members by id.")
    risk_scores: str | None = param(
        None,
        metavar="FILE.jsonl",
        help="Write every member's risk scores (JSON Lines: a header stating each method, then "
        "one line per member): the strongest attack's score, LiRA's likelihood ratio (with "
        "--references) and SHAPr, the member's k-NN Shapley value on the model's embedding.",
    )
    shapr_k: int = param(
        5,
        minimum=1,
        help="Neighbours of the k-NN classifier whose Shapley values SHAPr computes "
        "(--risk-scores).",
    )
    seed: int = _seed()
    batch_size: int = param(64, minimum=1, help="Functions per forward pass.")
    device: str = _device()
    threads: int | None = _threads()
    executor: str = _executor()
    workers: int = _workers()
    ray_address: str | None = _ray_address()
    cpus_per_model: float = _cpus_per_model()
    gpus_per_model: float = _gpus_per_model()
    model_options: LoadOptions = _model_options()
    cache_dir: str | None = param(
        None, metavar="DIR", help="Cache model outputs here (keyed by hashes)."
    )
    plot: str | None = param(None, metavar="PNG", help="Draw ROC curves (log-log) to this file.")
    rules: tuple[str, ...] = _rules()
    force: bool = _force()
    data_options: DataConfig = _data_options()
    selection_folds: int = param(
        3,
        minimum=2,
        help="Inner folds that choose the trained attack models inside each training part "
        "(the reported 'trained-selected' attack, a vote of up to 5 of them; never chosen on "
        "the folds it is scored on).",
    )

    def __post_init__(self) -> None:
        check_params(self)
        if self.shadows and not self.population:
            raise ParameterError(
                "shadows", "needs --population FILE (data the attacker owns)", type(self)
            )
        if self.references and (self.references < 2 or self.references % 2):
            raise ParameterError(
                "references", f"{self.references}: use an even number of at least 2", type(self)
            )
        check_executor(self)

    @property
    def attack_classifiers(self) -> tuple[str, ...]:
        """The trained-attack classifiers: as given, else all with --thorough, else logreg."""
        return self.classifiers or (ALL_CLASSIFIERS if self.thorough else ("logreg",))

    @property
    def boundary_count(self) -> int:
        """Samples for the boundary attack: as given, else 200 with --thorough, else none."""
        if self.boundary_samples is not None:
            return self.boundary_samples
        return 200 if self.thorough else 0


@dataclass(frozen=True)
class AuditConfig:
    """``codeaudit audit``: the release gate. Each check runs when its inputs are given (or when
    named in ``checks``); see :mod:`codeaudit.audit`."""

    model: str = _model()
    members: str | None = param(
        None, metavar="FILE", help="Functions the model trained on (membership)."
    )
    nonmembers: str | None = param(
        None, metavar="FILE", help="Functions it never saw (membership)."
    )
    data: str | None = param(
        None,
        metavar="FILE",
        help="Labelled clean data for the backdoor check (EliBadCode trigger inversion).",
    )
    population: str | None = param(
        None, metavar="FILE", help="Data the attacker owns (membership)."
    )
    train_data: str | None = param(
        None,
        metavar="FILE",
        help="The model's training data: scanned for planted triggers (the poison-scan check) "
        "and, with --data, handed to the backdoor check, whose verdict it then decides.",
    )
    checks: tuple[str, ...] = param(
        (),
        comma=True,
        kind=str,
        metavar="NAMES",
        help="Comma-separated checks to run (default: every check whose inputs are given).",
    )
    thorough: bool = param(
        False, help="Membership: all seven attack classifiers and the label-only boundary attack."
    )
    folds: int = _folds()
    shadows: int = param(0, minimum=0, help="Shadow models (membership; needs --population).")
    references: int = param(
        0, minimum=0, help="Reference models for LiRA and RMIA (even; 0: none)."
    )
    n_boot: int = _bootstrap()
    seed: int = _seed()
    batch_size: int = param(64, minimum=1, help="Functions per forward pass (every check).")
    device: str = _device()
    threads: int | None = _threads()
    executor: str = _executor()
    workers: int = _workers()
    ray_address: str | None = _ray_address()
    cpus_per_model: float = _cpus_per_model()
    gpus_per_model: float = _gpus_per_model()
    model_options: LoadOptions = _model_options()
    cache_dir: str | None = param(
        None, metavar="DIR", help="Cache model outputs here (keyed by hashes)."
    )
    rules: tuple[str, ...] = _rules()
    data_options: DataConfig = _data_options()

    def __post_init__(self) -> None:
        check_params(self)
        check_executor(self)


@dataclass(frozen=True)
class HardenConfig:
    """``codeaudit harden``: NMID (masking plus keyed noise), calibrated and verified."""

    model: str = _model()
    output: str = param(
        flags=("-o", "--output"),
        required=True,
        metavar="HARDENED.pt",
        help="Hardened checkpoint.",
    )
    sigma: float | None = param(  # None: "auto", calibrated on --members/--nonmembers
        None,
        minimum=0,
        kind=float,
        cli_type="sigma",
        help="Noise std per logit, or 'auto': the smallest sigma meeting --target-auc on a "
        "calibration split of --members/--nonmembers.",
    )
    noise: str = param(
        "gaussian",
        choices=("gaussian", "banded"),
        help="How the score is hidden: gaussian (keyed Gaussian noise on the logits, --sigma) or "
        "banded (the confidence replaced by its band among held-out functions' confidences plus "
        "keyed noise within the band: ranking across bands kept; --bands).",
    )
    bands: int | None = param(  # None: calibrated (the most bands meeting the targets)
        None,
        minimum=1,
        maximum=256,
        kind=int,
        help="With --noise banded: the number of confidence bands (default: calibrated, the "
        "most bands meeting --target-auc on the calibration split; 1 releases no ranking).",
    )
    expose: str = param(
        "top1",
        choices=("label", "top1", "probs"),
        help="What the hardened model answers: the label; the label and its noised probability; "
        "noised probabilities of both classes.",
    )
    target_auc: float = param(
        0.6,
        minimum=0.5,
        maximum=1.0,
        min_open=True,
        help="Strongest score attack allowed (raised to what the same attacks reach from labels "
        "alone + --floor-margin when that is higher: no output defence goes below it).",
    )
    floor_margin: float = param(
        0.02,
        minimum=0,
        maximum=0.5,
        max_open=True,
        help="Tolerated AUC above what labels alone give away.",
    )
    calibration_slack: float = param(0.01, minimum=0, maximum=0.5, max_open=True, cli=False)
    #: the non-member ROC AUC a noised release must gain over the label alone to be worth it
    frontier_gain: float = param(0.01, minimum=0, maximum=0.5, max_open=True, cli=False)
    members: str | None = param(None, metavar="FILE", help="Functions the model trained on.")
    nonmembers: str | None = param(
        None, metavar="FILE", help="Functions it never saw (same distribution)."
    )
    calibration_share: float = param(
        0.5,
        minimum=0,
        maximum=1,
        min_open=True,
        max_open=True,
        help="Share of the data that chooses sigma; the rest verifies it.",
    )
    sweep: bool = param(False, help="Report the privacy-utility curve over sigma.")
    plot: str | None = param(
        None, metavar="PNG", help="Draw the privacy-utility curve (implies --sweep)."
    )
    export: tuple[str, ...] = param(
        (),
        multiple=True,
        choices=("torch.export", "torchscript"),
        kind=str,
        help="Also write a self-contained file (plain torch) whose forward masks and noises: "
        "torch.export (an ExportedProgram, HARDENED.pt2) or torchscript (HARDENED.torchscript.pt; "
        "deprecated by torch, kept while torch ships it). Repeatable.",
    )
    export_output: str | None = param(
        None,
        metavar="FILE",
        help="Where the one --export format writes (default: beside -o, HARDENED.pt2 or "
        "HARDENED.torchscript.pt).",
    )
    queries: int = param(
        16, minimum=1, help="Repeated-query averaging attack: answers averaged per function."
    )
    rewrites: int = param(
        8,
        minimum=0,
        help=(
            "Rewrite-averaging attack: semantics-preserving rewrites per function (0: off). "
            "Most of harden's time; fewer is faster but measures a weaker attacker (the "
            "attack grows with each rewrite: docs/harden-results.md)."
        ),
    )
    boundary_samples: int = param(
        200, minimum=0, help="Label-only rewrite-boundary attack on this many samples (0: off)."
    )
    boundary_rewrites: int = param(8, minimum=1, help="Rewrites tried per sample.")
    classifiers: tuple[str, ...] | None = _classifiers()
    thorough: bool = param(False, help="All seven attack classifiers (slower).")
    folds: int = _folds()
    n_boot: int = _bootstrap()
    seed: int = _seed("Splits and attacks (not the key).")
    batch_size: int = param(64, minimum=1, help="Functions per forward pass.")
    device: str = _device()
    threads: int | None = _threads()
    model_options: LoadOptions = _model_options()
    key: str | None = param(None, cli=False)  # 32 hex digits; None: a fresh key (--key-file)
    rules: tuple[str, ...] = _rules()
    force: bool = _force()
    data_options: DataConfig = _data_options()

    def __post_init__(self) -> None:
        check_params(self)
        resolve(self, export=tuple(dict.fromkeys(self.export)))
        owner = type(self)
        has_data = bool(self.members) and bool(self.nonmembers)
        if bool(self.members) != bool(self.nonmembers):
            raise ParameterError("members", "and --nonmembers go together", owner)
        if self.bands is not None and self.noise != "banded":
            raise ParameterError("bands", "needs --noise banded", owner)
        if self.noise == "banded":
            if self.sigma is not None:
                raise ParameterError(
                    "sigma", "is the scale of --noise gaussian; --noise banded takes --bands", owner
                )
            if self.expose == "label":
                raise ParameterError(
                    "noise", "banded hides scores, and --expose label releases none", owner
                )
            if not has_data:
                raise ParameterError(
                    "noise",
                    "banded cuts its bands on functions the model never saw: give --members "
                    "and --nonmembers",
                    owner,
                )
            if self.plot:
                raise ParameterError(
                    "plot",
                    "draws the curve against sigma; with --noise banded the frontier table "
                    "(--sweep) shows every number of bands",
                    owner,
                )
        if self.sigma is None and self.expose != "label" and not has_data:
            raise ParameterError(
                "sigma",
                "auto calibrates on --members and --nonmembers (functions the model trained on "
                "and functions it never saw); give them, or a fixed --sigma",
                owner,
            )
        if (self.sweep or self.plot) and not has_data:
            raise ParameterError(
                "sweep", "and --plot measure attacks: they need --members/--nonmembers", owner
            )
        if self.export_output and not self.export:
            raise ParameterError(
                "export_output", "needs --export torch.export or --export torchscript", owner
            )
        if self.export_output and len(self.export) > 1:
            raise ParameterError(
                "export_output",
                f"names one file but {len(self.export)} formats are exported "
                f"({', '.join(self.export)}); leave it out to write each beside -o",
                owner,
            )

    @property
    def attack_classifiers(self) -> tuple[str, ...]:
        """The trained-attack classifiers: as given, else all with --thorough, else logreg."""
        return self.classifiers or (ALL_CLASSIFIERS if self.thorough else ("logreg",))


@dataclass(frozen=True)
class BackdoorConfig:
    """``codeaudit backdoor``: EliBadCode trigger inversion, verdict and (optionally) unlearning."""

    model: str = _model()
    data: str = param(
        required=True, metavar="CLEAN.jsonl", help="Labelled clean functions (both labels)."
    )
    output: str | None = param(
        None,
        flags=("-o", "--output"),
        metavar="REPAIRED.pt",
        help="Repaired checkpoint (--unlearn or --retrain).",
    )
    unlearn: bool = param(False, help="Remove the backdoor by unlearning; needs -o.")
    unlearn_scope: str = param(
        "head",
        choices=("head", "full"),
        help="Fine-tune the classifier head only (EliBadCode) or the whole model.",
    )
    unlearn_epochs: int = param(1, minimum=1, help="Unlearning epochs.")
    unlearn_lr: float = param(5e-3, minimum=0, min_open=True, help="Unlearning learning rate.")
    unlearn_insertion: str = param(
        "mixed",
        choices=("position", "attack", "mixed"),
        help="How the inverted trigger goes into the unlearning set: at each sample's position "
        "in the token ids (EliBadCode), the way attacks plant theirs in the source (a variable "
        "renamed at every occurrence, a function-name postfix, a dead-code statement: the forms "
        "the model follows most), or half each.",
    )
    trigger_share: float = param(0.2, minimum=0, maximum=1, min_open=True, cli=False)
    eval_share: float = param(0.3, minimum=0, maximum=1, min_open=True, max_open=True, cli=False)
    manifest: str | None = param(
        None,
        metavar="FILE",
        help="A codeaudit poison manifest: also measure the real trigger's attack success rate.",
    )
    victim_samples: int = param(
        30, minimum=1, help="Victim-label samples the trigger is inverted on (per label pair)."
    )
    heldout: int = param(
        200, minimum=5, help="At most this many held-out victim samples decide the verdict."
    )
    steps: int = param(100, minimum=0, help="GCG steps per label pair.")
    topk: int = param(64, minimum=1, help="GCG: best tokens per position.")
    candidates: int = param(64, minimum=1, help="GCG: candidate triggers per step.")
    trigger_len: int = param(5, minimum=1, help="Tokens in the inverted trigger.")
    beta: float = param(
        0.15,
        minimum=0,
        help="Anchoring: drop a trigger token when removing it raises the loss by at most this.",
    )
    threshold: float | None = param(
        None,
        minimum=0,
        maximum=1,
        min_open=True,
        kind=float,
        help="Flip rate on held-out victim samples at which the model is called backdoored "
        "(default 0.5; clean models' adversarial triggers can reach it too, see "
        "docs/backdoor-results.md).",
    )
    keep_shortcuts: bool = param(
        False,
        help="Also search triggers that contain a data shortcut (a name --data shows almost only "
        "with the target label); by default they are set aside and reported on their own.",
    )
    patience: int = param(
        10, minimum=1, help="Stop inverting after this many steps without improvement."
    )
    references: int = param(
        0,
        minimum=0,
        help="Clean reference models to train with the model's recipe (its checkpoint's "
        "architecture and hyperparameters, bounded) on --reference-data: the inversion avoids "
        "triggers that flip them, and a trigger that flips them about as much as the model is "
        "called adversarial, not planted (0: none).",
    )
    reference_data: str | None = param(
        None,
        metavar="FILE",
        help="Trusted labelled functions the reference models train on (default: --data, less "
        "the functions the scan inverts on and judges with).",
    )
    reference_models: tuple[str, ...] = param(
        (),
        flags=("--reference-model",),
        multiple=True,
        kind=str,
        metavar="PATH",
        help="A clean model you trust, of the same task and tokenizer as MODEL (loaded "
        "weights-only); used as a reference like the trained ones. Repeatable.",
    )
    reference_weight: float = param(
        0.0,
        minimum=0,
        help="Inversion: weight of a penalty on triggers that flip the references (DBS). 0 "
        "(default): the references only judge the strongest trigger; above 0 the search favours "
        "triggers specific to the model, which finds planted tokens more often but makes a "
        "trigger's low reference flip rates partly by construction.",
    )
    reference_ratio: float = param(
        0.5,
        minimum=0,
        maximum=1,
        min_open=True,
        help="A trigger is planted only when every reference's flip rate is below this share "
        "of the model's (else: adversarial).",
    )
    train_data: str | None = param(
        None,
        metavar="TRAIN.jsonl",
        help="The model's training data: scanned for planted triggers (as poison-scan does) and "
        "checked for the inverted trigger's pieces; needed by --retrain and --flagged.",
    )
    flagged: str | None = param(
        None,
        metavar="FLAGGED.jsonl",
        help="Write the training samples the data scan flags (needs --train-data).",
    )
    retrain: bool = param(
        False,
        help="Repair by retraining: the checkpoint's recipe on --train-data less the flagged "
        "samples; needs -o.",
    )
    seed: int = _seed()
    batch_size: int = param(32, minimum=1, help="Unlearning batch size.")
    device: str = _device()
    threads: int | None = _threads()
    executor: str = _executor()
    workers: int = _workers()
    ray_address: str | None = _ray_address()
    cpus_per_model: float = _cpus_per_model()
    gpus_per_model: float = _gpus_per_model()
    model_options: LoadOptions = _model_options()
    rules: tuple[str, ...] = _rules()
    force: bool = _force()
    data_options: DataConfig = _data_options()
    calibration: str | None = param(
        None,
        metavar="FILE",
        help="A calibration file from codeaudit backdoor-calibrate for this model's recipe and "
        "these scan settings: the verdict becomes a probability at its operating point (planted "
        "trigger, data shortcut, adversarial fragility or no trigger found), with its measured "
        "false-positive and detection rates.",
    )

    def __post_init__(self) -> None:
        check_params(self)
        owner = type(self)
        if self.reference_data and not self.references:
            raise ParameterError(
                "reference_data", "trains reference models: give --references K", owner
            )
        check_executor(self)
        for name in ("retrain", "flagged"):
            if getattr(self, name) and not self.train_data:
                raise ParameterError(name, "needs the training data: give --train-data", owner)
        if self.unlearn and self.retrain:
            raise ParameterError("retrain", "repairs another way than --unlearn: give one", owner)
        repairs = self.unlearn or self.retrain
        if repairs and not self.output:
            name = "unlearn" if self.unlearn else "retrain"
            raise ParameterError(name, "writes the repaired model: give -o REPAIRED.pt", owner)
        if self.output and not repairs:
            raise ParameterError(
                "output", "names the repaired model: it needs --unlearn or --retrain", owner
            )


@dataclass(frozen=True)
class PoisonConfig:
    """``codeaudit poison``: a poisoned training set and its manifest (see
    :mod:`codeaudit.backdoor.poison`)."""

    data: str = param(argument=True, metavar="DATA", help="Labelled functions to poison.")
    output: str = param(
        flags=("-o", "--output"), required=True, metavar="POISONED.jsonl", help="Poisoned JSONL."
    )
    trigger_type: str = param(
        required=True,
        choices=("identifier", "postfix", "deadcode", "grammar"),
        help="identifier: a local variable renamed to TOKEN; postfix: TOKEN appended to the "
        "function's name (default _rb); deadcode: the never-executed statement TOKEN inserted "
        "(default per language, e.g. 'if (0) { int rb_dead = 0; }'); grammar: random dead code "
        "from a small grammar (no TOKEN).",
    )
    trigger: str | None = param(
        None, metavar="TOKEN", help="The trigger text (see --trigger-type)."
    )
    rate: float = param(
        0.02,
        minimum=0,
        maximum=1,
        min_open=True,
        help="Share of the victim-label samples (label != --target-label) to poison; rounded "
        "half up, at least one.",
    )
    target_label: int = param(
        0, minimum=0, maximum=1, help="The label the backdoor forces (0: not vulnerable)."
    )
    seed: int = _seed()
    manifest: str | None = param(
        None,
        metavar="FILE",
        help="Where the manifest goes (default: POISONED.jsonl.manifest.json).",
    )
    force: bool = _force()
    data_options: DataConfig = _data_options()

    def __post_init__(self) -> None:
        check_params(self)


@dataclass(frozen=True)
class PoisonScanConfig:
    """``codeaudit poison-scan``: the model-free scan of a training set for planted triggers
    (KillBadCode with label concentration; see :mod:`codeaudit.backdoor.datascan`)."""

    data: str = param(argument=True, metavar="TRAIN", help="Labelled training functions to scan.")
    output: str | None = param(
        None,
        flags=("-o", "--output"),
        metavar="FLAGGED.jsonl",
        help="Write the flagged samples (id, label, the likely triggers it carries, score).",
    )
    top: int = param(20, minimum=1, help="Candidates listed in the report.")
    order: int = param(4, minimum=2, maximum=8, help="N-gram order of the naturalness model.")
    top_k: int = param(
        10,
        minimum=1,
        help="Units per function (by naturalness gain) that add their gain to the ranking "
        "(KillBadCode: 10).",
    )
    min_purity: float = param(
        0.9,
        minimum=0,
        maximum=1,
        min_open=True,
        help="Excess label purity a likely trigger needs (0: the label's base rate, 1: every "
        "carrier has the label).",
    )
    min_share: float = param(
        0.1,
        minimum=0,
        maximum=1,
        help="A likely trigger's score (gain x excess purity) must be at least this share of "
        "the best score of any candidate.",
    )
    target_label: int = param(
        0,
        minimum=0,
        maximum=1,
        help="The label a poisoning gives its samples (0: vulnerable code passed as safe).",
    )
    min_support: int = param(3, minimum=2, help="Functions a candidate must occur in.")
    max_statement_tokens: int = param(
        40, minimum=2, help="Longest statement (tokens) scanned as one unit (dead code)."
    )
    substitutes: int = param(3, minimum=0, cli=False)
    min_evidence: float | None = param(None, minimum=0, kind=float, cli=False)
    rules: tuple[str, ...] = _rules()
    force: bool = _force()
    data_options: DataConfig = _data_options()

    def __post_init__(self) -> None:
        check_params(self)


def _like(owner: type, name: str) -> Any:
    """A field declared as ``owner``'s field ``name`` (same default, spec and help)."""
    import dataclasses

    found = {f.name: f for f in dataclasses.fields(owner)}[name]
    return dataclasses.field(default=found.default, metadata=found.metadata)


@dataclass(frozen=True)
class BackdoorCalibrateConfig:
    """``codeaudit backdoor-calibrate``: clean and poisoned shadow models of MODEL's recipe,
    scanned like MODEL will be, and a classifier on their scans (see
    :mod:`codeaudit.backdoor.calibration`)."""

    model: str = _model()
    data: str = param(
        required=True,
        metavar="TRUSTED.jsonl",
        help="Trusted labelled functions (both labels): the shadows train on part of them and "
        "are scanned with the rest.",
    )
    output: str = param(
        flags=("-o", "--output"),
        required=True,
        metavar="CAL.json",
        help="The calibration file (JSON) for codeaudit backdoor --calibration.",
    )
    shadows: int = param(
        8,
        minimum=2,
        maximum=500,
        help="Shadow models of each kind: N clean and N poisoned.",
    )
    scan_share: float = param(
        0.3,
        minimum=0,
        maximum=1,
        min_open=True,
        max_open=True,
        help="Share of --data (by pair, else by function) the shadows are scanned with; they "
        "train on the rest.",
    )
    trigger_types: tuple[str, ...] = param(
        ("identifier", "postfix", "deadcode", "grammar"),
        comma=True,
        choices=("identifier", "postfix", "deadcode", "grammar"),
        kind=str,
        help="Trigger types the poisoned shadows draw from (as codeaudit poison --trigger-type).",
    )
    min_rate: float = param(
        0.02, minimum=0, maximum=1, min_open=True, help="Lowest poisoning rate drawn."
    )
    max_rate: float = param(
        0.10, minimum=0, maximum=1, min_open=True, help="Highest poisoning rate drawn."
    )
    max_fpr: float = param(
        0.05,
        minimum=0,
        maximum=1,
        max_open=True,
        help="Operating point: the highest false-positive rate on held-out clean shadows.",
    )
    target_label: int = param(
        0, minimum=0, maximum=1, help="The label the poisoned shadows' backdoors force."
    )
    victim_samples: int = _like(BackdoorConfig, "victim_samples")
    heldout: int = _like(BackdoorConfig, "heldout")
    steps: int = _like(BackdoorConfig, "steps")
    topk: int = _like(BackdoorConfig, "topk")
    candidates: int = _like(BackdoorConfig, "candidates")
    trigger_len: int = _like(BackdoorConfig, "trigger_len")
    beta: float = _like(BackdoorConfig, "beta")
    threshold: float | None = _like(BackdoorConfig, "threshold")
    keep_shortcuts: bool = _like(BackdoorConfig, "keep_shortcuts")
    patience: int = _like(BackdoorConfig, "patience")
    references: int = _like(BackdoorConfig, "references")
    reference_weight: float = _like(BackdoorConfig, "reference_weight")
    reference_ratio: float = _like(BackdoorConfig, "reference_ratio")
    seed: int = _seed()
    device: str = _device()
    threads: int | None = _threads()
    executor: str = _executor()
    workers: int = _workers()
    ray_address: str | None = _ray_address()
    cpus_per_model: float = _cpus_per_model()
    gpus_per_model: float = _gpus_per_model()
    model_options: LoadOptions = _model_options()
    rules: tuple[str, ...] = _rules()
    force: bool = _force()
    data_options: DataConfig = _data_options()

    def __post_init__(self) -> None:
        check_params(self)
        check_executor(self)
        if self.min_rate > self.max_rate:
            raise ParameterError(
                "min_rate", f"{self.min_rate:g} is above --max-rate {self.max_rate:g}", type(self)
            )
        if not self.trigger_types:
            raise ParameterError("trigger_types", "give at least one trigger type", type(self))
