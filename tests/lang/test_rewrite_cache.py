"""The rewriter keeps the parse and analysis of the last few functions (harden rewrites each
function 8 times in a row): a kept one must give exactly the rewrites a fresh one gives."""

from __future__ import annotations

import random

from codeaudit.lang import rewrite
from codeaudit.lang.rewrite import RewriteKind, apply_rewrite, random_rewrites

CODE = """int copy(char *dst, const char *src, int n) {
  int i = 0;
  int total = 0;
  for (i = 0; i < n; i++) {
    if (src[i] == 0) break;
    dst[i] = src[i];
    total = total + 1;
  }
  return total;
}
"""


def _fresh_rewrites(seeds: range) -> list[list[str]]:
    rewrite._source.cache_clear()
    rewrite._analysis.cache_clear()
    out = []
    for seed in seeds:
        out.append(random_rewrites(CODE, "c", 1, random.Random(seed)))
        rewrite._source.cache_clear()  # every call starts cold
        rewrite._analysis.cache_clear()
    return out


def test_kept_parse_gives_the_same_rewrites_as_a_fresh_one() -> None:
    cold = _fresh_rewrites(range(24))
    warm = [random_rewrites(CODE, "c", 1, random.Random(seed)) for seed in range(24)]
    assert warm == cold
    assert len({tuple(v) for v in warm}) > 4  # the seeds really draw different rewrites
    info = rewrite._source.cache_info()
    assert info.hits > 0  # the parse was reused


def test_every_kind_reuses_the_parse_and_the_cache_stays_small() -> None:
    rewrite._source.cache_clear()
    for kind in RewriteKind:
        first = apply_rewrite(CODE, "c", kind, random.Random(1))
        again = apply_rewrite(CODE, "c", kind, random.Random(1))
        assert first == again and first != CODE
    assert rewrite._source.cache_info().misses == 1
    for k in range(3 * rewrite._KEPT):
        apply_rewrite(
            CODE.replace("total", f"t{k}"), "c", RewriteKind.SWAP_COMPARISON, random.Random(0)
        )
    assert rewrite._source.cache_info().currsize <= rewrite._KEPT
