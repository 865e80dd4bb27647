"""A calibrated backdoor verdict: features of a scan, a small classifier fitted on shadow models,
and the calibration file (PICCOLO's classifier on inversion features, DBS's per-architecture loss
thresholds, MNTD's meta-classifier: learn the decision from clean and trojaned models of the same
recipe instead of one fixed flip-rate threshold).

``codeaudit backdoor-calibrate`` (:mod:`codeaudit.backdoor.calibrate`) trains clean and poisoned
shadow models of the suspect's recipe, scans each one exactly as a suspect will be scanned, turns
every scan into the feature vector below (:func:`scan_features`), fits a logistic regression on
standardised features and writes it, with its measured false-positive and detection rates, to a
JSON file (:func:`calibration_bytes`). ``codeaudit backdoor --calibration FILE`` reads it back
(:func:`read_calibration`: every field checked, the file is untrusted input), refuses it for a
model of another recipe or a scan with other settings (:func:`check_applies`), and turns the
suspect's scan into a probability and a category (:func:`judge`).

Features (every one read off the scan; "toward" is the pair whose target is the calibration's
target label, the label a backdoor forces, "other" the reverse pair):

``flip_toward``, ``flip_other``
    held-out flip rate of the anchored trigger of each pair (the scan's own verdict number).
``flip_asymmetry``
    ``flip_toward - flip_other``: a planted backdoor flips one direction only; adversarial
    fragility tends to flip both.
``inversion_flip_toward``, ``generalisation_gap``
    the flip rate on the inversion samples, and how much more it flips there than held out (an
    adversarial trigger fitted to its samples generalises less than a planted one).
``log_loss_toward``, ``log_loss_asymmetry``
    log10 of the anchored trigger's loss toward the target on the suspect alone (the inversion
    loss; cross-entropy toward the target, lower is a stronger trigger), and its difference to
    the other pair's.
``anchored_share``
    anchored trigger length / ``--trigger-len``: a planted trigger survives anchoring short.
``steps_share``
    GCG steps used / ``--steps`` toward the target: a planted trigger is found (and the search
    plateaus) early.
``shortcut_flip_max``
    the highest flip rate of a data shortcut toward the target (a name the trusted data ties to
    that label, inserted or as the name; 0 when none was measured).
``trigger_in_data``
    1 when the anchored trigger toward the target contains a data shortcut of the scan's data
    (possible with ``--keep-shortcuts`` only), else 0.
``log_rarest_piece``
    log10(1 + the number of the scan's functions that contain the anchored trigger's rarest
    piece): a planted name is absent from clean data, an adversarial trigger is often made of
    common pieces (``False print print``).
``reference_max``, ``reference_mean``, ``reference_margin`` (only with reference models)
    the anchored trigger's flip rate on the clean references (highest, mean), and
    ``flip_toward - reference_max``: a planted trigger flips the suspect, not the references.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codeaudit.errors import BackdoorError

FORMAT = "codeaudit-backdoor-calibration"
VERSION = 1
BASE_FEATURES = (
    "flip_toward",
    "flip_other",
    "flip_asymmetry",
    "inversion_flip_toward",
    "generalisation_gap",
    "log_loss_toward",
    "log_loss_asymmetry",
    "anchored_share",
    "steps_share",
    "shortcut_flip_max",
    "trigger_in_data",
    "log_rarest_piece",
)
REFERENCE_FEATURES = ("reference_max", "reference_mean", "reference_margin")
#: The settings of a scan that change what its features mean; a calibration applies only to
#: scans made with the same ones (seed, executor and device do not change them).
SCAN_SETTINGS = (
    "victim_samples",
    "heldout",
    "steps",
    "topk",
    "candidates",
    "trigger_len",
    "beta",
    "threshold",
    "keep_shortcuts",
    "patience",
    "references",
    "reference_weight",
    "reference_ratio",
)
_SETTING_KINDS: dict[str, type | tuple[type, ...]] = {
    "beta": (int, float),
    "threshold": (int, float),
    "reference_weight": (int, float, type(None)),
    "reference_ratio": (int, float, type(None)),
    "keep_shortcuts": bool,
}
#: The verdict's categories.
PLANTED, SHORTCUT, FRAGILITY, NONE = (
    "planted trigger",
    "data shortcut",
    "adversarial fragility",
    "no trigger found",
)
CATEGORIES = (PLANTED, SHORTCUT, FRAGILITY, NONE)
_LOSS_FLOOR = 1e-4
MAX_SHADOWS = 10_000  # a file claiming more is not one codeaudit wrote
# Logistic regression's inverse regularisation (standardised features, a few dozen shadows).
DEFAULT_C = 1.0


def feature_names(references: int) -> tuple[str, ...]:
    return BASE_FEATURES + (REFERENCE_FEATURES if references else ())


def scan_settings(config: Any) -> dict[str, Any]:
    """The settings of ``config`` (a BackdoorConfig or BackdoorCalibrateConfig) a calibration is
    tied to; ``references`` counts trained and given reference models together, and the
    reference settings are None without references."""
    from codeaudit.backdoor.scanner import DEFAULT_THRESHOLD

    given = len(getattr(config, "reference_models", ()) or ())
    refs = int(config.references) + given
    return {
        "victim_samples": int(config.victim_samples),
        "heldout": int(config.heldout),
        "steps": int(config.steps),
        "topk": int(config.topk),
        "candidates": int(config.candidates),
        "trigger_len": int(config.trigger_len),
        "beta": float(config.beta),
        "threshold": float(config.threshold if config.threshold is not None else DEFAULT_THRESHOLD),
        "keep_shortcuts": bool(config.keep_shortcuts),
        "patience": int(config.patience),
        "references": refs,
        # without references these settings change nothing: not recorded (None)
        "reference_weight": float(config.reference_weight) if refs else None,
        "reference_ratio": float(config.reference_ratio) if refs else None,
    }


# --------------------------------------------------------------------------------------------
# The recipe's fingerprint
# --------------------------------------------------------------------------------------------


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def tokenizer_hash(tokenizer: Any) -> str:
    """sha256 of the tokenizer's kind, input format and vocabulary (id for id)."""
    blob = {
        "kind": type(tokenizer).__name__,
        "input_format": str(getattr(tokenizer, "input_format", "")),
        "vocabulary": list(tokenizer.vocabulary()),
    }
    return hashlib.sha256(_canonical(blob)).hexdigest()


