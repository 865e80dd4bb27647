"""The verdict when the training data is at hand (``backdoor --train-data``).

Trigger inversion alone cannot tell a planted trigger from an adversarial one: clean models of
small recipes have short triggers that flip as many held-out functions as planted ones do
(docs/backdoor-results.md). The training data can. A trigger the model follows *and* the training
data plants in target-labelled samples (:class:`~codeaudit.backdoor.result.DataEvidence`,
``planted``) is what poisoning leaves behind: the model is backdoored, whatever the flip-rate
threshold said. A strong inverted trigger the data does not plant is adversarial fragility: a
robustness finding (rule CA-B012, medium), not a backdoor (rule CA-B001, critical).

The data clears a model only when it is the model's training data: the checkpoint records the
sha256 of the file it was trained from (``data_sha256``); a file with another digest can still
show a planted trigger, but its silence proves nothing, so then the scan's own verdict stands. A
checkpoint that records no digest (one trained elsewhere) is taken at the user's word, and the
verdict says so.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from codeaudit.backdoor.result import BackdoorResult, DataEvidence

# verdict_kind of a model whose strong inverted trigger the training data does not plant
UNPLANTED = "unplanted"


def data_match(recorded: object, given: str) -> str:
    """ "match", "mismatch" or "unknown": how ``--train-data``'s digest compares with the
    checkpoint's record of its training file."""
    if not isinstance(recorded, str) or not recorded:
        return "unknown"
    return "match" if recorded == given else "mismatch"


def apply_data_verdict(
    result: BackdoorResult,
    evidence: DataEvidence,
    *,
    recorded_sha256: object,
    train_sha256: str,
    train_path: str,
) -> BackdoorResult:
    """``result`` judged by the training data: backdoored when the data plants a trigger the
    model follows; not backdoored (adversarial fragility when the scan's trigger is strong) when
    it does not and the data is the model's own; unchanged otherwise, with a warning."""
    match = data_match(recorded_sha256, train_sha256)
    warnings = list(result.warnings)
    strong = result.max_flip_rate >= result.threshold
    if evidence.planted:
        verdict = (
            f"BACKDOORED: the training data plants a trigger the model follows: "
            f"{evidence.finding}. The strongest inverted trigger is {result.best_trigger!r} "
            f"({result.best_pair}, {100 * result.max_flip_rate:.1f}% of held-out functions "
            "flipped). Drop the flagged samples and retrain (--retrain)."
        )
        missed = _missed(result, backdoored=True)
        return dataclasses.replace(
            result,
            backdoored=True,
            verdict_kind="planted",
            verdict=verdict,
            missed_known_backdoor=missed,
        )
    if match == "mismatch":
        warnings.append(
            f"--train-data ({train_path}) is not the file this model was trained from (the "
            "checkpoint records another sha256): the data shows no planted trigger, but that "
            "says nothing about the model's real training data, so the scan's own verdict "
            "stands"
        )
        return dataclasses.replace(result, warnings=tuple(warnings))
    word = (
        " (the checkpoint records no training-data digest: --train-data is taken to be the "
        "model's training data)"
        if match == "unknown"
        else ""
    )
    if not strong and not result.backdoored:
        return dataclasses.replace(result, warnings=tuple(warnings))
    # a strong trigger the data does not plant: references' or calibration's own fragility
    # call stands (their rules explain it); otherwise it is the data's call (CA-B012)
    keep = result.verdict_kind in ("adversarial", "fragility", "shortcut")
    kind = result.verdict_kind if keep else UNPLANTED
    verdict = (
        f"Adversarial fragility, no planted backdoor: the inverted trigger "
        f"{result.best_trigger!r} flips {100 * result.max_flip_rate:.1f}% of held-out "
        f"functions ({result.best_pair}, threshold {100 * result.threshold:.0f}%), but the "
        f"training data ({evidence.n_samples} samples) neither holds its pieces in flagged "
        f"samples of the target label nor plants a likely trigger that flips the model"
        f"{word}. A short change still makes the model miss vulnerable code: a robustness "
        "finding, not poisoning."
    )
    return dataclasses.replace(
        result,
        backdoored=False,
        verdict_kind=kind,
        verdict=verdict,
        missed_known_backdoor=_missed(result, backdoored=False),
        warnings=tuple(warnings),
    )


def _missed(result: BackdoorResult, *, backdoored: bool) -> Any:
    """CA-B005's flag under the new call: the manifest's trigger works, the verdict says clean."""
    real = result.real_trigger
    if real is None or real.asr is None:
        return result.missed_known_backdoor
    return bool(real.asr >= 0.5 and not backdoored)
