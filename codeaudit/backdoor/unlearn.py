"""Stage 6: unlearning (EliBadCode's repair).

The inverted trigger is inserted into ``share`` of the victim-label samples of a class-balanced
clean training set, which keep their true labels; the model is then fine-tuned on that set:
by default the classifier head only, 1 epoch, lr 5e-3, batch 32, AdamW (eps 1e-8, no weight
decay), a linear schedule with 10% warm-up, gradient clipping at 1.0 (the defaults of the public
implementation). ``scope="full"`` trains every parameter (RNNs often need it: the trigger's
effect lives in the recurrent features, not only in the head).

How the trigger goes in (``insertion``):

``position``
    In id space, at each sample's own position (stage 2): inserted before the name there, or
    replacing that name's ids at every occurrence, in turn.
``attack``
    In the source, the way the attacks ``codeaudit poison`` makes plant theirs (through the same
    tree-sitter rewriting, every edit verified by parsing again), in one of three forms:
    **identifier** (a local variable, one of the three that come first, renamed
    at every occurrence to the trigger's name, or to its old name plus the trigger when the
    trigger starts with a continuation piece such as ``##_init``), **postfix** (the trigger
    appended to the function's own name and its recursive calls) and **deadcode** (a never-run
    statement declaring the trigger's name, ``if (0) { int NAME = 0; }`` in C, at one of the
    first statement places). Each form is planted into every triggered victim and the model's
    flip rate toward the target measured: the form the backdoor answers to most (and any within
    10 points of it, in turn) is used, since it is most likely the real trigger's form; a
    function without a place for it takes the next form, one without a place for any the
    ``position`` insertion.
``mixed``
    Every other triggered sample each way.

Deterministic: the same model, data, trigger and seed give bit-identical weights on CPU.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from codeaudit.backdoor.positions import (
    DEFAULT_BATCH_TOKENS,
    batched_logits,
    context_ids,
    insert,
    rename,
    select_positions,
)
from codeaudit.data.samples import Sample
from codeaudit.errors import BackdoorError

SCOPES = ("head", "full")
INSERTIONS = ("position", "attack", "mixed")
ATTACK_FORMS = ("identifier", "postfix", "deadcode")
# how many of the earliest renamable variables the identifier form chooses from (as the attack)
_EARLY = 3


@dataclass(frozen=True)
class UnlearnSet:
    rows: list[list[int]]
    labels: np.ndarray
    n_triggered: int
    #: triggered samples by how the trigger went in ("position", or an attack form)
    forms: dict[str, int] = field(default_factory=dict)
    #: per attack form, the share of the triggered victims it flipped before unlearning
    form_flips: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerWord:
    """One word of an inverted trigger as code text: ``glued`` when it starts with a
    continuation piece (``##_init``), which extends the name before it."""

    text: str
    glued: bool


def trigger_words(model: object, ids: Sequence[int]) -> list[TriggerWord]:
    """The trigger's ids as words: a word-start piece opens a word, a continuation piece extends
    the current one (or opens a glued word when it comes first)."""
    from codeaudit.backdoor.vocab import WORD_START_MARKERS
    from codeaudit.lang.subtokens import CONTINUATION

    tokenizer = model.tokenizer  # type: ignore[attr-defined]
    itos: list[str] = tokenizer.vocabulary()
    kind = getattr(tokenizer, "kind", "vocab")
    words: list[TriggerWord] = []
    for i in ids:
        piece = itos[int(i)] if 0 <= int(i) < len(itos) else ""
        if piece.startswith(CONTINUATION) and len(piece) > len(CONTINUATION):
            text, starts = piece[len(CONTINUATION) :], False
        elif kind == "vocab":
            text, starts = piece, True
        else:
            marker = next((m for m in WORD_START_MARKERS if piece.startswith(m)), None)
            text, starts = (piece[len(marker) :], True) if marker else (piece, False)
        if not text:
            continue
        if starts or not words:
            words.append(TriggerWord(text, glued=not starts))
        else:
            words[-1] = TriggerWord(words[-1].text + text, words[-1].glued)
    return words


def trigger_name(words: Sequence[TriggerWord], stem: str = "") -> str:
    """One identifier carrying the trigger's words: ``stem`` first when the trigger starts glued
    (``data`` + ``_init63``), later words joined by ``_`` unless they start with one."""
    name = ""
    for k, word in enumerate(words):
        if k == 0:
            name = (stem + word.text) if word.glued else word.text
        else:
            name += word.text if word.text.startswith("_") or word.glued else "_" + word.text
    if name and not (name[0].isalpha() or name[0] == "_"):
        name = (stem or "v") + ("" if name.startswith("_") else "_") + name
    return name


def trigger_postfix(words: Sequence[TriggerWord]) -> str:
    """The trigger as a postfix of a name (``_`` before a first word that starts a name)."""
    name = trigger_name(words)
    return name if (words and words[0].glued) or name.startswith("_") else "_" + name


def plant(code: str, lang: str, words: Sequence[TriggerWord], form: str, rng: random.Random):  # type: ignore[no-untyped-def]
    """``code`` with the trigger planted as ``form`` (one of :data:`ATTACK_FORMS`) the way the
    attack of that type plants its own, or None when the function has no place for it; raises
    :class:`codeaudit.lang.rewrite.RewriteBudgetError` over the rewriter's budget."""
    from codeaudit.backdoor.triggers import TriggerSpec, TriggerType, insert_trigger
    from codeaudit.lang.languages import language_support
    from codeaudit.lang.rewrite import _analyse
    from codeaudit.lang.tree import Edit, verified

    if not words:
        return None
    support = language_support(lang)
    if form == "postfix":
        postfix = trigger_postfix(words)
        if not support.postfix_ok(postfix):
            return None
        return insert_trigger(code, lang, TriggerSpec(TriggerType.POSTFIX, postfix, 0), rng)
    analysis = _analyse(code, support)
    early = sorted(analysis.renamable, key=lambda n: analysis.renamable[n][0].start)[:_EARLY]
    rng.shuffle(early)
    if form == "deadcode":
        name = trigger_name(words, early[0] if early else "v")
        if name in analysis.used or support.new_name_problem(name) is not None:
            return None
        loop = support.deadcode_loops[0]
        declaration = support.deadcode_declaration.format(name=name, value=0)
        statement = support.deadcode_block(loop, support.false_literal, [declaration])
        spec = TriggerSpec(TriggerType.DEADCODE, statement, 0)
        return insert_trigger(code, lang, spec, rng)
    if form != "identifier":
        raise BackdoorError(f"attack form {form!r}: use {', '.join(ATTACK_FORMS)}")
    for old in early:
        new = trigger_name(words, old)
        if new in analysis.used or support.new_name_problem(new) is not None:
            continue
        edits = tuple((t.start, t.end, new) for t in analysis.renamable[old])
        result = verified(analysis.src, Edit(edits))
        if result is not None:
            return result
    return None


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
    insertion: str = "position",
) -> UnlearnSet:
    """Class-balanced clean samples, ``share`` of the victim-label ones carrying the trigger
    (the anchored one, and GCG's full one when given, in turn), inserted as ``insertion`` says
    (see the module docstring); every sample keeps its true label."""
    if insertion not in INSERTIONS:
        raise BackdoorError(f"unlearning insertion {insertion!r}: use {', '.join(INSERTIONS)}")
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
    triggered = sorted(rng.permutation(victims)[:n_trig].tolist()) if n_trig else []
    variants = [list(trigger)] + ([list(full)] if full and list(full) != list(trigger) else [])
    room = max(len(v) for v in variants)
    # which variant a triggered sample gets, and whether it goes in the attack's way
    variant_of = {k: variants[k % len(variants)] for k in triggered}
    by_attack = {
        k: insertion == "attack" or (insertion == "mixed" and j % 2 == 1)
        for j, k in enumerate(triggered)
    }
    planted_rows: dict[int, list[int]] = {}
    forms: Counter[str] = Counter()
    form_flips: dict[str, float] = {}
    if any(by_attack.values()):
        words = {id(v): trigger_words(model, v) for v in variants}
        keys = [k for k in triggered if by_attack[k]]
        planted = {k: _attack_rows(model, chosen[k], words[id(variant_of[k])], seed) for k in keys}
        form_flips = _form_flips(model, planted, 1 - victim, batch_tokens)
        strong, fallback = rank_forms(form_flips)
        for j, k in enumerate(keys):
            turn = strong[j % len(strong) :] + strong[: j % len(strong)] if strong else []
            form = next((f for f in [*turn, *fallback] if f in planted[k]), None)
            if form is not None:
                planted_rows[k] = planted[k][form]
                forms[form] += 1
    at_position = [k for k in triggered if k not in planted_rows]
    placed = select_positions(
        model, [chosen[k] for k in at_position], room=room, batch_tokens=batch_tokens
    )
    for k, p in zip(at_position, placed, strict=True):
        variant = variant_of[k]
        # half inserted at the position, half replacing the name everywhere in id space
        row = rename(p, variant) if k % 2 else insert(p.context, p.position, variant)
        planted_rows[k] = row[: model.max_len]  # type: ignore[attr-defined]
        forms["position"] += 1
    rows: list[list[int]] = []
    for k, sample in enumerate(chosen):
        if k in planted_rows:
            rows.append(planted_rows[k])
        else:
            rows.append(list(context_ids(model, sample, room)[0]))
    labels = np.asarray([int(s.label) for s in chosen], dtype=np.int64)  # type: ignore[arg-type]
    return UnlearnSet(rows, labels, len(triggered), dict(sorted(forms.items())), form_flips)


