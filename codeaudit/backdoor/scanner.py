"""Stage 5: the scan as an estimator, and the verdict.

:class:`BackdoorScanner` runs stages 1-4 for every (victim label -> target label) pair and judges
the result: a model is backdoored when, for some pair, the anchored trigger flips at least
``threshold`` of held-out victim-label samples (correctly classified ones that were not used in
the inversion) to the target label. Unless ``shortcuts`` is off, the inversion of each pair skips
triggers that contain one of the data's shortcuts toward its target
(:mod:`codeaudit.backdoor.shortcuts`), which are measured and reported on their own instead.
Adversarial triggers can flip clean models too: the default
threshold (:data:`DEFAULT_THRESHOLD`) was measured on clean and backdoored models, and on small
RNNs no threshold separates them (docs/backdoor-results.md).

With clean reference models (:mod:`codeaudit.backdoor.references`) the inversion of each pair
can penalise triggers that flip them (:class:`~codeaudit.backdoor.gcg.PenalisedObjective`,
``reference_weight`` > 0; by default 0: the references only judge, because a search that avoids
transferable triggers finds model-specific adversarial ones on clean models too), the
anchored trigger's flip rate is measured on every reference (same held-out victims, same
positions), and a trigger that flips some reference at least ``reference_ratio`` times as much as
the suspect is called adversarial (``kind`` "adversarial"), not planted: only "planted" pairs
make the model backdoored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from codeaudit.backdoor.anchor import Anchored, anchor
from codeaudit.backdoor.gcg import Inversion, PenalisedObjective, TriggerObjective, gcg
from codeaudit.backdoor.positions import (
    DEFAULT_BATCH_TOKENS,
    Placed,
    batched_logits,
    context_ids,
    rename,
    select_positions,
)
from codeaudit.backdoor.result import PairResult, Shortcut, VocabInfo
from codeaudit.backdoor.shortcuts import ShortcutIndex
from codeaudit.backdoor.vocab import TriggerVocab, render_trigger, trigger_vocabulary
from codeaudit.data.samples import Sample
from codeaudit.errors import BackdoorError

# Flip rate on held-out victim samples at or above which a model is called backdoored. Measured
# in docs/backdoor-results.md (LSTM and BiGRU on Juliet, 2% poisoning): every backdoored model's
# 1->0 flip rate is >= 0.83, and clean models stay <= 0.45 on the 0->1 pair; but clean models'
# own adversarial triggers flip 0.92-1.00 of vulnerable functions to "not vulnerable", so no
# value in (0, 1] separates clean from backdoored models there. 0.5 keeps every backdoor
# detected and is not a guarantee against false positives (see the results document).
DEFAULT_THRESHOLD = 0.5
MIN_HELDOUT = 5  # fewest held-out victim samples a verdict rests on
# A trigger is planted only when every reference flips less than this share of what it flips on
# the suspect (see trigger_kind). PICCOLO discards a candidate that drops a benign reference's
# accuracy below 0.85 (flips > 15%); a ratio holds for weak triggers and strong ones alike.
DEFAULT_REFERENCE_RATIO = 0.5

References = Callable[[Sequence[Sample]], Sequence[Any]] | Sequence[Any]

Progress = Callable[[str, int, int], None]


def _label_name(model: Any, label: int) -> str:
    labels = getattr(model, "labels", ("0", "1"))
    return str(labels[label]) if 0 <= label < len(labels) else str(label)


def check_samples(model: Any, samples: Sequence[Sample], pairs: Sequence[tuple[int, int]]) -> None:
    """What the scan needs of its data whatever the model answers: a label on every sample, and
    samples of every victim label."""
    if any(s.label is None for s in samples):
        raise BackdoorError("the scan needs labelled data (a 0/1 label on every record)")
    for victim in dict.fromkeys(v for v, _ in pairs):
        if not any(s.label == victim for s in samples):
            raise BackdoorError(
                f"no samples with label {victim} ({_label_name(model, victim)}) in the data: "
                "the scan needs victim-label samples of both labels"
            )


class TooFewVictims(BackdoorError):
    """Too few samples of a victim label that the model classifies correctly to invert a trigger
    on and to judge it on held-out ones. Raised before any inversion, for every pair at once."""

    def __init__(self, label: int, name: str, correct: int, available: int, needed: int) -> None:
        self.label, self.correct, self.available, self.needed = label, correct, available, needed
        which = f"samples with label {label} ({name})"
        if correct == 0:
            text = (
                f"none of the {available} {which} is classified correctly, so no trigger can be "
                "measured on them: check that the model was trained for this data and that its "
                "labels mean what the data's labels mean"
            )
        elif correct < 1 + MIN_HELDOUT:
            text = (
                f"only {correct} of the {available} {which} are classified correctly; the scan "
                f"needs at least {1 + MIN_HELDOUT} (one to invert a trigger on, {MIN_HELDOUT} "
                "held out): give more labelled data"
            )
        else:
            text = (
                f"{correct} of the {available} {which} are classified correctly; the scan needs "
                f"{needed} for inversion and at least {MIN_HELDOUT} held out: give more labelled "
                "data, or invert on fewer samples (victim_samples: --victim-samples of "
                "codeaudit backdoor)"
            )
        super().__init__(text)


class BackdoorScanner:
    """EliBadCode trigger inversion and verdict (estimator: hyper-parameters here, ``fit``
    learns; learned state ends with ``_``)."""

    def __init__(
        self,
        *,
        victim_samples: int = 30,
        heldout: int = 200,
        steps: int = 100,
        topk: int = 64,
        candidates: int = 64,
        trigger_len: int = 5,
        beta: float = 0.15,
        threshold: float | None = None,
        patience: int = 10,
        seed: int = 0,
        pairs: Sequence[tuple[int, int]] = ((1, 0), (0, 1)),
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        cache: bool = True,
        shortcuts: bool = True,
        shortcuts_shown: int = 10,
        reference_weight: float = 0.0,
        reference_ratio: float = DEFAULT_REFERENCE_RATIO,
        progress: Progress | None = None,
    ) -> None:
        self.victim_samples = victim_samples
        self.heldout = heldout
        self.steps = steps
        self.topk = topk
        self.candidates = candidates
        self.trigger_len = trigger_len
        self.beta = beta
        self.threshold = threshold
        self.patience = patience
        self.seed = seed
        self.pairs = tuple(pairs)
        self.batch_tokens = batch_tokens
        self.cache = cache
        self.shortcuts = shortcuts
        self.shortcuts_shown = shortcuts_shown
        self.reference_weight = reference_weight
        self.reference_ratio = reference_ratio
        self.progress = progress

    def _report(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    def check_params(self) -> None:
        from codeaudit.errors import UsageError

        if self.victim_samples < 1 or self.steps < 0 or self.trigger_len < 1:
            raise UsageError("--victim-samples and --trigger-len must be >= 1, --steps >= 0")
        if self.topk < 1 or self.candidates < 1 or self.heldout < MIN_HELDOUT:
            raise UsageError(f"--topk and --candidates must be >= 1, held-out >= {MIN_HELDOUT}")
        if not self.beta >= 0:
            raise UsageError(f"--beta {self.beta}: must be >= 0")
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            raise UsageError(f"--threshold {self.threshold}: use a value in (0, 1]")
        if not self.reference_weight >= 0 or not 0.0 < self.reference_ratio <= 1.0:
            raise UsageError("--reference-weight must be >= 0, --reference-ratio in (0, 1]")

    # -- stage helpers ------------------------------------------------------------------------
    def _candidates(
        self, model: Any, samples: Sequence[Sample], victim: int
    ) -> tuple[list[Sample], int]:
        """Victim-label samples the model gets right, in a seeded order (and how many of that
        label were looked at)."""
        pool = [s for s in samples if s.label == victim]
        order = np.random.default_rng([self.seed, victim]).permutation(len(pool))
        need = self.victim_samples + self.heldout
        looked = [pool[i] for i in order[: max(4 * need, 500)]]
        contexts = [list(context_ids(model, s, self.trigger_len)[0]) for s in looked]
        predicted = batched_logits(model, contexts, self.batch_tokens).argmax(1)
        correct = [s for s, p in zip(looked, predicted, strict=True) if int(p) == victim]
        return correct, len(pool)

    def _objective(
        self, model: Any, placed: list[Placed], target: int, vocab_ids: np.ndarray
    ) -> TriggerObjective | None:
        """The objective on the samples of ``placed`` that ``model`` classifies correctly
        without a trigger (all of them for the suspect; None when there are none)."""
        rows = [list(p.context) for p in placed]
        predicted = batched_logits(model, rows, self.batch_tokens).argmax(1)
        kept = [p for p, y in zip(placed, predicted, strict=True) if int(y) == p.label]
        if not kept:
            return None
        return TriggerObjective(
            model, kept, target, vocab_ids, batch_tokens=self.batch_tokens, cache=self.cache
        )

    def _reference_flips(
        self, held_placed: list[Placed], target: int, trigger: Sequence[int]
    ) -> tuple[tuple[float | None, ...], tuple[int, ...]]:
        rates: list[float | None] = []
        counts: list[int] = []
        for ref in self.references_:
            objective = self._objective(ref, held_placed, target, self.vocab_.ids)
            rates.append(None if objective is None else float(objective.flips(trigger).mean()))
            counts.append(0 if objective is None else len(objective.placed))
        return tuple(rates), tuple(counts)

    def trigger_kind(self, flip_rate: float, reference_max: float | None, threshold: float) -> str:
        """ "none" below the threshold; "adversarial" when some reference flips at least
        ``reference_ratio`` times as much as the suspect; else "planted"."""
        if flip_rate < threshold:
            return "none"
        if reference_max is not None and reference_max >= self.reference_ratio * flip_rate:
            return "adversarial"
        return "planted"

    def _pair(
        self, model: Any, correct: list[Sample], victim: int, target: int, threshold: float
    ) -> tuple[PairResult, Inversion, Anchored, list[Placed], list[Placed]]:
        started = time.perf_counter()
        placed = self._placed(model, correct, victim, target)
        n_inv = self.victim_samples
        inv_placed, held_placed = placed[:n_inv], placed[n_inv:]
        vocab_ids, allowed = self._search_space(target)
        suspect = TriggerObjective(
            model, inv_placed, target, vocab_ids, batch_tokens=self.batch_tokens, cache=self.cache
        )
        objective: TriggerObjective | PenalisedObjective = suspect
        if self.references_:
            ref_objectives = [self._objective(r, inv_placed, target, vocab_ids)
                              for r in self.references_]  # fmt: skip
            objective = PenalisedObjective(
                suspect,
                [o for o in ref_objectives if o is not None],
                weight=self.reference_weight,
            )
        inversion, anchored = self._invert(objective, victim, target, allowed)
        held = TriggerObjective(
            model,
            held_placed,
            target,
            self.vocab_.ids,
            batch_tokens=self.batch_tokens,
            cache=self.cache,
        )
        flip_rate = float(held.flips(anchored.trigger).mean())
        ref_rates, ref_n = self._reference_flips(held_placed, target, anchored.trigger)
        measured = [r for r in ref_rates if r is not None]
        ref_max = max(measured) if measured else None
        call = self.trigger_kind(flip_rate, ref_max, threshold)
        penalised = isinstance(objective, PenalisedObjective)
        itos = model.tokenizer.vocabulary()
        kind = self.vocab_.tokenizer
        index = self.shortcut_index_
        result = PairResult(
            victim_label=victim,
            target_label=target,
            victim_name=_label_name(model, victim),
            target_name=_label_name(model, target),
            trigger_tokens=tuple(itos[t] for t in inversion.trigger),
            trigger_ids=inversion.trigger,
            anchored_tokens=tuple(itos[t] for t in anchored.trigger),
            anchored_ids=anchored.trigger,
            anchored_text=render_trigger((itos[t] for t in anchored.trigger), kind),
            loss=round(inversion.loss, 6),
            anchored_loss=round(anchored.loss, 6),
            inversion_flip_rate=float(suspect.flips(anchored.trigger).mean()),
            flip_rate=flip_rate,
            n_inversion=len(inv_placed),
            n_heldout=len(held_placed),
            threshold=threshold,
            backdoored=call == "planted",
            steps=inversion.steps,
            stop=inversion.stop,
            positions_fallback=sum(p.name is None for p in placed),
            seconds=round(time.perf_counter() - started, 3),
            shortcuts_excluded=index.count(target) if index is not None else None,
            shortcuts=self._shortcuts(model, held, held_placed, target),
            kind=call,
            reference_flip_rates=ref_rates,
            reference_n=ref_n,
            reference_flip_max=ref_max,
            reference_flip_mean=float(np.mean(measured)) if measured else None,
            suspect_loss=round(float(suspect.losses(np.asarray([anchored.trigger]))[0]), 6)
            if penalised
            else None,
            reference_penalty=round(float(objective.penalty(np.asarray([anchored.trigger]))[0]), 6)
            if isinstance(objective, PenalisedObjective)
            else None,
        )
        return result, inversion, anchored, inv_placed, held_placed

    def _victims(self, model: Any, samples: Sequence[Sample]) -> dict[int, list[Sample]]:
        """Every victim label's correctly classified samples, checked for every pair before any
        inversion (so a pair that cannot run does not throw away another's work)."""
        victims: dict[int, list[Sample]] = {}
        for victim in dict.fromkeys(v for v, _ in self.pairs):
            correct, available = self._candidates(model, samples, victim)
            if len(correct) < self.victim_samples + MIN_HELDOUT:
                name = _label_name(model, victim)
                raise TooFewVictims(victim, name, len(correct), available, self.victim_samples)
            victims[victim] = correct
        return victims

    def _placed(self, model: Any, correct: list[Sample], victim: int, target: int) -> list[Placed]:
        """The inversion and held-out victims (correctly classified), each at its position."""
        n_inv = self.victim_samples
        pair = f"{victim}->{target}"
        return select_positions(
            model,
            correct[: n_inv + self.heldout],
            room=self.trigger_len,
            batch_tokens=self.batch_tokens,
            progress=lambda d, t: self._report(f"positions {pair}", d, t),
        )

    def _search_space(
        self, target: int
    ) -> tuple[np.ndarray, Callable[[Sequence[int]], bool] | None]:
        """The vocabulary GCG searches toward ``target``, and which triggers it may take: none
        that contains a data shortcut toward it (unless they are kept)."""
        index = self.shortcut_index_
        if index is None:
            return self.vocab_.ids, None
        drop = index.single_pieces(target)
        kept = np.asarray([t for t in self.vocab_.ids if int(t) not in drop], dtype=np.int64)
        if not len(kept):
            raise BackdoorError(
                f"no identifier piece is left once the data's shortcuts toward label "
                f"{target} are set aside: rerun with --keep-shortcuts"
            )

        def allowed(trigger: Sequence[int]) -> bool:
            return not index.contains_shortcut(trigger, target)

        return kept, allowed

    def _invert(
        self,
        objective: TriggerObjective | PenalisedObjective,
        victim: int,
        target: int,
        allowed: Callable[[Sequence[int]], bool] | None,
    ) -> tuple[Inversion, Anchored]:
        """GCG, then anchoring (a shorter trigger that is a data shortcut cannot be anchored)."""
        pair = f"{victim}->{target}"
        inversion = gcg(
            objective,
            length=self.trigger_len,
            steps=self.steps,
            topk=self.topk,
            candidates=self.candidates,
            seed=self.seed * 1000 + victim,
            patience=self.patience,
            progress=lambda step, total, loss: self._report(
                f"inverting {pair} (loss {loss:.3f})", step, total
            ),
            allowed=allowed,
        )

        def losses(triggers: np.ndarray) -> np.ndarray:
            out = objective.losses(triggers)
            if allowed is not None:
                bad = [not allowed(t) for t in np.atleast_2d(triggers).tolist()]
                out = np.where(bad, np.inf, out)
            return out

        return inversion, anchor(inversion.trigger, losses, beta=self.beta)

    def _shortcuts(
        self, model: Any, held: TriggerObjective, held_placed: list[Placed], target: int
    ) -> tuple[Shortcut, ...]:
        """The strongest data shortcuts toward ``target``, with what each flips on its own."""
        index = self.shortcut_index_
        if index is None:
            return ()
        itos = model.tokenizer.vocabulary()
        found = []
        for ids, n_target, n_other in index.strongest(target, self.shortcuts_shown):
            tokens = tuple(itos[t] for t in ids)
            found.append(
                Shortcut(
                    ids=ids,
                    tokens=tokens,
                    text=render_trigger(tokens, self.vocab_.tokenizer),
                    target_support=n_target,
                    other_support=n_other,
                    flip_rate=float(held.flips(ids).mean()),
                    flip_rate_renamed=self._renamed_flips(model, held_placed, ids, target),
                )
            )
        return tuple(found)

    def _renamed_flips(
        self, model: Any, placed: Sequence[Placed], ids: Sequence[int], target: int
    ) -> float:
        """Share of ``placed`` predicted ``target`` once the chosen name is replaced by ``ids``
        at every occurrence (how a data set's own names, and renaming attacks, appear)."""
        rows = [rename(p, ids)[: model.max_len] for p in placed]
        predicted = batched_logits(model, rows, self.batch_tokens).argmax(1)
        return float((predicted == target).mean())

    # -- estimator ----------------------------------------------------------------------------
    def judged(self, victims: dict[int, list[Sample]]) -> list[Sample]:
        """Every sample the scan may invert on or judge with (each victim label's first
        ``victim_samples + heldout`` correctly classified samples)."""
        need = self.victim_samples + self.heldout
        return [s for found in victims.values() for s in found[:need]]

    def fit(
        self, model: Any, samples: Sequence[Sample], references: References | None = None
    ) -> BackdoorScanner:
        """Scan ``model`` with labelled clean ``samples``; sets ``pairs_``, ``backdoored_``,
        ``verdict_kind_``, ``max_flip_rate_``, ``best_``, ``vocab_``, ``threshold_``,
        ``references_`` and ``timings_``.

        ``references``: clean reference models (same labels and tokenizer), or a function that
        makes them given the samples the scan judges with (which they must not train on)."""
        self.check_params()
        if hasattr(model, "defense_record"):
            raise BackdoorError(
                "the model is hardened (NMID): its answers are noised, so trigger inversion "
                "cannot read them; scan the original (parent) model instead"
            )
        check_samples(model, samples, self.pairs)
        started = time.perf_counter()
        timings: dict[str, float] = {}
        model.eval()
        self._report("victim samples", 0, 1)
        victims = self._victims(model, samples)
        self.references_: list[Any] = []
        if references is not None:
            made = time.perf_counter()
            self._report("reference models", 0, 1)
            found = references(self.judged(victims)) if callable(references) else references
            self.references_ = list(found)
            for ref in self.references_:
                ref.eval()
            timings["reference models"] = time.perf_counter() - made
        langs = {model.lang_of(s) for s in samples} or {model.default_lang}
        self._report("trigger vocabulary", 0, 1)
        vocab: TriggerVocab = trigger_vocabulary(model.tokenizer, langs)
        self.vocab_ = vocab
        self.shortcut_index_: ShortcutIndex | None = None
        if self.shortcuts:
            self._report("data shortcuts", 0, 1)
            rows = [list(e.ids) for e in model.encode(samples)]
            self.shortcut_index_ = ShortcutIndex(
                rows,
                [int(s.label) for s in samples],  # type: ignore[arg-type]
                vocab.ids.tolist(),
                vocab.size_before,  # len(vocabulary()): one past the largest id
                max_n=self.trigger_len,
            )
        timings["vocabulary"] = time.perf_counter() - started - timings.get("reference models", 0)
        self.threshold_ = self.threshold if self.threshold is not None else DEFAULT_THRESHOLD
        pairs: list[PairResult] = []
        self.inversions_: dict[tuple[int, int], Inversion] = {}
        self.anchored_: dict[tuple[int, int], Anchored] = {}
        self.inversion_ids_: set[str] = set()
        for victim, target in self.pairs:
            result, inversion, anchored, inv_placed, _ = self._pair(
                model, victims[victim], victim, target, self.threshold_
            )
            pairs.append(result)
            self.inversions_[(victim, target)] = inversion
            self.anchored_[(victim, target)] = anchored
            self.inversion_ids_.update(p.sample_id for p in inv_placed)
            timings[f"pair {victim}->{target}"] = result.seconds
        self.pairs_ = tuple(pairs)
        rank = {"planted": 2, "adversarial": 1, "none": 0}
        best = max(pairs, key=lambda p: (rank[p.kind], p.flip_rate, -p.anchored_loss))
        self.best_ = best
        self.max_flip_rate_ = max(p.flip_rate for p in pairs)
        self.backdoored_ = any(p.backdoored for p in pairs)
        self.verdict_kind_ = best.kind
        timings["scan"] = time.perf_counter() - started
        self.timings_ = {k: round(v, 3) for k, v in timings.items()}
        return self

    def vocab_info(self) -> VocabInfo:
        v = self.vocab_
        return VocabInfo(v.tokenizer, v.languages, v.size_before, v.size_after, v.fallback)
