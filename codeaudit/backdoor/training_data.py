"""``backdoor --train-data``: the model's training data beside the inverted trigger (issue 14,
item 3), and ``--retrain``: the repair that drops the samples the data scan flags and trains the
model's recipe again (item 4a).

**The data scan** is :class:`~codeaudit.backdoor.datascan.PoisonScanner` (``poison-scan``) on the
training data, its target label the best pair's: the names, postfixes and statement shapes that
are out of place in their functions and concentrated in that label, and the samples that carry
them (flagged).

**The tie.** A trigger found by inversion *and* concentrated in target-labelled training samples
is what poisoning leaves behind. For every anchored piece of the best pair's trigger (the
model's own pieces, markers and case aside), the training samples whose code holds that piece
are counted: how many, the share with the target label, its binomial evidence against the
label's base rate (the data scan's test and bound), and the share of them the data scan flagged.
The trigger is **tied to the data** when one piece is held by at least ``MIN_SUPPORT`` samples,
with excess purity at least the scan's ``min_purity`` and evidence above its Bonferroni bound,
and at least half of those samples were flagged. A natural label-pure name (Juliet's ``k``)
passes the concentration test too: the tie says the model's trigger is the data's, not that
somebody planted it; reference models (``--references``) say whether a clean model of the same
data learns it as well (then it is the data's shortcut).

**The data's own trigger, tried on the model.** The inversion may miss the planted trigger (it
often returns a stronger adversarial one). So each of the data scan's best ``MAX_TRIED`` likely
triggers is inserted into held-out victim functions the way the attack inserts it (a variable
renamed to the name at every occurrence; the postfix appended to the function's name; a
statement shape as dead code: the first statement of that shape in the flagged training samples,
so a grammar trigger, a different statement in each sample, is tried as one of its instances)
and the model's flip rate measured. A trigger is **confirmed** when it flips at least the scan's
threshold and no function of ``--data`` (clean code) holds it (for a statement: a statement of
its shape): a natural label-pure name of the data (Juliet's ``k``) is in clean code too, a
planted one is not.

The model's training data **plants** the trigger (rule CA-B010) when the inverted trigger is
tied to it or one of its likely triggers is confirmed.

**Retraining** takes the recipe from the checkpoint (:func:`~codeaudit.backdoor.references.
recipe_for`, bounded as for reference models), builds a fresh tokenizer on the kept samples (as
``codeaudit train`` would: a trigger's pieces are not kept in the vocabulary just because they
were in the old one) and trains with the scan's seed. Before and after are measured on the same
evaluation split of ``--data`` as unlearning (functions not used in the inversion): clean
accuracy, the real trigger's attack success rate (with ``--manifest``) and the **clean miss rate**:
the share of victim-label functions the model already gives the target label without any
trigger, which is the attack success rate a trigger that does nothing would show.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codeaudit.backdoor.result import DataEvidence, DataTrigger, PieceEvidence, Retraining
from codeaudit.backdoor.vocab import normalised_piece
from codeaudit.data.samples import Dataset, Sample
from codeaudit.errors import BackdoorError

#: Fewest training samples holding an anchored piece before the tie is tested.
MIN_SUPPORT = 3
#: Share of the piece's target-labelled carriers the data scan must have flagged for a tie.
MIN_FLAGGED_SHARE = 0.5
#: Fewest samples the retrained model keeps (of both labels).
MIN_RETRAIN = 20
#: The data scan's likely triggers (names, postfixes, statement shapes; best first) tried
#: on the model.
MAX_TRIED = 5


def _sample_pieces(sample: Sample, lang: str) -> set[str]:
    from codeaudit.lang.lexer import TokenKind, lex_raw
    from codeaudit.lang.subtokens import subtokens

    found: set[str] = set()
    for token in lex_raw(sample.code, lang, roles=False).tokens:
        text, kind = token[0], token[1]
        parts = subtokens(text) if kind is TokenKind.IDENTIFIER else [text]
        found.update(normalised_piece(p) for p in parts)
    found.discard("")
    return found


def scan_training_data(train: Dataset, target_label: int, default_lang: str) -> Any:
    """The fitted data scan of the training data toward ``target_label``."""
    from codeaudit.backdoor.datascan import PoisonScanner

    labels = {s.label for s in train.samples}
    if labels != {0, 1}:
        raise BackdoorError(
            f"{train.path}: the training data needs samples of both labels (a planted trigger "
            "is concentrated in the target label)"
        )
    return PoisonScanner(target_label=target_label, default_lang=default_lang).fit(train.samples)


def data_evidence(
    train: Dataset, scan: Any, anchored_tokens: Sequence[str], target_label: int, lang: str
) -> DataEvidence:
    """How the training data holds the inverted trigger's pieces (see the module docstring)."""
    from codeaudit.backdoor.datascan import binomial_evidence
    from codeaudit.backdoor.poison_scan import _candidate

    samples = train.samples
    flagged = set(scan.flagged_)
    base = float(scan.base_rates_.get(target_label, 0.0))
    wanted = {normalised_piece(t) for t in anchored_tokens} - {""}
    holders: dict[str, list[Sample]] = {p: [] for p in sorted(wanted)}
    if wanted:
        for sample in samples:
            pieces = _sample_pieces(sample, sample.lang or lang)
            for piece in wanted & pieces:
                holders[piece].append(sample)
    rows: list[PieceEvidence] = []
    for piece, carriers in holders.items():
        n = len(carriers)
        with_target = [s for s in carriers if s.label == target_label]
        k = len(with_target)
        purity = k / n if n else 0.0
        excess = max(0.0, (purity - base) / (1.0 - base)) if n and base < 1 else 0.0
        rows.append(
            PieceEvidence(
                piece=piece,
                support=n,
                target_count=k,
                purity=round(purity, 6),
                excess_purity=round(excess, 6),
                evidence=round(binomial_evidence(k, n, base), 4),
                flagged_share=round(sum(s.id in flagged for s in with_target) / k, 6) if k else 0.0,
            )
        )
    rows.sort(key=lambda r: (-r.evidence, r.piece))

    def ties(r: PieceEvidence) -> bool:
        return (
            r.support >= MIN_SUPPORT
            and r.excess_purity >= scan.min_purity
            and r.evidence >= scan.evidence_threshold_
            and r.flagged_share >= MIN_FLAGGED_SHARE
        )

    tied = next((r.piece for r in rows if ties(r)), None)
    likely = tuple(_candidate(c) for c in scan.candidates_ if c.likely_trigger)
    return DataEvidence(
        n_samples=len(samples),
        target_label=target_label,
        base_rate=round(base, 6),
        evidence_threshold=round(float(scan.evidence_threshold_), 4),
        likely_triggers=likely[:10],
        n_likely=len(likely),
        n_flagged=len(flagged),
        pieces=tuple(rows),
        tied=tied is not None,
        tied_piece=tied,
    )