def recipe_record(model: Any, metadata: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """What a calibration is for: the architecture, the bounded training recipe read from the
    checkpoint (a one-line error past a bound), the labels and the tokenizer; ``fingerprint`` is
    the sha256 of the rest.

    The tokenizer part names how the recipe builds its tokenizer (kind, input format, and the
    vocabulary settings), not the vocabulary itself: codeaudit's models build their vocabulary
    (RNNs) or BPE merges (transformer) from their own training data, so two models of one recipe
    trained on different data read different vocabularies, and every shadow builds its own from
    its (poisoned) training data as the recipe does. The calibrated model's vocabulary hash is
    kept beside it (``tokenizer_sha256``), for the record."""
    from codeaudit.backdoor.references import recipe_for

    recipe = recipe_for(model, dict(metadata), seed)
    hyper = {
        "epochs": recipe.epochs,
        "lr": recipe.lr,
        "batch_size": recipe.batch_size,
        "max_len": recipe.max_len,
        "weight_decay": recipe.weight_decay,
        "min_freq": recipe.min_freq,
        "embed_dim": recipe.embed_dim,
        "hidden_dim": recipe.hidden_dim,
        "num_layers": recipe.num_layers,
        "dropout": recipe.dropout,
        "transformer": dict(recipe.transformer or {}),
    }
    record: dict[str, Any] = {
        "arch": str(model.arch),
        "hyperparameters": json.loads(_canonical(hyper)),
        "labels": [str(x) for x in model.labels],
        "tokenizer": {
            "kind": type(model.tokenizer).__name__,
            "input_format": str(getattr(model.tokenizer, "input_format", "")),
            "built_from": "training data",
            "min_freq": recipe.min_freq,
            "vocab_size": int(recipe.vocab_size),
        },
    }
    record["fingerprint"] = hashlib.sha256(_canonical(record)).hexdigest()
    record["tokenizer_sha256"] = tokenizer_hash(model.tokenizer)
    return record


# --------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------


def _pair(scanner: Any, target: int) -> tuple[Any, Any]:
    toward = next(p for p in scanner.pairs_ if p.target_label == target)
    other = next(p for p in scanner.pairs_ if p.target_label != target)
    return toward, other


def _log_loss(pair: Any) -> float:
    loss = pair.suspect_loss if pair.suspect_loss is not None else pair.anchored_loss
    return math.log10(max(float(loss), 0.0) + _LOSS_FLOOR)


def trigger_in_data(scanner: Any, index: Any, target: int) -> bool:
    """Whether the anchored trigger toward ``target`` contains a data shortcut toward it
    (``index``: a :class:`~codeaudit.backdoor.shortcuts.ShortcutIndex` of the scan's data)."""
    if index is None:
        return False
    toward, _ = _pair(scanner, target)
    return bool(toward.anchored_ids) and bool(index.contains_shortcut(toward.anchored_ids, target))


def shortcut_index(scanner: Any, model: Any, samples: Sequence[Any]) -> Any:
    """The scan's shortcut index, or (with ``--keep-shortcuts``, where the scan builds none) one
    built the same way from its data."""
    if getattr(scanner, "shortcut_index_", None) is not None:
        return scanner.shortcut_index_
    from codeaudit.backdoor.shortcuts import ShortcutIndex

    rows = [list(e.ids) for e in model.encode(list(samples))]
    return ShortcutIndex(
        rows,
        [int(s.label) for s in samples],
        scanner.vocab_.ids.tolist(),
        scanner.vocab_.size_before,
        max_n=scanner.trigger_len,
    )


def scan_features(scanner: Any, target: int, in_data: bool, index: Any) -> dict[str, float]:
    """The feature vector of one fitted :class:`~codeaudit.backdoor.scanner.BackdoorScanner`
    (see the module docstring), by name; ``index``: the shortcut index of the scan's data."""
    toward, other = _pair(scanner, target)
    rarest = min((sum(index.support((int(t),), target)) for t in toward.anchored_ids), default=0)
    shortcut_rates = [
        rate
        for c in toward.shortcuts
        for rate in (c.flip_rate, c.flip_rate_renamed)
        if rate is not None
    ]
    out = {
        "flip_toward": float(toward.flip_rate),
        "flip_other": float(other.flip_rate),
        "flip_asymmetry": float(toward.flip_rate - other.flip_rate),
        "inversion_flip_toward": float(toward.inversion_flip_rate),
        "generalisation_gap": float(toward.inversion_flip_rate - toward.flip_rate),
        "log_loss_toward": _log_loss(toward),
        "log_loss_asymmetry": _log_loss(toward) - _log_loss(other),
        "anchored_share": len(toward.anchored_ids) / max(int(scanner.trigger_len), 1),
        "steps_share": float(toward.steps) / max(int(scanner.steps), 1),
        "shortcut_flip_max": float(max(shortcut_rates, default=0.0)),
        "trigger_in_data": 1.0 if in_data else 0.0,
        "log_rarest_piece": math.log10(1 + rarest),
    }
    if scanner.references_:
        top = toward.reference_flip_max if toward.reference_flip_max is not None else 0.0
        mean = toward.reference_flip_mean if toward.reference_flip_mean is not None else 0.0
        out.update(
            reference_max=float(top),
            reference_mean=float(mean),
            reference_margin=float(toward.flip_rate - top),
        )
    return out


# --------------------------------------------------------------------------------------------
# The classifier, the operating point, held-out rates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Classifier:
    """Logistic regression on standardised features: ``p = sigmoid(w . (x - mean) / scale + b)``."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def probability(self, x: Sequence[float]) -> float:
        z = (np.asarray(x, float) - np.asarray(self.mean)) / np.asarray(self.scale)
        logit = float(z @ np.asarray(self.coef) + self.intercept)
        return float(1.0 / (1.0 + math.exp(-max(min(logit, 700.0), -700.0))))


def fit_classifier(x: np.ndarray, y: np.ndarray, c: float = DEFAULT_C) -> Classifier:
    """Standardise (a constant feature gets scale 1) and fit an L2 logistic regression with
    balanced class weights."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    model = LogisticRegression(C=c, class_weight="balanced", max_iter=1000)
    model.fit((x - mean) / scale, y)
    return Classifier(
        tuple(map(float, mean)),
        tuple(map(float, scale)),
        tuple(map(float, model.coef_[0])),
        float(model.intercept_[0]),
    )


def out_of_fold(x: np.ndarray, y: np.ndarray, c: float = DEFAULT_C) -> np.ndarray:
    """Every shadow's score from a classifier fitted without it (leave one out); a fold whose
    training part lacks a class scores its shadow by that part's base rate."""
    scores = np.zeros(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        if len(set(y[keep].tolist())) < 2:
            scores[i] = float(y[keep].mean()) if keep.any() else 0.5
            continue
        scores[i] = fit_classifier(x[keep], y[keep], c).probability(x[i])
    return scores


def operating_threshold(scores: np.ndarray, y: np.ndarray, max_fpr: float) -> float:
    """The lowest threshold whose false-positive rate on ``scores`` of clean shadows (y == 0) is
    at most ``max_fpr``: halfway between the highest clean score that must stay below it and the
    next score above; a model is called backdoored at probability >= threshold."""
    negatives = np.sort(scores[y == 0])[::-1]
    allowed = math.floor(max_fpr * len(negatives) + 1e-9)
    boundary = 0.0 if allowed >= len(negatives) else float(negatives[allowed])
    above = [float(s) for s in scores if s > boundary]
    upper = min(above) if above else 1.0
    return float(min(max((boundary + upper) / 2, 1e-6), 1.0))


def rates(scores: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, Any]:
    """False-positive and detection rates at ``threshold`` with Wilson 95% intervals, and AUC."""
    from codeaudit.metrics import wilson_interval

    neg, pos = scores[y == 0], scores[y == 1]
    fp, tp = int((neg >= threshold).sum()), int((pos >= threshold).sum())
    auc = None
    if len(neg) and len(pos):
        wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
        auc = float(wins / (len(pos) * len(neg)))
    return {
        "n_clean": len(neg),
        "n_poisoned": len(pos),
        "false_positives": fp,
        "detected": tp,
        "fpr": fp / len(neg) if len(neg) else None,
        "tpr": tp / len(pos) if len(pos) else None,
        "fpr_ci": list(wilson_interval(fp, len(neg))) if len(neg) else None,
        "tpr_ci": list(wilson_interval(tp, len(pos))) if len(pos) else None,
        "auc": auc,
    }


# --------------------------------------------------------------------------------------------
# The file
# --------------------------------------------------------------------------------------------


def _checksum(doc: Mapping[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return hashlib.sha256(_canonical(body)).hexdigest()


def calibration_bytes(doc: dict[str, Any]) -> bytes:
    """The file's bytes: the document with its ``checksum`` (sha256 of the rest, canonical
    JSON), pretty-printed."""
    doc = dict(doc)
    doc["checksum"] = _checksum(doc)
    return (json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


@dataclass(frozen=True)
class Calibration:
    """A calibration file, read and checked."""

    path: str
    recipe: dict[str, Any]
    scan: dict[str, Any]
    target_label: int
    features: tuple[str, ...]
    classifier: Classifier
    threshold: float
    max_fpr: float
    heldout: dict[str, Any]
    n_shadows: int
    sha256: str

    def probability(self, values: Mapping[str, float]) -> float:
        return self.classifier.probability([values[name] for name in self.features])


class _Reader:
    """Checks one field at a time; every failure is one line naming the field."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, what: str) -> BackdoorError:
        return BackdoorError(
            f"--calibration {self.path}: {where}: {what} (not a valid calibration)"
        )

    def get(self, doc: Any, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
        name = f"{where}{key}"
        if not isinstance(doc, dict) or key not in doc:
            raise self.fail(name, "missing")
        value = doc[key]
        bad_bool = isinstance(value, bool) and bool not in (
            kind if isinstance(kind, tuple) else (kind,)
        )
        if bad_bool or not isinstance(value, kind):
            raise self.fail(name, f"{type(value).__name__} where {_kind_name(kind)} was expected")
        return value

    def number(self, doc: Any, key: str, low: float, high: float, where: str = "") -> float:
        value = float(self.get(doc, key, (int, float), where))
        if not (math.isfinite(value) and low <= value <= high):
            raise self.fail(f"{where}{key}", f"{value!r} is not in [{low:g}, {high:g}]")
        return value

    def numbers(self, doc: Any, key: str, n: int, where: str = "", positive: bool = False) -> tuple:
        values = self.get(doc, key, list, where)
        if len(values) != n:
            raise self.fail(f"{where}{key}", f"{len(values)} values for {n} features")
        out = []
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise self.fail(f"{where}{key}", f"{v!r} is not a finite number")
            if positive and not v > 0:
                raise self.fail(f"{where}{key}", f"{v!r} is not > 0")
            if abs(v) > 1e12:
                raise self.fail(f"{where}{key}", f"{v!r} is out of range")
            out.append(float(v))
        return tuple(out)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def read_calibration(path: str) -> Calibration:
    """Read and check a calibration file (untrusted input): its format and version, its checksum,
    every field's type and range, the features it names; one-line BackdoorError otherwise."""
    read = _Reader(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(16 * 1024 * 1024 + 1)
    except OSError as exc:
        raise BackdoorError(f"--calibration {path}: cannot read it ({exc.strerror})") from None
    if len(raw) > 16 * 1024 * 1024:
        raise read.fail("file", "larger than 16 MiB")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise read.fail("file", f"not JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(doc, dict):
        raise read.fail("file", "not a JSON object")
    if read.get(doc, "format", str) != FORMAT:
        raise read.fail("format", f"{str(doc['format'])[:40]!r} is not {FORMAT!r}")
    version = read.get(doc, "version", int)
    if version != VERSION:
        raise read.fail("version", f"{version} is not {VERSION} (made by another codeaudit)")
    checksum = read.get(doc, "checksum", str)
    if checksum != _checksum(doc):
        raise read.fail("checksum", "does not match the content: the file was changed")
    recipe = read.get(doc, "recipe", dict)
    read.get(recipe, "arch", str, "recipe.")
    read.get(recipe, "hyperparameters", dict, "recipe.")
    labels = read.get(recipe, "labels", list, "recipe.")
    if len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise read.fail("recipe.labels", "not a list of at least two label names")
    tokenizer = read.get(recipe, "tokenizer", dict, "recipe.")
    read.get(tokenizer, "kind", str, "recipe.tokenizer.")
    read.get(tokenizer, "min_freq", int, "recipe.tokenizer.")
    read.get(recipe, "tokenizer_sha256", str, "recipe.")
    fingerprint = read.get(recipe, "fingerprint", str, "recipe.")
    body = {k: v for k, v in recipe.items() if k not in ("fingerprint", "tokenizer_sha256")}
    if hashlib.sha256(_canonical(body)).hexdigest() != fingerprint:
        raise read.fail("recipe.fingerprint", "does not match the recipe it describes")
    scan = read.get(doc, "scan", dict)
    if sorted(scan) != sorted(SCAN_SETTINGS):
        raise read.fail("scan", f"settings {sorted(scan)} are not {sorted(SCAN_SETTINGS)}")
    for key in SCAN_SETTINGS:
        read.get(scan, key, _SETTING_KINDS.get(key, int), "scan.")
    references = int(scan["references"])
    target = int(read.number(doc, "target_label", 0, len(labels) - 1))
    names = read.get(doc, "features", list)
    if tuple(names) != feature_names(references):
        raise read.fail(
            "features",
            f"{names!r} are not the features of this version ({list(feature_names(references))})",
        )
    n = len(names)
    model = read.get(doc, "model", dict)
    if read.get(model, "type", str, "model.") != "logistic-regression":
        raise read.fail("model.type", f"{str(model['type'])[:40]!r} is not 'logistic-regression'")
    classifier = Classifier(
        read.numbers(model, "mean", n, "model."),
        read.numbers(model, "scale", n, "model.", positive=True),
        read.numbers(model, "coef", n, "model."),
        read.number(model, "intercept", -1e12, 1e12, "model."),
    )
    point = read.get(doc, "operating_point", dict)
    threshold = read.number(point, "threshold", 1e-9, 1.0, "operating_point.")
    max_fpr = read.number(point, "max_fpr", 0.0, 1.0, "operating_point.")
    heldout = read.get(doc, "heldout", dict)
    n_clean = int(read.number(heldout, "n_clean", 1, MAX_SHADOWS, "heldout."))
    n_poisoned = int(read.number(heldout, "n_poisoned", 1, MAX_SHADOWS, "heldout."))
    fp = int(read.number(heldout, "false_positives", 0, n_clean, "heldout."))
    tp = int(read.number(heldout, "detected", 0, n_poisoned, "heldout."))
    fpr = read.number(heldout, "fpr", 0.0, 1.0, "heldout.")
    tpr = read.number(heldout, "tpr", 0.0, 1.0, "heldout.")
    if abs(fpr - fp / n_clean) > 1e-9 or abs(tpr - tp / n_poisoned) > 1e-9:
        raise read.fail("heldout", "the rates do not match their counts")
    for key in ("fpr_ci", "tpr_ci"):
        low, high = read.numbers(heldout, key, 2, "heldout.")
        if not 0.0 <= low <= high <= 1.0:
            raise read.fail(f"heldout.{key}", f"[{low}, {high}] is not an interval in [0, 1]")
    shadows = read.get(doc, "shadows", list)
    if not 0 < len(shadows) <= MAX_SHADOWS or not all(isinstance(s, dict) for s in shadows):
        raise read.fail("shadows", "not a list of shadow records")
    return Calibration(
        path=path,
        recipe=recipe,
        scan=dict(scan),
        target_label=target,
        features=tuple(names),
        classifier=classifier,
        threshold=threshold,
        max_fpr=max_fpr,
        heldout=dict(heldout),
        n_shadows=len(shadows),
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def check_applies(
    calibration: Calibration, model: Any, metadata: Mapping[str, Any], config: Any
) -> None:
    """Refuse (one line) a calibration made for another recipe (architecture, hyperparameters,
    labels, tokenizer) or for scans with other settings."""
    record = recipe_record(model, metadata, int(config.seed))
    if record["fingerprint"] != calibration.recipe["fingerprint"]:
        diff = [
            key
            for key in ("arch", "hyperparameters", "labels", "tokenizer")
            if record.get(key) != calibration.recipe.get(key)
        ]
        raise BackdoorError(
            f"--calibration {calibration.path}: made for another recipe (differs in "
            f"{', '.join(diff) or 'its fingerprint'}); calibrate for this model with "
            "codeaudit backdoor-calibrate"
        )
    mine = scan_settings(config)
    differ = [k for k in SCAN_SETTINGS if mine[k] != calibration.scan[k]]
    if differ:
        shown = ", ".join(f"{k} {mine[k]!r} vs {calibration.scan[k]!r}" for k in differ[:3])
        raise BackdoorError(
            f"--calibration {calibration.path}: made for scans with other settings ({shown}); "
            "scan with the calibration's settings or calibrate again"
        )


# --------------------------------------------------------------------------------------------
# The verdict
# --------------------------------------------------------------------------------------------


def category(
    probability: float,
    threshold: float,
    flip_max: float,
    scan_threshold: float,
    shortcut_flip_max: float | None,
    in_data: bool,
) -> str:
    """planted trigger at probability >= the operating threshold; else data shortcut when the
    trigger is one of the data's label-pure names or such a name flips at least the scan's
    threshold; else adversarial fragility when the trigger still flips that much; else none."""
    if probability >= threshold:
        return PLANTED
    if in_data or (shortcut_flip_max is not None and shortcut_flip_max >= scan_threshold):
        return SHORTCUT
    if flip_max >= scan_threshold:
        return FRAGILITY
    return NONE


def judge(scanner: Any, model: Any, samples: Sequence[Any], calibration: Calibration) -> Any:
    """The calibrated verdict of a fitted scanner (a
    :class:`~codeaudit.backdoor.calibration_result.CalibratedVerdict`)."""
    from codeaudit.backdoor.calibration_result import CalibratedVerdict, HeldoutRates

    target = calibration.target_label
    index = shortcut_index(scanner, model, samples)
    in_data = trigger_in_data(scanner, index, target)
    values = scan_features(scanner, target, in_data, index)
    probability = calibration.probability(values)
    shortcut_rates = [
        rate
        for p in scanner.pairs_
        for c in p.shortcuts
        for rate in (c.flip_rate, c.flip_rate_renamed)
        if rate is not None
    ]
    found = category(
        probability,
        calibration.threshold,
        float(scanner.max_flip_rate_),
        float(scanner.threshold_),
        max(shortcut_rates) if shortcut_rates else None,
        in_data,
    )
    h = calibration.heldout
    return CalibratedVerdict(
        category=found,
        probability=round(probability, 6),
        threshold=calibration.threshold,
        max_fpr=calibration.max_fpr,
        heldout=HeldoutRates(
            n_clean=int(h["n_clean"]),
            n_poisoned=int(h["n_poisoned"]),
            false_positives=int(h["false_positives"]),
            detected=int(h["detected"]),
            fpr=float(h["fpr"]),
            tpr=float(h["tpr"]),
            fpr_ci=(float(h["fpr_ci"][0]), float(h["fpr_ci"][1])),
            tpr_ci=(float(h["tpr_ci"][0]), float(h["tpr_ci"][1])),
            auc=float(h["auc"]) if isinstance(h.get("auc"), (int, float)) else None,
        ),
        n_shadows=calibration.n_shadows,
        calibration=calibration.path,
        sha256=calibration.sha256,
        fingerprint=str(calibration.recipe["fingerprint"]),
        features={k: round(float(values[k]), 6) for k in calibration.features},
    )


def verdict_text(c: Any, scanner: Any) -> str:
    """The report's verdict line for a calibrated verdict."""
    best = scanner.best_
    trigger = (
        f"the anchored trigger {best.anchored_text!r} flips {100 * best.flip_rate:.1f}% of "
        f"{best.n_heldout} held-out {best.victim_name} functions to {best.target_name}"
    )
    rates = (
        f"probability of a planted trigger {c.probability:.2f} (operating point "
        f"{c.threshold:.2f}; held-out FPR {100 * c.heldout.fpr:.1f}% of {c.heldout.n_clean} clean "
        f"shadows, TPR {100 * c.heldout.tpr:.1f}% of {c.heldout.n_poisoned} poisoned)"
    )
    if c.category == PLANTED:
        return (
            f"BACKDOORED (planted trigger): {trigger}; {rates}. Its scan looks like those of "
            "the poisoned shadow models of this recipe: inspect the trigger and the training "
            "data's provenance."
        )
    if c.category == SHORTCUT:
        return (
            f"Data shortcut, no planted backdoor: {trigger}; {rates}. A name the data itself "
            "ties to one label flips the model: audit the training data for label-pure names."
        )
    if c.category == FRAGILITY:
        return (
            f"Adversarial fragility, no planted backdoor: {trigger}; {rates}. A short input "
            "change flips the model, but its scan looks like those of clean shadow models of "
            "this recipe: nothing says it was planted."
        )
    return f"No trigger found: {trigger}; {rates}."
