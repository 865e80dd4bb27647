"""Stage 2: sample-specific trigger positions, in token-id space.

For each victim-label sample, every distinct name the function declares or uses as a variable
(and the function's own name) is masked in turn: all of its ids become ``<unk>`` (``<pad>`` when
the tokenizer has none). The name whose masking changes the loss on the true label most marks
where the trigger goes: the position of its first id. Triggers are inserted there (before that
id), so an inserted trigger reads as a name, or a prefix/postfix piece of one, at the place the
model looks at.

Two quirks of the public EliBadCode code are not reproduced: its index is a word index applied
to subword ids (here the position is an id index, from the encoding's id -> code-token map), and
it evaluates candidates at a fixed index 10 (here every stage, inversion, anchoring, verdict and
unlearning, uses these positions).

Every sample is first cut to ``max_len - trigger_len`` ids (keeping a trailing special token),
so inserting a trigger never truncates: the model reads the same context with and without it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from codeaudit.data.samples import Sample
from codeaudit.lang.lexer import IdentRole, lex
from codeaudit.models.tokenizer import lex_budget

# Ids per forward chunk when many sequences are scored at once (rows x width).
DEFAULT_BATCH_TOKENS = 1 << 17


@dataclass(frozen=True)
class Placed:
    """One sample prepared for trigger insertion."""

    sample_id: str
    label: int
    context: tuple[int, ...]  # ids, cut so that a trigger fits
    position: int  # insert the trigger before this id
    name: str | None  # the identifier it marks (None: no name in the window, fallback)
    delta: float  # |loss change| when that name is masked
    occurrences: tuple[int, ...] = ()  # id positions of every occurrence of that name
    name_len: int = 1  # ids per occurrence


def rename(placed: Placed, trigger: Sequence[int]) -> list[int]:
    """The context with every occurrence of the placed name (all its ids) replaced by the
    trigger: how an identifier-renaming attack plants its trigger."""
    if not placed.occurrences:
        return insert(placed.context, placed.position, trigger)
    starts = set(placed.occurrences)
    name_ids = _name_span(placed)
    out: list[int] = []
    k = 0
    ctx = placed.context
    while k < len(ctx):
        if k in starts and tuple(ctx[k : k + len(name_ids)]) == name_ids:
            out.extend(trigger)
            k += len(name_ids)
        else:
            out.append(ctx[k])
            k += 1
    return out


def _name_span(placed: Placed) -> tuple[int, ...]:
    """The ids of the placed name (its first occurrence: consecutive ids up to the next
    occurrence start or the length of its pieces, recorded at selection)."""
    return placed.context[placed.position : placed.position + max(1, placed.name_len)]


def context_ids(model: object, sample: Sample, room: int) -> tuple[tuple[int, ...], list, object]:
    """The sample's ids cut to ``max_len - room`` (a trailing special id kept), its code tokens
    and its encoding."""
    lang = model.lang_of(sample)  # type: ignore[attr-defined]
    tokens = lex(sample.code, lang, max_tokens=lex_budget(model.max_len)).tokens  # type: ignore[attr-defined]
    enc = model.tokenizer.encode_source(sample.code, tokens, model.max_len)  # type: ignore[attr-defined]
    ids = list(enc.ids)
    limit = max(1, model.max_len - room)  # type: ignore[attr-defined]
    if len(ids) > limit:
        if enc.token_index[-1] == -1 and limit >= 2:
            ids = [*ids[: limit - 1], ids[-1]]
        else:
            ids = ids[:limit]
    if not ids:  # no code at all: one padding id, so shapes stay valid
        ids = [model.tokenizer.pad_id]  # type: ignore[attr-defined]
    return tuple(ids), list(tokens), enc


def insert(context: Sequence[int], position: int, trigger: Sequence[int]) -> list[int]:
    return [*context[:position], *trigger, *context[position:]]


def batched_logits(
    model: object, rows: Sequence[Sequence[int]], batch_tokens: int = DEFAULT_BATCH_TOKENS
) -> np.ndarray:
    """Logits for many id sequences: sorted by length, padded, chunked by ``batch_tokens``."""
    import torch

    from codeaudit.models.base import Batch

    out = np.zeros((len(rows), 2), dtype=np.float64)
    order = sorted(range(len(rows)), key=lambda r: len(rows[r]))
    device = model.device  # type: ignore[attr-defined]
    pad = model.tokenizer.pad_id  # type: ignore[attr-defined]
    start = 0
    with torch.no_grad():
        while start < len(order):
            width = max(1, len(rows[order[start]]))
            end = start
            while end < len(order):
                width = max(width, len(rows[order[end]]), 1)
                if (end - start + 1) * width > batch_tokens and end > start:
                    break
                end += 1
            chunk = order[start:end]
            width = max(max(len(rows[r]) for r in chunk), 1)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for k, r in enumerate(chunk):
                n = len(rows[r])
                if n:
                    ids[k, :n] = torch.as_tensor(list(rows[r]), dtype=torch.long)
                mask[k, : max(n, 1)] = 1
            lengths = mask.sum(1)
            logits = model.forward(Batch(ids, mask, lengths).to(device)).logits  # type: ignore[attr-defined]
            out[chunk] = logits.double().cpu().numpy()
            start = end
    return out


def cross_entropy(logits: np.ndarray, labels: np.ndarray | int) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=-1))
    labels = np.broadcast_to(np.asarray(labels), log_norm.shape)
    picked = np.take_along_axis(shifted, labels[..., None].astype(np.int64), axis=-1)[..., 0]
    return log_norm - picked


def _first_position(enc: object) -> int:
    index = enc.token_index  # type: ignore[attr-defined]
    return next((k for k, t in enumerate(index) if t >= 0), 0)


def _names(tokens: list, enc: object, limit: int) -> dict[str, list[int]]:
    """Candidate names -> the id positions of all their occurrences (within ``limit``)."""
    candidates: set[str] = set()
    function_seen = False
    for token in tokens:
        if not token.is_identifier:
            continue
        if token.role is IdentRole.VARIABLE:
            candidates.add(token.text)
        elif token.role is IdentRole.FUNCTION and not function_seen:
            candidates.add(token.text)  # the function's own name comes first
            function_seen = True
    where: dict[str, list[int]] = {}
    for position, t in enumerate(enc.token_index[:limit]):  # type: ignore[attr-defined]
        if t < 0:
            continue
        token = tokens[t]
        if token.is_identifier and token.text in candidates:
            where.setdefault(token.text, []).append(position)
    return where


def _occurrences(positions: list[int]) -> tuple[tuple[int, ...], int]:
    """Start positions of the runs of consecutive ids, and the first run's length."""
    starts = [positions[0]]
    length, first_done, run = 1, False, 1
    for prev, cur in itertools.pairwise(positions):
        if cur == prev + 1:
            run += 1
        else:
            if not first_done:
                length, first_done = run, True
            starts.append(cur)
            run = 1
    if not first_done:
        length = run
    return tuple(starts), length


