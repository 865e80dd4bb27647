"""The library entry points behind each command. They return result objects and never print.

``train`` and ``predict`` are what the CLI calls; they are also the Python API::

    from codeaudit import api
    from codeaudit.config import TrainConfig
    model, result = api.train(TrainConfig(data="train.jsonl", output="model.pt"))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codeaudit.check import Progress
from codeaudit.config import PredictConfig, TrainConfig
from codeaudit.data.loader import load_data
from codeaudit.data.samples import Dataset
from codeaudit.errors import TrainingError, UsageError
from codeaudit.io import check_output_path
from codeaudit.report.model import Artifact, Header


def _skip_warning(dataset: Dataset) -> list[str]:
    if not dataset.skipped:
        return []
    first = dataset.skipped[0]
    return [
        f"{dataset.path}: skipped {len(dataset.skipped)} invalid record(s) "
        f"(first at line {first.line}: {first.reason})"
    ]


def train(
    config: TrainConfig,
    *,
    progress: Callable[[Any], None] | None = None,
    write: bool = True,
) -> tuple[Any, Any]:
    """Train a model as configured and (with ``write``) save it to ``config.output``.

    Returns ``(model, TrainResult)``.
    """
    from codeaudit.data.split import group_split
    from codeaudit.models.checkpoint import save_checkpoint
    from codeaudit.models.device import resolve_device
    from codeaudit.models.registry import Arch
    from codeaudit.seed import seeded
    from codeaudit.train.result import TrainResult
    from codeaudit.train.trainer import (
        build_model,
        conflicting_identical,
        evaluate,
        fit,
        lex_dataset,
    )

    started = time.perf_counter()
    try:
        Arch(config.arch)
    except ValueError:
        raise UsageError(f"unknown architecture {config.arch!r}") from None
    if write:
        check_output_path(config.output, force=config.force, what="model")
    device = resolve_device(config.device)
    default_lang = config.data_options.lang or "c"
    data = load_data(config.data, config.data_options, require_labels=True)
    warnings = _skip_warning(data)
    if config.val:
        val_data: Dataset | None = load_data(config.val, config.data_options, require_labels=True)
        warnings += _skip_warning(val_data)
        train_data, val_source = data, "file"
    elif config.val_split > 0:
        kept, held = group_split(data, config.val_split, config.seed)
        if not kept or not held:
            raise TrainingError(
                f"{config.data}: too few samples ({len(data)}) to hold out a validation split; "
                "pass --val FILE or --val-split 0"
            )
        train_data, val_data, val_source = data.subset(kept), data.subset(held), "split"
    else:
        train_data, val_data, val_source = data, None, "none"
    counts = train_data.class_counts()
    if min(counts.values()) == 0:
        only = 1 if counts[1] else 0
        raise TrainingError(
            f"{config.data}: the training data hold only label {only}; a VP model needs both"
        )
    if len(train_data) < 2:
        raise TrainingError(f"{config.data}: need at least 2 training samples")

    with seeded(config.seed, deterministic=str(device).startswith("cuda")):
        streams = lex_dataset(train_data, default_lang)
        model = build_model(config, streams, default_lang)
        model.to(device)
        max_len = model.max_len
        train_enc = [model.tokenizer.encode_tokens(s, max_len) for s in streams]
        train_y = train_data.labels()
        val_enc = model.encode(val_data.samples) if val_data is not None else None
        val_y = val_data.labels() if val_data is not None else None
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

        history, kept_epoch = fit(
            model, train_enc, train_y, val_enc, val_y, config, progress=progress
        )
    batch = int(config.resolved("batch_size")) * 2
    train_metrics = evaluate(model, train_enc, train_y, batch)
    val_metrics = evaluate(model, val_enc, val_y, batch) if val_enc is not None else None
    if val_metrics is not None and val_metrics.unk_rate > 2 * train_metrics.unk_rate + 0.01:
        warnings.append(
            f"unknown-token rate is {val_metrics.unk_rate:.1%} on validation vs "
            f"{train_metrics.unk_rate:.1%} on training data: the vocabulary marks "
            "non-members, a membership-inference channel"
        )

    hyper = {
        "epochs": int(config.resolved("epochs")),
        "lr": float(config.resolved("lr")),
        "batch_size": int(config.resolved("batch_size")),
        "max_len": max_len,
        "weight_decay": config.weight_decay,
        "patience": config.patience,
        "min_freq": config.min_freq,
        "device": device,
        **model.config,
    }
    if config.pretrained:
        hyper["pretrained"] = config.pretrained
    data_artifact = Artifact("data", config.data, data.sha256)
    metadata = {
        "codeaudit_version": _version(),
        "seed": config.seed,
        "data_sha256": data.sha256,
        "data_file": Path(config.data).name,
        "val_sha256": val_data.sha256 if (val_data is not None and config.val) else None,
        "n_train": len(train_data),
        "n_val": len(val_data) if val_data is not None else 0,
        "train_ids_sha256": _ids_digest(train_data),
        "hyperparameters": {k: v for k, v in hyper.items() if k != "device"},
        "kept_epoch": kept_epoch,
        "train_accuracy": train_metrics.accuracy,
        "val_accuracy": val_metrics.accuracy if val_metrics else None,
        "val_f1": val_metrics.f1 if val_metrics else None,
    }
    artifacts = [data_artifact]
    if config.val:
        artifacts.append(Artifact("val", config.val, val_data.sha256 if val_data else None))
    if write:
        from codeaudit.io import sha256_file

        out = save_checkpoint(model, config.output, metadata=metadata, force=config.force)
        artifacts.insert(0, Artifact("model", str(out), sha256_file(out)))
    result = TrainResult(
        header=Header(command="train", seed=config.seed, artifacts=tuple(artifacts)),
        arch=config.arch,
        hyperparameters=hyper,
        parameters=model.num_parameters(),
        vocab_size=model.tokenizer.vocab_size,
        n_train=len(train_data),
        n_val=len(val_data) if val_data is not None else 0,
        val_source=val_source,
        train_metrics=train_metrics,
        val_metrics=val_metrics,
        history=tuple(history),
        kept_epoch=kept_epoch,
        conflicting_identical=conflicts,
        skipped=len(data.skipped) + (len(val_data.skipped) if val_data and config.val else 0),
        seconds=round(time.perf_counter() - started, 3),
        warnings=tuple(warnings),
    )
    return model, result


def _version() -> str:
    from codeaudit import __version__

    return __version__


def _ids_digest(dataset: Dataset) -> str:
    import hashlib

    digest = hashlib.sha256()
    for sample_id in sorted(dataset.ids):
        digest.update(sample_id.encode("utf-8") + b"\n")
    return digest.hexdigest()


def predict(config: PredictConfig, *, progress: Progress | None = None) -> Any:
    """Predictions of a model on a data file; returns a PredictResult."""
    from codeaudit.predict.check import PredictCheck
    from codeaudit.runner import run

    if config.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    return run(PredictCheck(), config, progress=progress)[0]


def membership(config: Any, *, progress: Progress | None = None) -> Any:
    """A membership-inference audit (a :class:`~codeaudit.config.MembershipConfig`); writes the
    ROC plot when asked and returns the MembershipResult."""
    from codeaudit.membership.check import MembershipCheck
    from codeaudit.runner import run, write_outputs

    result, outcome = run(MembershipCheck(), config, progress=progress)
    write_outputs(outcome.outputs, force=config.force)
    return result


def backdoor(config: Any, *, progress: Progress | None = None) -> tuple[Any, Any]:
    """Scan a model for a backdoor (a :class:`~codeaudit.config.BackdoorConfig`); with
    ``unlearn`` repair it and write the repaired checkpoint. Returns ``(model, BackdoorResult)``
    (the model repaired in place when unlearning ran)."""
    from codeaudit.backdoor.check import BackdoorCheck
    from codeaudit.runner import run, write_outputs

    result, outcome = run(BackdoorCheck(), config, progress=progress)
    write_outputs(outcome.outputs, force=config.force)
    return outcome.model, result


def poison(config: Any, *, progress: Progress | None = None) -> Any:
    """Write a poisoned copy of a data set and its manifest (a
    :class:`~codeaudit.config.PoisonConfig`), both or neither; returns the PoisonResult."""
    from codeaudit.backdoor.poison import PoisonCheck
    from codeaudit.runner import run, write_outputs

    result, outcome = run(PoisonCheck(), config, progress=progress)
    write_outputs(outcome.outputs, force=config.force)
    return result


def _device(name: str) -> str:
    from codeaudit.models.device import resolve_device

    return resolve_device(name)


def harden(config: Any, *, progress: Progress | None = None) -> Any:
    """Harden a model with NMID as configured (a :class:`~codeaudit.config.HardenConfig`) and
    write it; returns ``(HardenedModel, HardenResult)``. Load a hardened model later with
    ``codeaudit.defense.load_hardened(path)`` (or ``codeaudit.models.load_model``)."""
    from codeaudit.defense.check import HardenCheck
    from codeaudit.runner import run, write_outputs

    result, outcome = run(HardenCheck(), config, progress=progress)
    write_outputs(outcome.outputs, force=config.force)
    return outcome.model, result
