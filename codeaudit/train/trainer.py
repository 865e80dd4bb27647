"""Training VP models: tokenizer building, the optimisation loop, evaluation.

The same seed and data give the same weights on CPU: all randomness (initialisation, dropout,
shuffling) comes from seeded generators, batches are formed deterministically, and torch runs
with deterministic algorithms.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from codeaudit.config import TRANSFORMER_HEADS, TrainConfig
from codeaudit.data.samples import LABEL_NAMES, Dataset
from codeaudit.errors import TrainingError, UsageError
from codeaudit.lang.lexer import CodeToken, lex
from codeaudit.metrics import classification_metrics
from codeaudit.models.base import VPModel
from codeaudit.models.inference import infer, softmax
from codeaudit.models.input_format import TOKENS
from codeaudit.models.registry import Arch, adapter_class
from codeaudit.models.tokenizer import Encoding, HFTokenizer, VocabTokenizer, joined_text
from codeaudit.models.transformer import MAX_POSITIONS, TransformerModel
from codeaudit.train.result import EpochRecord, SplitMetrics


@dataclass(frozen=True)
class TrainProgress:
    """Reported after every optimisation step and at the end of every epoch."""

    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    loss: float
    stage: str = "train"  # "train" | "eval"


ProgressFn = Callable[[TrainProgress], None]


# Code tokens lexed per training function: the vocabulary counts every token of a function (as
# it always has), up to this many; a longer one (a generated table, a hostile 50 MB function)
# costs no more than this. The model itself reads at most max_len ids.
VOCAB_TOKEN_CAP = 1 << 16


def lex_dataset(
    dataset: Dataset, default_lang: str, max_tokens: int | None = VOCAB_TOKEN_CAP
) -> list[tuple[CodeToken, ...]]:
    """Code tokens of every sample, at most ``max_tokens`` of each."""
    return [
        lex(s.code, s.lang or default_lang, max_tokens=max_tokens).tokens for s in dataset.samples
    ]


def build_model(
    config: TrainConfig,
    streams: Sequence[Sequence[CodeToken]],
    default_lang: str,
    tokenizer: Any = None,
) -> VPModel:
    """A fresh model with a tokenizer built on the training code (or a pretrained directory),
    or with ``tokenizer`` when given (a backdoor scan's reference models read the suspect's
    vocabulary, so trigger ids mean the same to every model)."""
    max_len = int(config.resolved("max_len"))
    arch = Arch(config.arch)
    if arch is Arch.TRANSFORMER:
        if config.pretrained:
            return TransformerModel.from_directory(  # codeaudit trains on its code tokens
                config.pretrained,
                max_len=max_len,
                default_lang=default_lang,
                require_head=False,
                input_format=TOKENS,
            )
        if max_len + 2 > MAX_POSITIONS:
            raise UsageError(f"--max-len {max_len}: the transformer takes at most 512 tokens")
        if tokenizer is None:
            tokenizer = HFTokenizer.train_bpe(
                (joined_text(s)[0] for s in streams),
                vocab_size=min(config.vocab_size, 8000),
                min_freq=config.min_freq,
            )
        size = {
            "hidden_size": int(config.resolved("embed_dim")),
            "intermediate_size": int(config.resolved("hidden_dim")),
            "num_hidden_layers": int(config.resolved("num_layers")),
            "num_attention_heads": TRANSFORMER_HEADS,
            "hidden_dropout_prob": config.dropout,
            "attention_probs_dropout_prob": config.dropout,
        }
        return TransformerModel.build(
            tokenizer,
            max_len=max_len,
            default_lang=default_lang,
            labels=LABEL_NAMES,
            overrides={**size, **config.transformer},
        )
    if config.pretrained:
        raise UsageError("--pretrained needs --arch transformer")
    vocab = tokenizer or VocabTokenizer.build(
        streams, min_freq=config.min_freq, max_size=config.vocab_size
    )
    hyper = {
        "embed_dim": int(config.resolved("embed_dim")),
        "hidden_dim": int(config.resolved("hidden_dim")),
        "num_layers": int(config.resolved("num_layers")),
        "dropout": config.dropout,
    }
    return adapter_class(arch.value).from_parts(
        hyper, vocab, None, max_len=max_len, default_lang=default_lang, labels=LABEL_NAMES
    )


def training_batches(lengths: np.ndarray, batch_size: int, generator: torch.Generator) -> list:
    """Shuffled batches of similar length: shuffle, sort within windows of 50 batches, shuffle
    the batches. Deterministic given the generator's state."""
    n = len(lengths)
    perm = torch.randperm(n, generator=generator).numpy()
    window = batch_size * 50
    batches = []
    for start in range(0, n, window):
        chunk = perm[start : start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    order = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in order]


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-sample cross-entropy of logits against labels (numerically stable)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return log_norm - shifted[np.arange(len(labels)), labels]