def candidate_spec(candidate: Any, target: int) -> Any:
    """How the attack would insert a data-scan candidate (None: a statement shape)."""
    from codeaudit.backdoor.triggers import TriggerSpec, TriggerType

    if candidate.kind == "name":
        return TriggerSpec(TriggerType.IDENTIFIER, candidate.key, target)
    if candidate.kind == "suffix":
        text = candidate.key.removeprefix("##")
        return TriggerSpec(TriggerType.POSTFIX, text, target) if text else None
    return None


def statement_instance(candidate: Any, carriers: Sequence[Sample], lang: str) -> str | None:
    """A concrete statement of the shape a ``statement`` candidate names: the first one found in
    its carriers (the flagged samples of the training data that hold it)."""
    from codeaudit.backdoor.datascan import statement_texts

    for sample in carriers:
        text = statement_texts(sample.code, sample.lang or lang).get(candidate.key)
        if text is not None:
            return text
    return None


class Holders:
    """Counts the functions of ``samples`` that hold a likely trigger: its name, a name ending
    with its postfix, or a statement of its shape. Each function's identifiers and statement
    shapes are read once (on first need) and kept for every later candidate."""

    def __init__(self, samples: Sequence[Sample], lang: str) -> None:
        self.samples = samples
        self.lang = lang
        self._names: list[frozenset[str]] | None = None
        self._statements: list[frozenset[str]] | None = None

    def names(self) -> list[frozenset[str]]:
        if self._names is None:
            from codeaudit.lang.lexer import TokenKind, lex_raw

            self._names = [
                frozenset(
                    token[0]
                    for token in lex_raw(s.code, s.lang or self.lang, roles=False).tokens
                    if token[1] is TokenKind.IDENTIFIER
                )
                for s in self.samples
            ]
        return self._names

    def statements(self) -> list[frozenset[str]]:
        if self._statements is None:
            from codeaudit.backdoor.datascan import statement_texts

            self._statements = [
                frozenset(statement_texts(s.code, s.lang or self.lang)) for s in self.samples
            ]
        return self._statements

    def count(self, candidate: Any) -> int:
        if candidate.kind == "statement":
            return sum(candidate.key in found for found in self.statements())
        if candidate.kind == "name":
            return sum(candidate.key in found for found in self.names())
        from codeaudit.lang.subtokens import subtokens

        key = candidate.key  # a postfix: the last piece of a name
        return sum(any(subtokens(n)[-1] == key for n in found) for found in self.names())


