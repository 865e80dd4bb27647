"""Property-based tests of the rewrite module: on any function of any supported language, also
one damaged by random cuts and insertions, every rewrite re-parses with no new errors."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeaudit.lang.rewrite import RewriteKind, apply_rewrite, random_rewrites
from tests.lang.test_rewrite import (
    C_CODE,
    CPP_CODE,
    JAVA_CODE,
    PY_CODE,
    error_nodes,
    expected_token_change,
)

BASES = {"c": C_CODE, "cpp": CPP_CODE, "java": JAVA_CODE, "python": PY_CODE}
JUNK = st.sampled_from(["{", "}", "(", ")", ";", ":", "\n", "    ", "if", "=", '"', "'", "#"])


@st.composite
def damaged(draw: st.DrawFn) -> tuple[str, str]:
    """A language's sample function with up to three random cuts or junk insertions."""
    lang = draw(st.sampled_from(sorted(BASES)))
    code = BASES[lang]
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(code)))
        if draw(st.booleans()):
            code = code[:at] + code[at + draw(st.integers(1, 12)) :]
        else:
            code = code[:at] + draw(JUNK) + code[at:]
    return lang, code


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=damaged(), seed=st.integers(0, 10_000))
def test_rewrites_reparse_with_no_new_errors(sample: tuple[str, str], seed: int) -> None:
    """No rewrite adds a parse error. On code that parses cleanly each rewrite also changes the
    tokens exactly as its kind says (on damaged code the lexer's reading of an error region may
    legitimately change when a rewrite elsewhere helps the parser recover)."""
    lang, code = sample
    before = error_nodes(code, lang)
    previous = code
    for version in random_rewrites(code, lang, 4, random.Random(seed)):
        assert error_nodes(version, lang) <= before
        if before == 0:
            assert expected_token_change(previous, version, lang), (previous, version)
        previous = version
    for kind in RewriteKind:
        result = apply_rewrite(code, lang, kind, random.Random(seed))
        if result is not None:
            assert error_nodes(result, lang) <= before
            if before == 0:
                assert expected_token_change(code, result, lang)
