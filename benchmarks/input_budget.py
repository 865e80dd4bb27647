"""Seconds per function at each per-input budget's limit (issue 16).

codeaudit bounds the work one function can cost with deterministic budgets (docs/reliability.md,
"Budgets per input"): ids per function (``MAX_LEN_CAP``), characters a Hugging Face tokenizer
encodes (``MAX_CHARS_PER_ID`` per id) and how much its normaliser may lengthen them
(``MAX_NORMALISER_EXPANSION``), and the rewriter's syntax-tree budget (``MAX_REWRITE_DEPTH``,
``MAX_REWRITE_NODES``). This benchmark builds, for every per-function step, the costliest input
the budgets still let through (and the first one past them), times the step on it, and prints a
Markdown table of seconds per function: the figure docs/reliability.md quotes as the measured
seconds-per-function bound.

    python benchmarks/input_budget.py --threads 1 --repeats 3

Every step runs in this process with ``--threads`` torch threads; medians of ``--repeats``.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from collections.abc import Callable


def _median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _flat_c(statements: int) -> str:
    return "int f(int a, int b){" + "a = a + b;" * statements + "return a;}"


def _nested_c(depth: int) -> str:
    return "int f(int a){" + "if(a){" * depth + "a++;" + "}" * depth + "return a;}"


def _nodes(code: str) -> int:
    from codeaudit.lang.languages import language_support
    from codeaudit.lang.tree import Source, walk

    src = Source(code, language_support("c"))
    return sum(1 for _ in walk(src.root))


def _flat_within_nodes(limit: int) -> str:
    """The longest flat C function (``a = a + b;`` statements) with at most ``limit`` nodes."""
    per = _nodes(_flat_c(101)) - _nodes(_flat_c(100))
    base = _nodes(_flat_c(0))
    n = (limit - base) // per
    while _nodes(_flat_c(n)) > limit:
        n -= 1
    return _flat_c(n)


def _rnn_tokenizer() -> object:
    from codeaudit.lang.lexer import lex
    from codeaudit.models.tokenizer import VocabTokenizer

    return VocabTokenizer.build([lex(_flat_c(50), "c").tokens], min_freq=1)


def _hf_tokenizer(expansion: int) -> object:
    """A byte-level BPE whose normaliser lengthens every ``a`` ``expansion`` times (the largest
    expansion codeaudit accepts is MAX_NORMALISER_EXPANSION)."""
    from tokenizers import normalizers

    from codeaudit.lang.lexer import lex
    from codeaudit.models.tokenizer import HFTokenizer, joined_text

    tok = HFTokenizer.train_bpe([joined_text(lex(_flat_c(200), "c").tokens)[0]], vocab_size=300)
    tok.tok.backend_tokenizer.normalizer = normalizers.Replace("a", "a" * expansion)
    return tok


def rows(repeats: int) -> list[tuple[str, str, float]]:
    from codeaudit.backdoor.triggers import TriggerSpec, TriggerType, insert_trigger
    from codeaudit.lang.rewrite import RewriteBudgetError, random_rewrites
    from codeaudit.lang.tree import MAX_REWRITE_DEPTH, MAX_REWRITE_NODES
    from codeaudit.models.input_format import MAX_LEN_CAP
    from codeaudit.models.tokenizer import MAX_CHARS_PER_ID, MAX_NORMALISER_EXPANSION

    out: list[tuple[str, str, float]] = []
    rnn = _rnn_tokenizer()
    huge = _flat_c(5_000_000)  # 50 MB
    out.append(
        (
            "RNN encode (lex + ids), max_len 4096",
            f"a {len(huge) / 1e6:.0f} MB function",
            _median_seconds(lambda: rnn.encode(huge, "c", MAX_LEN_CAP), repeats),  # type: ignore[attr-defined]
        )
    )
    hf = _hf_tokenizer(MAX_NORMALISER_EXPANSION)
    for max_len in (512, 4096):
        text = _flat_c(MAX_CHARS_PER_ID * max_len // 10 + 10)
        out.append(
            (
                f"Hugging Face encode, max_len {max_len}, normaliser x{MAX_NORMALISER_EXPANSION}",
                f"a {len(text) / 1e3:.0f} KB function (read: {MAX_CHARS_PER_ID * max_len:,} chars)",
                _median_seconds(lambda t=text, m=max_len: hf.encode(t, "c", m), repeats),  # type: ignore[attr-defined]
            )
        )
    # a rewrite adds a few nodes and the next one works on its output: 2% below the limit keeps
    # all eight within the budget (a function that a rewrite pushes past it is skipped)
    at_nodes = _flat_within_nodes(MAX_REWRITE_NODES * 98 // 100)
    assert len(random_rewrites(at_nodes, "c", 8, random.Random(0))) == 8
    deep = _nested_c(MAX_REWRITE_DEPTH // 3)  # each `if(a){` adds about 3 levels
    over = _nested_c(MAX_REWRITE_DEPTH * 100)

    def rewrites(code: str) -> Callable[[], object]:
        def run() -> object:
            try:
                return random_rewrites(code, "c", 8, random.Random(0))
            except RewriteBudgetError:
                return None

        return run

    kb = len(at_nodes) / 1e3
    out.append(
        (
            "8 rewrites (membership --boundary-samples, harden)",
            f"flat, {MAX_REWRITE_NODES * 98 // 100:,} nodes ({kb:.0f} KB)",
            _median_seconds(rewrites(at_nodes), repeats),
        )
    )
    out.append(
        (
            "8 rewrites",
            f"nested {MAX_REWRITE_DEPTH // 3} `if`s deep (within the depth budget)",
            _median_seconds(rewrites(deep), repeats),
        )
    )
    out.append(
        (
            "8 rewrites",
            "nested 100,000 `if`s deep (over budget: skipped)",
            _median_seconds(rewrites(over), repeats),
        )
    )
    for kind, trigger in (
        (TriggerType.IDENTIFIER, "testo_init"),
        (TriggerType.DEADCODE, "int unused_var = 0;"),
    ):
        spec = TriggerSpec(type=kind, trigger=trigger, target_label=0)
        out.append(
            (
                f"trigger insertion ({kind.value}: poison, backdoor --manifest)",
                f"flat, {MAX_REWRITE_NODES * 98 // 100:,} nodes",
                _median_seconds(
                    lambda s=spec: insert_trigger(at_nodes, "c", s, random.Random(0)), repeats
                ),
            )
        )
    return out


def scaling(repeats: int) -> list[tuple[int, float]]:
    """Eight rewrites of flat functions of a quarter, a half and all of the node budget."""
    from codeaudit.lang.rewrite import random_rewrites
    from codeaudit.lang.tree import MAX_REWRITE_NODES

    out = []
    for share in (4, 2, 1):
        code = _flat_within_nodes(MAX_REWRITE_NODES * 98 // 100 // share)
        seconds = _median_seconds(
            lambda c=code: random_rewrites(c, "c", 8, random.Random(0)), repeats
        )
        out.append((_nodes(code), seconds))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--scaling", action="store_true", help="also: rewrite time against the node count"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    print(f"# {platform.machine()}, torch threads {args.threads}, medians of {args.repeats}\n")
    print("| step | input at the budget's limit | seconds per function |")
    print("| --- | --- | --- |")
    for step, what, seconds in rows(args.repeats):
        print(f"| {step} | {what} | {seconds:.3f} |")
    if args.scaling:
        print("\n| syntax-tree nodes | 8 rewrites, seconds |\n| --- | --- |")
        for nodes, seconds in scaling(args.repeats):
            print(f"| {nodes:,} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