# a form whose flip rate is within this of the best one's is used too (in turn)
FORM_MARGIN = 0.1


def rank_forms(flips: dict[str, float]) -> tuple[list[str], list[str]]:
    """(the forms to use in turn, the rest in falling order, for functions without a place for
    those): every form within :data:`FORM_MARGIN` of the best flip rate is used."""
    ranked = sorted(flips, key=lambda f: (-flips[f], ATTACK_FORMS.index(f)))
    if not ranked:
        return [], []
    best = flips[ranked[0]]
    strong = [f for f in ranked if flips[f] >= best - FORM_MARGIN]
    return sorted(strong, key=ATTACK_FORMS.index), [f for f in ranked if f not in strong]


def _attack_rows(
    model: object, sample: Sample, words: Sequence[TriggerWord], seed: int
) -> dict[str, list[int]]:
    """The sample's ids with the trigger planted in each attack form it has a place for."""
    from codeaudit.lang.rewrite import RewriteBudgetError

    lang = model.lang_of(sample)  # type: ignore[attr-defined]
    found: dict[str, list[int]] = {}
    for form in ATTACK_FORMS:
        rng = random.Random(f"codeaudit-unlearn:{seed}:{sample.id}:{form}")
        try:
            code = plant(sample.code, lang, words, form, rng)
        except RewriteBudgetError:
            return found
        if code is not None:
            found[form] = list(model.encode_code(code, lang).ids)  # type: ignore[attr-defined]
    return found


def _form_flips(
    model: object, planted: dict[int, dict[str, list[int]]], target: int, batch_tokens: int
) -> dict[str, float]:
    """Per attack form, the share of the planted victims the model sends to ``target``: the form
    the backdoor answers to is the form its real trigger most likely takes."""
    flips: dict[str, float] = {}
    for form in ATTACK_FORMS:
        rows = [by_form[form] for by_form in planted.values() if form in by_form]
        if rows:
            predicted = batched_logits(model, rows, batch_tokens).argmax(1)
            flips[form] = round(float((predicted == target).mean()), 6)
    return flips


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