def evaluate(
    model: VPModel, encodings: Sequence[Encoding], labels: np.ndarray, batch_size: int
) -> SplitMetrics:
    out = infer(model, encodings, batch_size=batch_size)
    probs = softmax(out.logits)
    metrics = classification_metrics(labels, probs.argmax(axis=1), probs[:, 1])
    total = sum(len(e.ids) for e in encodings)
    return SplitMetrics(
        n=len(encodings),
        accuracy=float(metrics["accuracy"]),
        precision=float(metrics["precision"]),
        recall=float(metrics["recall"]),
        f1=float(metrics["f1"]),
        roc_auc=metrics["roc_auc"],  # type: ignore[arg-type]
        loss=float(cross_entropy(out.logits, labels).mean()),
        unk_rate=sum(e.n_unknown for e in encodings) / total if total else 0.0,
        truncated=sum(e.truncated for e in encodings),
        vulnerable=int(metrics["tp"]) + int(metrics["fn"]),  # type: ignore[call-overload]
        predicted_vulnerable=int(metrics["tp"]) + int(metrics["fp"]),  # type: ignore[call-overload]
    )


def conflicting_identical(encodings: Sequence[Encoding], labels: np.ndarray) -> int:
    """Samples whose ids equal another sample's while their labels differ (after truncation)."""
    seen: dict[tuple[int, ...], set[int]] = {}
    for enc, label in zip(encodings, labels, strict=True):
        seen.setdefault(enc.ids, set()).add(int(label))
    return sum(1 for enc in encodings if len(seen[enc.ids]) > 1)


def _schedule(total_steps: int, warmup_fraction: float = 0.05) -> Callable[[int], float]:
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


@dataclass
class Fitted:
    """What :func:`fit` did: the per-epoch history, the epoch whose weights are kept, and with
    --dp the guarantee (:meth:`codeaudit.train.private.PrivateTraining.finish`)."""

    history: list[EpochRecord]
    kept_epoch: int
    privacy: dict[str, Any] | None = None


def fit(
    model: VPModel,
    train_enc: Sequence[Encoding],
    train_labels: np.ndarray,
    val_enc: Sequence[Encoding] | None,
    val_labels: np.ndarray | None,
    config: TrainConfig,
    *,
    progress: ProgressFn | None = None,
) -> Fitted:
    """Train in place (with ``config.dp``: DP-SGD, :mod:`codeaudit.train.private`)."""
    epochs = int(config.resolved("epochs"))
    batch_size = int(config.resolved("batch_size"))
    lr = float(config.resolved("lr"))
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise UsageError("epochs and batch size must be at least 1, learning rate positive")
    with frozen_embeddings(model, getattr(config, "freeze_embeddings", False)):
        return _fit(
            model, train_enc, train_labels, val_enc, val_labels, config, progress,
            epochs, batch_size, lr,
        )  # fmt: skip


@contextlib.contextmanager
def frozen_embeddings(model: VPModel, frozen: bool) -> Iterator[None]:
    """With ``frozen``, the input embedding table takes no gradient inside the block (set before
    a DP copy of the module is made: the copy keeps the flag, so the table takes no noise);
    trainable again after it."""
    if not frozen:
        yield
        return
    weight = model.input_embeddings().weight
    weight.requires_grad_(False)
    try:
        yield
    finally:
        weight.requires_grad_(True)


