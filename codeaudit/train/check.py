"""``codeaudit train`` as a check: a model trained on the loaded data, its metrics, and its
checkpoint as bytes (with ``write``)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeaudit.check import Check, Context, DataInput, Inputs, Outcome, Output, OutputPath
from codeaudit.data.samples import Dataset
from codeaudit.errors import TrainingError, UsageError
from codeaudit.report.model import Header


def skip_warnings(dataset: Dataset) -> list[str]:
    if not dataset.skipped:
        return []
    first = dataset.skipped[0]
    return [
        f"{dataset.path}: skipped {len(dataset.skipped)} invalid record(s) "
        f"(first at line {first.line}: {first.reason})"
    ]


@dataclass(frozen=True)
class Split:
    """The training data, the validation data (None: none) and where the latter came from."""

    train: Dataset
    val: Dataset | None
    source: str  # "file" | "split" | "none"


def split(inputs: Inputs, config: Any) -> Split:
    """--val FILE, else a --val-split held out by pair, else no validation."""
    from codeaudit.data.split import group_split

    data = inputs.dataset("data")
    if config.val:
        found = Split(data, inputs.dataset("val"), "file")
    elif config.val_split > 0:
        kept, held = group_split(data, config.val_split, config.seed)
        if not kept or not held:
            raise TrainingError(
                f"{config.data}: too few samples ({len(data)}) to hold out a validation split; "
                "pass --val FILE or --val-split 0"
            )
        found = Split(data.subset(kept), data.subset(held), "split")
    else:
        found = Split(data, None, "none")
    counts = found.train.class_counts()
    if min(counts.values()) == 0:
        only = 1 if counts[1] else 0
        raise TrainingError(
            f"{config.data}: the training data hold only label {only}; a VP model needs both"
        )
    if len(found.train) < 2:
        raise TrainingError(f"{config.data}: need at least 2 training samples")
    return found


def ids_digest(dataset: Dataset) -> str:
    digest = hashlib.sha256()
    for sample_id in sorted(dataset.ids):
        digest.update(sample_id.encode("utf-8") + b"\n")
    return digest.hexdigest()


class TrainCheck(Check):
    """Train as configured; ``write=False`` makes the model without its checkpoint file."""

    command = "train"
    needs_model = False

    def __init__(self, *, write: bool = True) -> None:
        self.write = write

    def validate(self, config: Any) -> None:
        from codeaudit.models.arch import Arch

        try:
            Arch(config.arch)
        except ValueError:
            raise UsageError(f"unknown architecture {config.arch!r}") from None

    def data_inputs(self, config: Any) -> list[DataInput]:
        found = [DataInput("data", config.data)]
        if config.val:
            found.append(DataInput("val", config.val))
        if config.vocab:
            found.append(DataInput("vocab", config.vocab, require_labels=False))
        return found

    def output_paths(self, config: Any) -> list[OutputPath]:
        return [OutputPath("model", config.output, "model")] if self.write else []

    def target(self, config: Any) -> str:
        return str(config.output)

    def run(self, inputs: Inputs, config: Any, context: Context) -> Outcome:
        from codeaudit.metrics import quality_warnings
        from codeaudit.models.checkpoint import checkpoint_bytes
        from codeaudit.train.trainer import evaluate

        started = time.perf_counter()
        sets = split(inputs, config)
        warnings = skip_warnings(inputs.dataset("data"))
        if config.val:
            warnings += skip_warnings(inputs.dataset("val"))
        if config.vocab:
            warnings += skip_warnings(inputs.dataset("vocab"))
        with context.stage("train"):
            model, trained = fit_model(
                sets, config, context, warnings, vocab=inputs.data.get("vocab")
            )
        batch = int(config.resolved("batch_size")) * 2
        train_metrics = evaluate(model, trained.train_enc, sets.train.labels(), batch)
        val_metrics = None
        if trained.val_enc is not None and sets.val is not None:
            val_metrics = evaluate(model, trained.val_enc, sets.val.labels(), batch)
        if val_metrics is not None:
            warnings += quality_warnings(
                "validation",
                n=val_metrics.n,
                vulnerable=val_metrics.vulnerable,
                predicted_vulnerable=val_metrics.predicted_vulnerable,
                accuracy=val_metrics.accuracy,
                roc_auc=val_metrics.roc_auc,
            )
        if val_metrics is not None and val_metrics.unk_rate > 2 * train_metrics.unk_rate + 0.01:
            warnings.append(
                f"unknown-token rate is {val_metrics.unk_rate:.1%} on validation vs "
                f"{train_metrics.unk_rate:.1%} on training data: the vocabulary marks "
                "non-members, a membership-inference channel"
            )
        hyper = hyperparameters(config, model, context.device)
        outputs: tuple[Output, ...] = ()
        if self.write:
            metadata = metadata_of(inputs, sets, config, hyper, trained, train_metrics, val_metrics)
            outputs = (Output("model", config.output, checkpoint_bytes(model, metadata)),)
        data, val = inputs.dataset("data"), inputs.data.get("val")
        result = self._result(config, model, sets, hyper, trained, train_metrics, val_metrics)
        result = _replace(
            result,
            skipped=len(data.skipped) + (len(val.skipped) if val is not None else 0),
            seconds=round(context.timings.get("load", 0.0) + time.perf_counter() - started, 3),
            warnings=tuple(warnings),
        )
        return Outcome(result, outputs, model=model)

    def _result(
        self,
        config: Any,
        model: Any,
        sets: Split,
        hyper: dict[str, Any],
        trained: Any,
        train_metrics: Any,
        val_metrics: Any,
    ) -> Any:
        from codeaudit.models.privacy import privacy_of
        from codeaudit.train.result import TrainResult

        return TrainResult(
            header=Header(command=self.command),
            arch=config.arch,
            hyperparameters=hyper,
            parameters=model.num_parameters(),
            vocab_size=model.tokenizer.vocab_size,
            n_train=len(sets.train),
            n_val=len(sets.val) if sets.val is not None else 0,
            val_source=sets.source,
            train_metrics=train_metrics,
            val_metrics=val_metrics,
            history=tuple(trained.history),
            kept_epoch=trained.kept_epoch,
            conflicting_identical=trained.conflicts,
            skipped=0,
            seconds=0.0,
            privacy=privacy_of({"privacy": trained.privacy}, str(config.output)),
        )


@dataclass(frozen=True)
class Trained:
    train_enc: list[Any]
    val_enc: list[Any] | None
    history: list[Any]
    kept_epoch: int
    conflicts: int
    privacy: dict[str, Any] | None = None  # --dp: the guarantee (codeaudit.train.private)
    init: dict[str, Any] | None = None  # --init: the checkpoint it started from


def fit_model(
    sets: Split, config: Any, context: Context, warnings: list[str], *, vocab: Any = None
) -> tuple[Any, Trained]:
    """Build the model on the training code (or its vocabulary on ``vocab``, --vocab) and fit
    it, seeded (and giving the process's random state back)."""
    from codeaudit.seed import seeded
    from codeaudit.train.trainer import build_model, conflicting_identical, fit, lex_dataset

    default_lang = config.data_options.lang or "c"
    device = context.device
    start = load_init(config, sets.train, warnings) if config.init else None
    with seeded(config.seed, deterministic=str(device).startswith("cuda")):
        streams = lex_dataset(sets.train, default_lang)
        if start is not None:
            model = start.model
        else:
            vocab_streams = lex_dataset(vocab, default_lang) if vocab is not None else streams
            model = build_model(config, vocab_streams, default_lang)
        model.to(device)
        max_len = model.max_len
        train_enc = [model.tokenizer.encode_tokens(s, max_len) for s in streams]
        train_y = sets.train.labels()
        val_enc = model.encode(sets.val.samples) if sets.val is not None else None
        val_y = sets.val.labels() if sets.val is not None else None
        conflicts = conflicting_identical(train_enc, train_y)
        if conflicts:
            warnings.append(
                f"{conflicts} training samples are token-identical to one with the other label "
                f"after truncation at {max_len} tokens; no model can separate them "
                "(raise --max-len)"
            )
        truncated = sum(e.truncated for e in train_enc)
        if truncated:
            warnings.append(
                f"{truncated} of {len(train_enc)} training samples truncated at {max_len}"
            )
        fitted = fit(
            model, train_enc, train_y, val_enc, val_y, config, progress=epoch_reporter(context)
        )
    if fitted.privacy is not None:
        fitted.privacy["covers"] = (
            start.covers if start is not None else vocabulary_covered(sets.train, vocab, warnings)
        )
    return model, Trained(
        train_enc,
        val_enc,
        fitted.history,
        fitted.kept_epoch,
        conflicts,
        fitted.privacy,
        start.record if start is not None else None,
    )


@dataclass(frozen=True)
class Start:
    """The model ``--init`` starts from, and what a --dp guarantee then covers."""

    model: Any
    record: dict[str, Any]  # the checkpoint's ``init`` metadata
    covers: str


def load_init(config: Any, train: Dataset, warnings: list[str]) -> Start:
    """The ``--init`` checkpoint as the model to train further. Its architecture must be the one
    asked for; a hardened model is refused (its defence is not trainable). A --dp guarantee
    protects DATA's functions given the starting model; it covers the vocabulary (and the
    starting weights) only when the starting model's recorded training functions include none
    of DATA's; otherwise, or when it recorded none, a warning says so."""
    from codeaudit.data.split_record import SplitRecord, fingerprint
    from codeaudit.models.checkpoint import load_model

    loaded = load_model(config.init, max_len=config.max_len)
    if loaded.source != "codeaudit":
        raise UsageError(f"--init {config.init}: not a codeaudit checkpoint")
    if loaded.defense is not None:
        raise UsageError(
            f"--init {config.init}: a hardened model; start from the model it was made from"
        )
    model = loaded.model
    if model.arch != config.arch:
        raise UsageError(
            f"--init {config.init} is a {model.arch} model: train it with --arch {model.arch}"
        )
    record = SplitRecord.from_metadata(loaded.metadata)
    ours = {fingerprint(s.code) for s in train.samples}
    if record is None or record.train is None:
        shared = None
        warnings.append(
            f"--init {config.init} does not record which functions it was trained on: a --dp "
            "guarantee covers the weights trained here, not what that model learnt before"
        )
    else:
        shared = len(ours & (record.train | record.val))
        if shared:
            warnings.append(
                f"{shared} of the {len(train)} training functions were already seen by --init "
                f"{config.init}: a --dp guarantee does not cover what it learnt from them"
            )
    return Start(
        model=model,
        record={
            "file": Path(config.init).name,
            "sha256": loaded.sha256,
            "data_sha256": loaded.metadata.get("data_sha256"),
            "shared_functions": shared,
        },
        covers="weights+vocabulary" if shared == 0 else "weights",
    )


def vocabulary_covered(train: Dataset, vocab: Dataset | None, warnings: list[str]) -> str:
    """What a --dp guarantee covers: the weights, and the vocabulary too when it was built on
    --vocab functions none of which is a training function (by code fingerprint)."""
    from codeaudit.data.split_record import fingerprint

    if vocab is None:
        return "weights"
    trained_on = {fingerprint(s.code) for s in train.samples}
    shared = sum(fingerprint(s.code) in trained_on for s in vocab.samples)
    if shared:
        warnings.append(
            f"{shared} of the {len(vocab)} --vocab functions are training functions: the "
            "vocabulary depends on the training data, and the DP guarantee covers the weights "
            "only"
        )
        return "weights"
    return "weights+vocabulary"


def epoch_reporter(context: Context) -> Any:
    """The trainer's per-step events as the runner's (stage, done, total) progress."""

    def report(event: Any) -> None:
        total = event.epochs * event.steps_per_epoch
        done = (event.epoch - 1) * event.steps_per_epoch + event.step
        what = f"loss {event.loss:.4f}" if event.stage == "train" else "evaluating"
        context.report(f"epoch {event.epoch}/{event.epochs} ({what})", done, total)

    return report if context.progress is not None else None


def hyperparameters(config: Any, model: Any, device: str) -> dict[str, Any]:
    hyper = {
        "epochs": int(config.resolved("epochs")),
        "lr": float(config.resolved("lr")),
        "batch_size": int(config.resolved("batch_size")),
        "max_len": model.max_len,
        "weight_decay": config.weight_decay,
        "patience": config.patience,
        "min_freq": config.min_freq,
        "device": device,
        **model.config,
    }
    if config.pretrained:
        hyper["pretrained"] = config.pretrained
    if config.preset:
        hyper["preset"] = config.preset
    if config.init:
        hyper["init"] = Path(config.init).name
    if config.freeze_embeddings:
        hyper["freeze_embeddings"] = True
    return hyper


def metadata_of(
    inputs: Inputs,
    sets: Split,
    config: Any,
    hyper: dict[str, Any],
    trained: Trained,
    train_metrics: Any,
    val_metrics: Any,
) -> dict[str, Any]:
    """What the checkpoint records about how it was made (its training data's hashes among it)."""
    from codeaudit import __version__
    from codeaudit.data.split_record import split_record

    data = inputs.dataset("data")
    val = inputs.data.get("val")
    return {
        "codeaudit_version": __version__,
        "seed": config.seed,
        "data_sha256": data.sha256,
        "data_file": Path(config.data).name,
        "val_sha256": val.sha256 if val is not None else None,
        "n_train": len(sets.train),
        "n_val": len(sets.val) if sets.val is not None else 0,
        "train_ids_sha256": ids_digest(sets.train),
        "val_source": sets.source,
        "split": split_record(sets.train, sets.val),
        "hyperparameters": {k: v for k, v in hyper.items() if k != "device"},
        "kept_epoch": trained.kept_epoch,
        "train_accuracy": train_metrics.accuracy,
        "val_accuracy": val_metrics.accuracy if val_metrics else None,
        "val_f1": val_metrics.f1 if val_metrics else None,
        **({"privacy": trained.privacy} if trained.privacy is not None else {}),
        **(vocab_record(inputs, config) if config.vocab else {}),
        **({"init": trained.init} if trained.init is not None else {}),
    }


def vocab_record(inputs: Inputs, config: Any) -> dict[str, Any]:
    """Where a --vocab vocabulary came from."""
    vocab = inputs.dataset("vocab")
    return {"vocab_file": Path(config.vocab).name, "vocab_sha256": vocab.sha256}


def _replace(result: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(result, **changes)
