"""Stage 6: unlearning (EliBadCode's repair).

The inverted trigger is inserted (at each sample's own position) into ``share`` of the victim-
label samples of a class-balanced clean training set, which keep their true labels; the model is
then fine-tuned on that set: by default the classifier head only, 1 epoch, lr 5e-3, batch 32,
AdamW (eps 1e-8, no weight decay), a linear schedule with 10% warm-up, gradient clipping at 1.0
(the defaults of the public implementation). ``scope="full"`` trains every parameter (RNNs often
need it: the trigger's effect lives in the recurrent features, not only in the head).

Deterministic: the same model, data, trigger and seed give bit-identical weights on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from codeaudit.backdoor.positions import (
    DEFAULT_BATCH_TOKENS,
    Placed,
    batched_logits,
    context_ids,
    insert,
    rename,
    select_positions,
)
from codeaudit.data.samples import Sample
from codeaudit.errors import BackdoorError

SCOPES = ("head", "full")


@dataclass(frozen=True)
class UnlearnSet:
    rows: list[list[int]]
    labels: np.ndarray
    n_triggered: int


def build_unlearn_set(
    model: object,
    samples: Sequence[Sample],
    trigger: Sequence[int],
    victim: int,
    *,
    share: float,
    seed: int,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    full: Sequence[int] = (),
) -> UnlearnSet:
    """Class-balanced clean samples, ``share`` of the victim-label ones carrying the trigger
    (the anchored one, and GCG's full one when given), inserted at the sample's position or
    replacing the name there everywhere, in turn."""
    rng = np.random.default_rng([seed, 7])
    by_label = {0: [s for s in samples if s.label == 0], 1: [s for s in samples if s.label == 1]}
    if not by_label[0] or not by_label[1]:
        raise BackdoorError("unlearning needs clean samples of both labels")
    n = min(len(by_label[0]), len(by_label[1]))
    chosen: list[Sample] = []
    for label in (0, 1):
        pool = by_label[label]
        pick = np.sort(rng.permutation(len(pool))[:n])
        chosen += [pool[i] for i in pick]
    victims = [k for k, s in enumerate(chosen) if s.label == victim]
    n_trig = max(1, round(share * len(victims))) if share > 0 else 0
    triggered = set(rng.permutation(victims)[:n_trig].tolist()) if n_trig else set()
    room = max(len(trigger), len(full))
    placed = select_positions(
        model, [chosen[k] for k in sorted(triggered)], room=room, batch_tokens=batch_tokens
    )
    by_index = dict(zip(sorted(triggered), placed, strict=True))
    rows: list[list[int]] = []
    variants = [list(trigger)] + ([list(full)] if full and list(full) != list(trigger) else [])
    for k, sample in enumerate(chosen):
        if k in by_index:
            p: Placed = by_index[k]
            # half inserted at the position, half replacing the name everywhere (as an
            # identifier-renaming attack plants it): the repair must not hinge on one context
            variant = variants[len(rows) % len(variants)]
            planted = (
                rename(p, variant) if len(rows) % 2 else insert(p.context, p.position, variant)
            )
            rows.append(planted[: model.max_len])  # type: ignore[attr-defined]
        else:
            rows.append(list(context_ids(model, sample, room)[0]))
    labels = np.asarray([int(s.label) for s in chosen], dtype=np.int64)  # type: ignore[arg-type]
    return UnlearnSet(rows, labels, len(triggered))


def _schedule(total: int, warmup_fraction: float = 0.1) -> Callable[[int], float]:
    warmup = int(total * warmup_fraction)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def fine_tune(
    model: object,
    data: UnlearnSet,
    *,
    scope: str = "head",
    epochs: int = 1,
    lr: float = 5e-3,
    batch_size: int = 32,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> float:
    """Fine-tune in place; returns the mean training loss of the last epoch."""
    from codeaudit.models.base import Batch
    from codeaudit.seed import seeded
    from codeaudit.train.trainer import training_batches

    if scope not in SCOPES:
        raise BackdoorError(f"unlearning scope {scope!r}: use {' or '.join(SCOPES)}")
    with seeded(seed, deterministic=model.device.type == "cuda"):  # type: ignore[attr-defined]
        module: nn.Module = model.module  # type: ignore[attr-defined]
        params = list(model.head_parameters()) if scope == "head" else list(module.parameters())  # type: ignore[attr-defined]
        trainable = {id(p) for p in params}
        saved = {name: p.requires_grad for name, p in module.named_parameters()}
        for p in module.parameters():
            p.requires_grad_(id(p) in trainable)
        device = model.device  # type: ignore[attr-defined]
        pad = model.tokenizer.pad_id  # type: ignore[attr-defined]
        generator = torch.Generator().manual_seed(seed)
        lengths = np.asarray([len(r) for r in data.rows], dtype=np.int64)
        steps_per_epoch = math.ceil(len(data.rows) / batch_size)
        total = epochs * steps_per_epoch
        optimizer = torch.optim.AdamW(params, lr=lr, eps=1e-8, weight_decay=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total))
        loss_fn = nn.CrossEntropyLoss()
        labels = torch.as_tensor(data.labels, dtype=torch.long)
        done = 0
        mean = 0.0
        try:
            model.train()  # type: ignore[attr-defined]
            for _ in range(epochs):
                running, count = 0.0, 0
                for index in training_batches(lengths, batch_size, generator):
                    width = max(1, int(lengths[index].max()))
                    ids = torch.full((len(index), width), pad, dtype=torch.long)
                    mask = torch.zeros((len(index), width), dtype=torch.long)
                    for k, i in enumerate(index):
                        row = data.rows[int(i)]
                        ids[k, : len(row)] = torch.as_tensor(row, dtype=torch.long)
                        mask[k, : max(1, len(row))] = 1
                    batch = Batch(ids, mask, mask.sum(1)).to(device)
                    optimizer.zero_grad(set_to_none=True)
                    loss = loss_fn(model.forward(batch).logits, labels[index].to(device))  # type: ignore[attr-defined]
                    loss.backward()
                    nn.utils.clip_grad_norm_(params, 1.0)
                    optimizer.step()
                    scheduler.step()
                    running += float(loss.item()) * len(index)
                    count += len(index)
                    done += 1
                    if progress is not None:
                        progress(done, total)
                mean = running / max(1, count)
        finally:
            model.eval()  # type: ignore[attr-defined]
            for name, p in module.named_parameters():
                p.requires_grad_(saved[name])
        return mean


def accuracy(model: object, samples: Sequence[Sample], batch_tokens: int) -> float:
    rows = [list(e.ids) for e in model.encode(samples)]  # type: ignore[attr-defined]
    predicted = batched_logits(model, rows, batch_tokens).argmax(1)
    labels = np.asarray([int(s.label) for s in samples])  # type: ignore[arg-type]
    return float((predicted == labels).mean()) if len(labels) else float("nan")


def success_rate(model: object, rows: Sequence[Sequence[int]], target: int, batch_tokens: int):  # type: ignore[no-untyped-def]
    """Share of (triggered) rows predicted as ``target``; None without rows."""
    if not rows:
        return None
    return float((batched_logits(model, rows, batch_tokens).argmax(1) == target).mean())