def _fit(
    model: VPModel,
    train_enc: Sequence[Encoding],
    train_labels: np.ndarray,
    val_enc: Sequence[Encoding] | None,
    val_labels: np.ndarray | None,
    config: TrainConfig,
    progress: ProgressFn | None,
    epochs: int,
    batch_size: int,
    lr: float,
) -> Fitted:
    """:func:`fit` once its settings are checked."""
    steps_per_epoch = math.ceil(len(train_enc) / batch_size)
    device = model.device
    generator = torch.Generator().manual_seed(config.seed)
    lengths = np.array([len(e.ids) for e in train_enc], dtype=np.int64)
    private = None
    if getattr(config, "dp", False):
        from codeaudit.train.private import PrivateTraining, plan

        dp_plan = plan(config, len(train_enc), batch_size, epochs)
        private = PrivateTraining(model, dp_plan, len(train_enc), config.seed)
        steps_per_epoch = dp_plan.steps_per_epoch
    trainable = [p for p in model.module.parameters() if p.requires_grad]
    optimizer: Any = torch.optim.AdamW(trainable, lr=lr, weight_decay=config.weight_decay)
    if private is not None:
        optimizer = private.optimizer(optimizer)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(epochs * steps_per_epoch))
    loss_fn = nn.CrossEntropyLoss()
    labels_t = torch.as_tensor(train_labels, dtype=torch.long)
    history: list[EpochRecord] = []
    best_loss = math.inf
    best_epoch = 0
    best_state: dict[str, torch.Tensor] | None = None
    early_stop = config.patience > 0 and val_enc is not None and val_labels is not None
    try:
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            model.train()
            total, count = 0.0, 0
            batches = (
                private.batches()
                if private is not None
                else training_batches(lengths, batch_size, generator)
            )
            for step, index in enumerate(batches, start=1):
                optimizer.zero_grad(set_to_none=True)
                if private is not None and len(index) == 0:
                    private.empty_step()
                    private.stepped()
                    scheduler.step()
                    continue
                batch = model.collate([train_enc[i] for i in index]).to(device)
                target = labels_t[index].to(device)
                with private.quiet() if private is not None else contextlib.nullcontext():
                    loss = loss_fn(model.forward(batch).logits, target)
                    if not torch.isfinite(loss):
                        raise TrainingError(
                            f"training diverged at epoch {epoch} (loss {loss.item()}); lower --lr"
                        )
                    loss.backward()
                if private is None:
                    nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                if private is not None:
                    private.stepped()
                scheduler.step()
                total += loss.item() * len(index)
                count += len(index)
                if progress is not None:
                    progress(
                        TrainProgress(epoch, epochs, step, steps_per_epoch, total / max(1, count))
                    )
            model.eval()
            val = None
            if val_enc is not None and val_labels is not None:
                if progress is not None:
                    progress(
                        TrainProgress(
                            epoch,
                            epochs,
                            steps_per_epoch,
                            steps_per_epoch,
                            total / max(1, count),
                            stage="eval",
                        )
                    )
                val = evaluate(model, val_enc, val_labels, batch_size * 2)
            history.append(
                EpochRecord(
                    epoch=epoch,
                    train_loss=total / max(1, count),
                    val_loss=val.loss if val else None,
                    val_accuracy=val.accuracy if val else None,
                    val_f1=val.f1 if val else None,
                    seconds=time.perf_counter() - started,
                )
            )
            if early_stop and val is not None:
                if val.loss < best_loss - 1e-6:
                    best_loss, best_epoch = val.loss, epoch
                    best_state = (
                        private.state()
                        if private is not None
                        else copy.deepcopy(model.module.state_dict())
                    )
                elif epoch - best_epoch >= config.patience:
                    break
            else:
                best_epoch = epoch
    except BaseException:
        if private is not None:
            model.module = private.original  # never leave the per-sample copy in the model
        raise
    privacy = None
    if private is not None:
        privacy = private.finish(best_state if early_stop else None)
    elif early_stop and best_state is not None:
        model.module.load_state_dict(best_state)
    model.eval()
    return Fitted(history, best_epoch, privacy)


def train_on_dataset(
    train_data: Dataset,
    config: TrainConfig,
    *,
    default_lang: str = "c",
    device: str = "cpu",
    progress: ProgressFn | None = None,
    tokenizer: Any = None,
) -> tuple[VPModel, list[Encoding]]:
    """Build and train a model on in-memory data (no validation, nothing written): the machinery
    shadow and reference models share with ``codeaudit train``."""
    from codeaudit.seed import seeded

    counts = train_data.class_counts()
    if min(counts.values()) == 0:
        raise TrainingError("training data for a model must hold both labels")
    with seeded(config.seed, deterministic=str(device).startswith("cuda")):
        streams = lex_dataset(train_data, default_lang)
        model = build_model(config, streams, default_lang, tokenizer)
        model.to(device)
        encodings = [model.tokenizer.encode_tokens(s, model.max_len) for s in streams]
        fit(model, encodings, train_data.labels(), None, None, config, progress=progress)
        return model, encodings