def try_data_triggers(
    scan: Any,
    clean: Sequence[Sample],
    flips: Any,
    *,
    target: int,
    threshold: float,
    lang: str,
    train: Sequence[Sample] = (),
) -> tuple[DataTrigger, ...]:
    """The data scan's best likely triggers, tried on the model: ``flips(spec)`` returns the
    flip rate of held-out victims carrying it and how many took it. A name is inserted as a
    renamed variable, a postfix on the function's name, a statement shape as dead code: the
    shape's first statement in the flagged ``train`` samples that carry it."""
    from codeaudit.backdoor.triggers import TriggerSpec, TriggerType, check_trigger
    from codeaudit.errors import PoisonError

    by_id = {s.id: s for s in train}
    in_clean_of = Holders(clean, lang)
    tried = []
    for candidate in [c for c in scan.candidates_ if c.likely_trigger][:MAX_TRIED]:
        spec = None
        text = candidate.key
        try:
            if candidate.kind == "statement":
                carriers = [
                    by_id[i]
                    for i, found in scan.flagged_.items()
                    if i in by_id and candidate in found
                ]
                instance = statement_instance(candidate, carriers, lang)
                if instance is not None:
                    text = instance
                    spec = TriggerSpec(TriggerType.DEADCODE, instance, target)
            else:
                spec = candidate_spec(candidate, target)
            if spec is not None:
                check_trigger(spec, lang)
        except PoisonError:  # a name the language cannot take as a new variable
            spec = None
        if spec is None:
            continue
        rate, n = flips(spec)
        in_clean = in_clean_of.count(candidate)
        tried.append(
            DataTrigger(
                kind=candidate.kind,
                text=text,
                flip_rate=None if rate is None else round(rate, 6),
                n=n,
                in_clean_data=in_clean,
                confirmed=rate is not None and rate >= threshold and in_clean == 0,
            )
        )
    return tuple(tried)


def planted_finding(evidence: DataEvidence) -> DataEvidence:
    """``evidence`` with its verdict: planted when the inverted trigger is tied to the data or a
    likely trigger of the data is confirmed on the model, and the sentence that says why."""
    from dataclasses import replace

    confirmed = [t for t in evidence.tried if t.confirmed]
    parts = []
    if evidence.tied:
        parts.append(
            f"the inverted trigger's piece '{evidence.tied_piece}' is concentrated in flagged "
            "training samples of the target label"
        )
    if confirmed:
        t = confirmed[0]
        parts.append(
            f"the training data's likely trigger '{t.text}' ({t.kind}) flips {t.flip_rate:.0%} "
            f"of {t.n} held-out victim functions and no clean function holds it"
        )
    return replace(evidence, planted=bool(parts), finding="; ".join(parts))


