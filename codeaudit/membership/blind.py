"""The model-free ("blind") baseline: can the inputs alone tell members from non-members?

A membership attack's AUC measures memorisation only when members and non-members come from one
distribution. Non-members drawn from another data set (other projects, another period, another
generator) differ in vocabulary, length and style, and any attack, or a classifier that never
queries the model, separates them by that difference. Das, Zhang and Tramer, "Blind Baselines
Beat Membership Inference Attacks for Foundation Models" (2024, arXiv 2406.16201), show that such
shifted evaluations are invalid: a blind classifier beats the published attacks on them.

The baseline here reads what needs no model: a hashed bag of the code's lexer tokens and surface
statistics (length in characters, lines and tokens; identifier, keyword and literal shares; mean
identifier and line length; non-ASCII and whitespace shares), scored by a logistic regression
cross-fitted on the audit's own folds (:class:`~codeaudit.membership.attacks.blind.BlindAttack`).
It deliberately leaves out the unknown-token rate and the token count under the model's
tokenizer: the vocabulary (or BPE merges) was built on the training data, so on same-distribution
sets those are a leak the model exposes, not a shift.

Judgement (:func:`is_shift`): the sets differ in distribution, and the audit measures that rather
than the model, when the blind AUC is at least :data:`SHIFT_AUC` (0.75), or when it is at least
:data:`SHIFT_FLOOR` (0.6) with its 95% interval above 0.5 and within :data:`SHIFT_MARGIN` (0.05)
of the best model-based attack (the shift explains the attack). On same-distribution sets the
blind AUC is 0.5 up to noise (about +-0.05 at 200 samples a side).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codeaudit.data.samples import Sample
from codeaudit.membership.result import AttackRow

SHIFT_AUC = 0.75
SHIFT_FLOOR = 0.6
SHIFT_MARGIN = 0.05
HASH_FEATURES = 1 << 14
MAX_TOKENS = 4096  # per function: more adds little to a bag of words
STATISTICS = (
    "log-chars",
    "log-lines",
    "log-tokens",
    "identifier-share",
    "keyword-share",
    "literal-share",
    "mean-identifier-length",
    "log-mean-line-length",
    "non-ascii-share",
    "whitespace-share",
)


@dataclass(frozen=True)
class BlindInputs:
    """Model-free inputs of the candidates, in their order: a sparse hashed bag of lexer tokens
    (rows L2-normalised) and the surface statistics (:data:`STATISTICS`, one column each)."""

    bag: object  # scipy.sparse.csr_matrix [N, HASH_FEATURES]
    statistics: np.ndarray  # [N, len(STATISTICS)]

    def __len__(self) -> int:
        return len(self.statistics)


def _statistics(code: str, tokens: Sequence[object]) -> list[float]:
    from codeaudit.lang.lexer import TokenKind

    n_chars = max(1, len(code))
    lines = code.count("\n") + 1
    kinds = [t.kind for t in tokens]  # type: ignore[attr-defined]
    n_tokens = max(1, len(kinds))
    identifiers = [t.text for t in tokens if t.kind is TokenKind.IDENTIFIER]  # type: ignore[attr-defined]
    return [
        float(np.log1p(len(code))),
        float(np.log1p(lines)),
        float(np.log1p(len(kinds))),
        len(identifiers) / n_tokens,
        sum(k is TokenKind.KEYWORD for k in kinds) / n_tokens,
        sum(k is TokenKind.LITERAL for k in kinds) / n_tokens,
        float(np.mean([len(i) for i in identifiers])) if identifiers else 0.0,
        float(np.log1p(len(code) / lines)),
        sum(ord(c) > 127 for c in code) / n_chars,
        sum(c.isspace() for c in code) / n_chars,
    ]


def blind_inputs(samples: Sequence[Sample], default_lang: str) -> BlindInputs:
    """The model-free inputs of ``samples`` (each lexed in its own language, else
    ``default_lang``)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    from codeaudit.lang.lexer import lex

    streams = [lex(s.code, s.lang or default_lang, max_tokens=MAX_TOKENS).tokens for s in samples]
    vectorizer = HashingVectorizer(
        analyzer=_texts, n_features=HASH_FEATURES, alternate_sign=False, binary=True, norm="l2"
    )
    bag = vectorizer.transform(streams)
    stats = np.array(
        [_statistics(s.code, tokens) for s, tokens in zip(samples, streams, strict=True)],
        dtype=np.float64,
    ).reshape(len(samples), len(STATISTICS))
    return BlindInputs(bag=bag, statistics=stats)


def _texts(tokens: Sequence[object]) -> list[str]:
    return [t.text for t in tokens]  # type: ignore[attr-defined]


def is_shift(blind: AttackRow, best: AttackRow) -> bool:
    """Whether members and non-members differ in distribution enough that the attacks measure
    the difference rather than the model (module docstring)."""
    if blind.auc >= SHIFT_AUC:
        return True
    return (
        blind.auc >= SHIFT_FLOOR and blind.auc_ci[0] > 0.5 and blind.auc >= best.auc - SHIFT_MARGIN
    )