def select_positions(
    model: object,
    samples: Sequence[Sample],
    *,
    room: int,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    progress: Callable[[int, int], None] | None = None,
) -> list[Placed]:
    """The sample-specific position of every sample (see the module docstring)."""
    mask_id = model.tokenizer.unk_id  # type: ignore[attr-defined]
    if mask_id is None:
        mask_id = model.tokenizer.pad_id  # type: ignore[attr-defined]
    prepared = []
    rows: list[list[int]] = []
    for sample in samples:
        context, tokens, enc = context_ids(model, sample, room)
        # the trigger must start inside the window, before a trailing special id
        # an encoding that ends with a special id (</s>) keeps it at the end of the context
        trailing = bool(enc.ids) and enc.token_index[-1] == -1 and len(context) > 1
        limit = max(len(context) - (1 if trailing else 0), 1)
        names = _names(tokens, enc, limit)
        first = len(rows)
        rows.append(list(context))
        for positions in names.values():
            masked = list(context)
            for p in positions:
                if p < len(masked):
                    masked[p] = mask_id
            rows.append(masked)
        prepared.append((sample, context, enc, names, first))
    logits = batched_logits(model, rows, batch_tokens)
    placed = []
    for done, (sample, context, enc, names, first) in enumerate(prepared, start=1):
        label = int(sample.label) if sample.label is not None else 0
        losses = cross_entropy(logits[first : first + 1 + len(names)], label)
        if names:
            deltas = np.abs(losses[1:] - losses[0])
            best = int(np.argmax(deltas))  # ties: the name that comes first in the code
            name = list(names)[best]
            position, delta = names[name][0], float(deltas[best])
            starts, length = _occurrences(names[name])
        else:
            name, position, delta = None, min(_first_position(enc), len(context) - 1), 0.0
            starts, length = (), 1
        placed.append(
            Placed(sample.id, label, context, max(position, 0), name, delta, starts, length)
        )
        if progress is not None:
            progress(done, len(prepared))
    return placed