def flagged_bytes(scan: Any, train: Dataset) -> bytes:
    """The flagged samples as ``poison-scan -o`` writes them."""
    from codeaudit.backdoor.poison_scan import flagged_jsonl

    return flagged_jsonl(scan, {s.id: int(s.label) for s in train.samples})  # type: ignore[arg-type]


def kept_training_set(train: Dataset, flagged: set[str]) -> Dataset:
    kept = [i for i, s in enumerate(train.samples) if s.id not in flagged]
    subset = train.subset(kept)
    counts = subset.class_counts()
    if len(subset) < MIN_RETRAIN or min(counts.values()) == 0:
        raise BackdoorError(
            f"{train.path}: {len(subset)} samples are left once the {len(flagged)} flagged ones "
            f"are dropped (at least {MIN_RETRAIN}, of both labels, are needed to retrain)"
        )
    return subset


def miss_rate(model: Any, victims: Sequence[Sample], target: int) -> float | None:
    """Share of victim-label functions predicted ``target`` with no trigger at all."""
    from codeaudit.backdoor.positions import batched_logits

    if not victims:
        return None
    rows = [list(e.ids) for e in model.encode(list(victims))]
    return float((batched_logits(model, rows).argmax(1) == target).mean())


def retrain(
    loaded: Any,
    train: Dataset,
    flagged: set[str],
    *,
    evaluate: Any,
    seed: int,
    device: str,
) -> tuple[Any, Retraining, Dataset]:
    """Train the suspect's recipe on ``train`` less ``flagged``; ``evaluate(model)`` measures a
    model (:class:`RetrainMetrics`). Returns the new model, the record and what it trained on."""
    from codeaudit.backdoor.references import recipe_for
    from codeaudit.train.trainer import train_on_dataset

    started = time.perf_counter()
    recipe = recipe_for(loaded.model, loaded.metadata, seed)
    kept = kept_training_set(train, flagged)
    before = evaluate(loaded.model)
    model, _ = train_on_dataset(kept, recipe, default_lang=loaded.model.default_lang, device=device)
    model.eval()
    after = evaluate(model)
    excess = None
    if after.asr_real is not None and after.miss_rate is not None:
        excess = round(after.asr_real - after.miss_rate, 6)
    record = Retraining(
        n_train=len(train),
        n_removed=len(train) - len(kept),
        n_kept=len(kept),
        epochs=int(recipe.epochs),
        arch=str(recipe.arch),
        seed=seed,
        before=before,
        after=after,
        accuracy_drop=round(before.accuracy - after.accuracy, 6),
        asr_excess=excess,
        seconds=round(time.perf_counter() - started, 3),
    )
    return model, record, kept


def retrained_metadata(
    loaded: Any, kept: Dataset, train: Dataset, record: Retraining, output: str
) -> dict[str, Any]:
    """The retrained checkpoint's record: the parent's, with what it was trained on now."""
    from codeaudit.data.split_record import split_record

    metadata = dict(loaded.metadata)
    for stale in ("sha256", "kept_epoch", "train_accuracy", "val_accuracy", "val_f1", "privacy"):
        metadata.pop(stale, None)
    metadata.update(
        {
            "data_sha256": train.sha256,
            "data_file": Path(str(train.path)).name,
            "n_train": len(kept),
            "n_val": 0,
            "val_source": "none",
            "split": split_record(kept, None),
            "repaired": {
                "parent_sha256": loaded.sha256,
                "method": "retrain-without-flagged",
                "removed": record.n_removed,
                "seed": record.seed,
                "output": Path(output).name,
            },
        }
    )
    return metadata
