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


def test_the_kept_preorder_gives_the_signature_a_walk_gives() -> None:
    from codeaudit.data.synthetic import generate
    from codeaudit.lang.languages import language_support
    from codeaudit.lang.tree import Source, has_signature, signature, walk

    codes = [CODE, *(r["func"] for r in generate(6, seed=3))]
    for code in codes:
        src = Source(code, language_support("c"))
        table = src.preorder()
        assert table.entries == signature(src.root)
        for node in walk(src.root):  # every node as the edit's target
            expected = signature(src.root, node, rewrite._wrap)
            assert table.replaced(node, rewrite._wrap) == expected
            assert has_signature(src.root, table.entries)
        whole = table.entries
        assert not has_signature(src.root, whole[:-1])  # one node short
        assert not has_signature(src.root, [*whole, whole[-1]])  # one node more
        changed = [*whole]
        changed[len(whole) // 2] = ("no_such_node", True, False)
        assert not has_signature(src.root, changed)
        other = Source(code.replace("{", "{ ;", 1), language_support("c"))  # another tree
        assert not has_signature(other.root, whole)


def test_candidate_sites_are_found_once_per_kept_source() -> None:
    rewrite._source.cache_clear()
    calls = []
    finder = rewrite._FINDERS[RewriteKind.REDUNDANT_PARENS]

    def counting(src):  # type: ignore[no-untyped-def]
        calls.append(src)
        return finder(src)

    rewrite._FINDERS[RewriteKind.REDUNDANT_PARENS] = counting
    try:
        results = [
            apply_rewrite(CODE, "c", RewriteKind.REDUNDANT_PARENS, random.Random(seed))
            for seed in range(5)
        ]
    finally:
        rewrite._FINDERS[RewriteKind.REDUNDANT_PARENS] = finder
    assert len(calls) == 1
    assert len(set(results)) > 1  # each call still draws its own site
