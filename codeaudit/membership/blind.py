"""The model-free ("blind") baseline: can the inputs alone tell members from non-members?

A membership attack's AUC measures memorisation only when members and non-members come from one
distribution. Non-members drawn from another data set (other projects, another period, another
generator) differ in vocabulary, length and style, and any attack, or a classifier that never
queries the model, separates them by that difference. Das, Zhang and Tramer, "Blind Baselines
Beat Membership Inference Attacks for Foundation Models" (2024, arXiv 2406.16201), show that such
shifted evaluations are invalid: a blind classifier beats the published attacks on them.

The baseline here reads what needs no model: a hashed bag of the code's tokens and surface
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

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codeaudit.data.samples import Sample
from codeaudit.errors import CodeAuditError
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
    """Model-free inputs of the candidates, in their order: a sparse hashed bag of tokens
    (rows L2-normalised) and the surface statistics (:data:`STATISTICS`, one column each)."""

    bag: object  # scipy.sparse.csr_matrix [N, HASH_FEATURES]
    statistics: np.ndarray  # [N, len(STATISTICS)]

    def __len__(self) -> int:
        return len(self.statistics)


_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9][A-Za-z0-9_.]*|\S")


def _statistics(code: str, tokens: list[str], keywords: frozenset[str]) -> list[float]:
    n_chars = max(1, len(code))
    lines = code.count("\n") + 1
    n_tokens = max(1, len(tokens))
    words = [t for t in tokens if t[0].isalpha() or t[0] == "_"]
    identifiers = [w for w in words if w not in keywords]
    literals = sum(t[0].isdigit() or t[0] in "\"'" for t in tokens)
    return [
        float(np.log1p(len(code))),
        float(np.log1p(lines)),
        float(np.log1p(len(tokens))),
        len(identifiers) / n_tokens,
        (len(words) - len(identifiers)) / n_tokens,
        literals / n_tokens,
        float(np.mean([len(i) for i in identifiers])) if identifiers else 0.0,
        float(np.log1p(len(code) / lines)),
        (len(code) - len(code.encode("ascii", "ignore"))) / n_chars,
        (len(code) - sum(len(part) for part in code.split())) / n_chars,
    ]


def _keywords(lang: str) -> frozenset[str]:
    from codeaudit.lang.languages import reserved_words

    try:
        return reserved_words(lang)
    except CodeAuditError:  # a language codeaudit does not parse: every word is an identifier
        return frozenset()


def blind_inputs(samples: Sequence[Sample], default_lang: str) -> BlindInputs:
    """The model-free inputs of ``samples``. Tokens come from a plain regular expression
    (words, numbers, single symbols; at most :data:`MAX_TOKENS` a function), not the language's
    parser: a bag of tokens needs no more, and it costs a small fraction of the model's own
    tokenisation. Keywords are the language's reserved words (``sample.lang``, else
    ``default_lang``)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    keywords: dict[str, frozenset[str]] = {}
    streams = [_TOKEN.findall(s.code)[:MAX_TOKENS] for s in samples]
    rows = []
    for sample, tokens in zip(samples, streams, strict=True):
        lang = sample.lang or default_lang
        if lang not in keywords:
            keywords[lang] = _keywords(lang)
        rows.append(_statistics(sample.code, tokens, keywords[lang]))
    vectorizer = HashingVectorizer(
        analyzer=list, n_features=HASH_FEATURES, alternate_sign=False, binary=True, norm="l2"
    )
    stats = np.array(rows, dtype=np.float64).reshape(len(samples), len(STATISTICS))
    return BlindInputs(bag=vectorizer.transform(streams), statistics=stats)


def is_shift(blind: AttackRow, best: AttackRow) -> bool:
    """Whether members and non-members differ in distribution enough that the attacks measure
    the difference rather than the model (module docstring)."""
    if blind.auc >= SHIFT_AUC:
        return True
    return (
        blind.auc >= SHIFT_FLOOR and blind.auc_ci[0] > 0.5 and blind.auc >= best.auc - SHIFT_MARGIN
    )
