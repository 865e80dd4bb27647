"""Fuzz the data loaders and the tokenizers for a bounded time.

    python scripts/fuzz.py [--target loader|tokenizer|all] [--seconds 60]
        [--engine atheris|mutate] [--artifacts DIR]

Targets (each input is raw bytes):

``loader``
    The bytes become a data file (the first byte picks the extension: .jsonl, .json, .csv, .tsv,
    .txt or none; the second the options: --skip-invalid, labels required) and go through
    :func:`codeaudit.data.loader.load_dataset`. Anything but a dataset or a one-line
    :class:`~codeaudit.errors.DataError` naming the file is a crash.
``tokenizer``
    The bytes become a language, a maximum length and source text, which are lexed in that
    language and encoded by a vocabulary tokenizer and a byte-level BPE tokenizer. Any exception,
    an encoding longer than the maximum, an id out of range, a token whose text is not the
    source at its span, or a truncation flag that disagrees with an untruncated encoding is a
    crash.

Engines: ``atheris`` (coverage-guided libFuzzer, ``pip install atheris``; the default when it
imports) or ``mutate`` (a seeded random mutator over the same seed corpus, no dependency). A crash
is written to ``--artifacts`` (default benchmarks/out/fuzz/) as ``crash-TARGET-SHA``; copy it to
tests/reliability/fuzz_regressions/TARGET/ to make it a regression test
(tests/reliability/test_fuzz_regressions.py replays every file there through the same target).

Exit status: 0 when no crash was found, 1 when one was (its file is named on stderr), 2 on bad
arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGETS = ("loader", "tokenizer")
SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", "")
LANGS = ("c", "cpp", "java", "python")
_TMP = Path(tempfile.mkdtemp(prefix="codeaudit-fuzz-"))


# -- targets ---------------------------------------------------------------------------------------


def fuzz_loader(data: bytes) -> None:
    """One loader run; raises on anything the loader must never do."""
    from codeaudit.data.loader import load_dataset
    from codeaudit.errors import DataError

    if len(data) < 2:
        return
    suffix = SUFFIXES[data[0] % len(SUFFIXES)]
    path = _TMP / f"input{suffix}"
    path.write_bytes(data[2:])
    try:
        dataset = load_dataset(
            path, skip_invalid=bool(data[1] & 1), require_labels=bool(data[1] & 2)
        )
    except DataError as exc:
        message = str(exc)
        if "\n" in message or "\r" in message or not message.startswith(str(path)):
            raise AssertionError(f"bad error message: {message[:200]!r}") from None
        if len(message) > 600:
            raise AssertionError(f"error message of {len(message)} characters") from None
        return
    if not len(dataset) or any(not s.code.strip() for s in dataset):
        raise AssertionError("a dataset with no samples or an empty sample")
    for sample in dataset:
        for text in (sample.id, sample.code, sample.lang or "", sample.cwe or ""):
            text.encode("utf-8")  # every string is valid Unicode (reports must hold it)


@cache
def _tokenizers() -> tuple[object, object]:
    from codeaudit.data.synthetic import generate
    from codeaudit.lang.lexer import lex
    from codeaudit.models.tokenizer import HFTokenizer, VocabTokenizer, joined_text

    streams = [lex(r["func"], "c").tokens for r in generate(40, seed=0)]
    vocab = VocabTokenizer.build(streams, min_freq=1, max_size=500)
    bpe = HFTokenizer.train_bpe((joined_text(s)[0] for s in streams), vocab_size=400)
    return vocab, bpe


def fuzz_tokenizer(data: bytes) -> None:
    from codeaudit.lang.lexer import lex

    if len(data) < 2:
        return
    lang = LANGS[data[0] % len(LANGS)]
    max_len = 3 + data[1] % 62
    code = data[2:].decode("utf-8", "replace")
    tokens = lex(code, lang).tokens
    end = 0
    for token in tokens:
        if token.text != code[token.start : token.end] or not token.text or token.start < end:
            raise AssertionError(f"token {token!r} is not the source at its span")
        end = token.end
    for tok in _tokenizers():
        enc = tok.encode(code, lang, max_len)  # type: ignore[attr-defined]
        full = tok.encode(code, lang, 100_000)  # type: ignore[attr-defined]
        if len(enc.ids) > max_len or len(enc.token_index) != len(enc.ids):
            raise AssertionError(f"{len(enc.ids)} ids for max_len {max_len}")
        if not all(0 <= i < tok.vocab_size for i in enc.ids):  # type: ignore[attr-defined]
            raise AssertionError("id out of the vocabulary")
        if not all(-1 <= t < len(tokens) for t in enc.token_index):
            raise AssertionError("id mapped to no code token")
        kept = [i for i, t in zip(enc.ids, enc.token_index, strict=True) if t >= 0]
        whole = [i for i, t in zip(full.ids, full.token_index, strict=True) if t >= 0]
        if kept != whole[: len(kept)] or enc.truncated != (len(kept) < len(whole)):
            raise AssertionError("truncation is not a prefix of the whole, or miscounted")


TARGET_FUNCTIONS: dict[str, Callable[[bytes], None]] = {
    "loader": fuzz_loader,
    "tokenizer": fuzz_tokenizer,
}


# -- seeds -----------------------------------------------------------------------------------------


def seeds(target: str) -> list[bytes]:
    """A small corpus of valid inputs to start from."""
    from codeaudit.data.synthetic import generate

    records = generate(4, seed=1)
    if target == "loader":
        jsonl = "".join(json.dumps(r) + "\n" for r in records).encode()
        array = json.dumps(records, indent=1).encode()
        csv = b"id,func,target\n" + b"".join(
            f'{r["id"]},"{r["func"].replace(chr(34), chr(34) * 2)}",{r["target"]}\n'.encode()
            for r in records
        )
        return [bytes([0, 0]) + jsonl, bytes([1, 1]) + array, bytes([2, 2]) + csv]
    samples = [r["func"] for r in records] + [
        "def f(x):\n    return [y for y in x if y]\n",
        "class A { int m(int[] a) { return a.length; } }",
        'template<class T> T g(T a) { return R"(raw)" + a; }',
    ]
    return [bytes([i % 4, 60]) + s.encode() for i, s in enumerate(samples)]


# -- engines ---------------------------------------------------------------------------------------


def _save_crash(target: str, data: bytes, artifacts: Path, error: BaseException) -> Path:
    artifacts.mkdir(parents=True, exist_ok=True)
    path = artifacts / f"crash-{target}-{hashlib.sha256(data).hexdigest()[:16]}"
    path.write_bytes(data)
    print(f"fuzz: {target}: {type(error).__name__}: {error} -> {path}", file=sys.stderr)
    return path


def _mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(7)
        at = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip a bit
            buf[at % len(buf)] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert random bytes
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 2 and buf:  # delete a run
            del buf[at : at + rng.randint(1, 32)]
        elif op == 3 and buf:  # duplicate a run
            start = rng.randrange(len(buf))
            buf[at:at] = buf[start : start + rng.randint(1, 64)]
        elif op == 4:  # splice in another input
            other = rng.choice(pool)
            buf[at:] = other[rng.randrange(len(other) + 1) :]
        elif op == 5:  # interesting tokens
            token = rng.choice(
                [
                    b'"',
                    b"\\",
                    b"\\u",
                    b"\\ud800",
                    b"{",
                    b"}",
                    b"[",
                    b"]",
                    b",",
                    b"\n",
                    b"\r",
                    b"\x00",
                    b"\xff",
                    b"\xc3",
                    b"NaN",
                    b"1e999",
                    b"9" * 40,
                    b'"target": 2',
                    b"/*",
                    b"*/",
                    b"'''",
                    b"#",
                    "\ufeff".encode(),
                ]
            )
            buf[at:at] = token
        elif op == 6 and len(buf) > 2:  # change the option bytes
            buf[rng.randrange(2)] = rng.randrange(256)
    return bytes(buf)


def run_mutate(target: str, seconds: float, artifacts: Path, seed: int = 0) -> int:
    fn = TARGET_FUNCTIONS[target]
    rng = random.Random(seed)
    pool = seeds(target)
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline:
        data = _mutate(rng.choice(pool), rng, pool)
        runs += 1
        try:
            fn(data)
        except Exception as exc:
            _save_crash(target, data, artifacts, exc)
            print(f"fuzz: {target}: crash after {runs} runs", file=sys.stderr)
            return 1
        if len(pool) < 500 and rng.random() < 0.05:
            pool.append(data)
    print(f"fuzz: {target}: {runs} runs in {seconds:.0f} s (mutate), no crash", file=sys.stderr)
    return 0


def run_atheris(target: str, seconds: float, artifacts: Path) -> int:
    """libFuzzer through atheris, in this process (atheris.Fuzz does not return)."""
    import atheris

    with atheris.instrument_imports(include=["codeaudit"]):
        import codeaudit.data.loader
        import codeaudit.lang.lexer
        import codeaudit.models.tokenizer  # noqa: F401
    fn = TARGET_FUNCTIONS[target]
    if target == "tokenizer":
        _tokenizers()  # build once, before the clock starts
    corpus = artifacts / f"corpus-{target}"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(seeds(target)):
        (corpus / f"seed-{i}").write_bytes(data)

    def one_input(data: bytes) -> None:
        try:
            fn(data)
        except Exception as exc:
            _save_crash(target, data, artifacts, exc)
            raise

    atheris.Setup(
        [
            sys.argv[0],
            f"-max_total_time={int(seconds)}",
            f"-artifact_prefix={artifacts}/atheris-{target}-",
            "-print_final_stats=1",
            "-rss_limit_mb=4096",
            str(corpus),
        ],
        one_input,
    )
    atheris.Fuzz()
    return 0  # pragma: no cover - atheris.Fuzz exits the process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=(*TARGETS, "all"), default="all")
    parser.add_argument("--seconds", type=float, default=60.0, help="per target")
    parser.add_argument("--engine", choices=("atheris", "mutate"))
    parser.add_argument("--artifacts", type=Path, default=ROOT / "benchmarks" / "out" / "fuzz")
    parser.add_argument("--seed", type=int, default=0, help="mutate engine only")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    engine = args.engine
    if engine is None:
        try:
            import atheris  # noqa: F401

            engine = "atheris"
        except ImportError:
            engine = "mutate"
    targets = TARGETS if args.target == "all" else (args.target,)
    if engine == "atheris" and len(targets) > 1:
        # atheris.Fuzz ends its process: one process per target
        status = 0
        for target in targets:
            cmd = [
                sys.executable,
                __file__,
                "--target",
                target,
                "--engine",
                "atheris",
                "--seconds",
                str(args.seconds),
                "--artifacts",
                str(args.artifacts),
            ]
            status |= subprocess.call(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)})
        return 1 if status else 0
    status = 0
    for target in targets:
        if engine == "atheris":
            return run_atheris(target, args.seconds, args.artifacts)
        status |= run_mutate(target, args.seconds, args.artifacts, args.seed)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
