"""Write a synthetic vulnerability-prediction data set as train / val / holdout JSON Lines.

    python examples/make_dataset.py OUTDIR [--n 600] [--seed 0] [--paired] [--force]

The records come from :func:`codeaudit.data.synthetic.generate`. They are split by their
``pair`` id (60% / 20% / 20%, shuffled with ``--seed``), so with ``--paired`` the vulnerable and
the safe variant of one skeleton always land in the same file. Existing files are left alone
unless ``--force`` is given; each file is written to a temporary file in OUTDIR first and then
moved into place, so a reader never sees a half-written file.

Exit status: 0 on success, 2 on bad arguments or when an output cannot be written.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

try:
    from codeaudit.data.synthetic import generate
except ImportError:  # run from a source checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from codeaudit.data.synthetic import generate

SPLITS: tuple[tuple[str, float], ...] = (("train", 0.6), ("val", 0.2), ("holdout", 0.2))
MIN_N = 10


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        _fail(" ".join(message.split()))


def _fail(message: str) -> NoReturn:
    print(f"make_dataset.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="make_dataset.py",
        description="Write synthetic labelled C functions as train/val/holdout JSONL files.",
    )
    parser.add_argument("outdir", type=Path, help="directory for the three .jsonl files")
    parser.add_argument("--n", type=int, default=600, help="number of functions (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--paired",
        action="store_true",
        help="each skeleton yields a vulnerable and a safe variant sharing a pair id",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    if args.n < MIN_N:
        parser.error(f"--n must be at least {MIN_N}, got {args.n}")
    return args


def split_by_pair(records: list[dict], seed: int) -> dict[str, list[dict]]:
    """Split ``records`` into the named :data:`SPLITS` so that no ``pair`` id crosses files."""
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record["pair"], []).append(record)
    keys = list(groups)
    random.Random(f"split:{seed}").shuffle(keys)
    out: dict[str, list[dict]] = {}
    start = 0
    for i, (name, share) in enumerate(SPLITS):
        stop = len(keys) if i == len(SPLITS) - 1 else start + round(share * len(keys))
        chosen = set(keys[start:stop])
        out[name] = [r for r in records if r["pair"] in chosen]
        start = stop
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_jsonl_atomic(path: Path, records: list[dict]) -> None:
    """Write ``records`` to ``path`` via a temporary file in the same directory and os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual mode
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = _parse_args(argv)
    outdir: Path = args.outdir
    if outdir.exists() and not outdir.is_dir():
        _fail(f"{outdir} exists and is not a directory")
    targets = {name: outdir / f"{name}.jsonl" for name, _ in SPLITS}
    if not args.force:
        for path in targets.values():
            if path.exists():
                _fail(f"{path} already exists (use --force to overwrite)")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        parts = split_by_pair(generate(args.n, args.seed, paired=args.paired), args.seed)
        for name, path in targets.items():
            write_jsonl_atomic(path, parts[name])
    except OSError as exc:
        _fail(" ".join(f"cannot write to {outdir}: {exc.strerror or exc}".split()))
    summary = ", ".join(f"{name} {len(parts[name])}" for name in targets)
    print(f"wrote {outdir}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
