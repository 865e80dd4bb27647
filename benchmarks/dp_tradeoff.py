"""Training-time defences on real functions: utility and membership leakage of a BiGRU trained
with no defence, with early stopping, with ``--preset private`` and with DP-SGD at several
epsilons, on the same members and non-members.

    python benchmarks/dp_tradeoff.py [--data ../shared/data/juliet.jsonl] [--epsilons 1,4,8,16] \
        [--seeds 0] [--threads 1] [--out docs/dp-training.md]

Data: Juliet, one side of each pair (seed 1, as benchmarks/harden.py --general draws it):
--members functions to train on, the next --val for validation (early stopping; monitoring
only where a setting does not stop early), the next --nonmembers as non-members, which are also
the test set for accuracy and ROC AUC (unseen functions of the same distribution). Every model
is a BiGRU of --embed-dim/--hidden-dim at --max-len ids, --epochs epochs, trained, predicted and
audited through the command line exactly as a user would (the commands are printed in the
report); the membership audit is `codeaudit membership` with its defaults (trained logistic
regression on every feature set and the threshold attacks), and the strongest attack by AUC and
by TPR at 1% FPR are read from its JSON report. With several --seeds the table shows medians.

With --public N the script runs the public-first recipe instead (docs/dp-training.md, *--init*):
a model trained on N further Juliet functions (none a member, validation function or
non-member; the first N of the --public-vocab functions), audited against the same members and
non-members (it never saw either), then that model trained further on the members with
``--init``: without DP, and with DP-SGD at each epsilon with its embedding table frozen
(--init-batch-size, --init-lr, --init-patience set that training).

The DP rows also give the bound (e^eps x FPR + delta) that an (eps, delta)-DP training puts on
any attack's TPR at 1% FPR: it holds for attacks on the weights; the vocabulary, built from
the training functions, is outside the guarantee and is measured on its own (the
unknown-token channel).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO.parent
JULIET = ROOT / "shared" / "data" / "juliet.jsonl"
OUT = Path(__file__).resolve().parent / "out" / "dp_tradeoff"


def one_per_pair(path: Path, seed: int) -> list[dict[str, Any]]:
    """One record of each pair, shuffled (the same draw as benchmarks/harden.py)."""
    rng = random.Random(seed)
    pairs: dict[str, list[dict[str, Any]]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            pairs.setdefault(record.get("pair") or record["id"], []).append(record)
    groups = sorted(pairs.values(), key=lambda g: g[0].get("pair") or g[0]["id"])
    rng.shuffle(groups)
    return [rng.choice(g) for g in groups]


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write the file unless it already holds this (runs in parallel share the files)."""
    text = "".join(json.dumps(r) + "\n" for r in records)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def codeaudit(*args: str) -> tuple[dict[str, Any], float]:
    """Run the command line; its JSON report and the wall seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "codeaudit", *args, "--format", "json", "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},  # this checkout's codeaudit
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"codeaudit {' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout), seconds


def model_path(name: str, epochs: int, seed: int) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", re.sub(r" \(.*?\)", "", name)).strip("-")
    return OUT / f"{slug}-e{epochs}-s{seed}.pt"


def public_settings(
    args: argparse.Namespace, files: dict[str, Path], seed: int
) -> list[tuple[str, list[str], str]]:
    """--public N: (name, train flags, data) of the public-first recipe. A model trained on N
    public functions (none a member, validation function or non-member), then that model
    trained further on the members (``--init``): without DP, and with DP-SGD at each epsilon
    (embedding table frozen, so it takes no noise)."""
    n = args.public
    base = f"public model, {n} public functions"
    start = str(model_path(base, args.epochs, seed))
    val = str(files["val"])
    tuned = ["--init", start, "--val", val, "--patience", str(args.init_patience)]
    if (args.init_batch_size, args.init_lr) != (args.batch_size, args.lr):
        tuned += ["--batch-size", str(args.init_batch_size), "--lr", f"{args.init_lr:g}"]
    how = f", batch {args.init_batch_size}, lr {args.init_lr:g}"
    found = [
        (base, ["--val-split", "0.1", "--patience", "2"], "public"),
        (f"{base} + trained on the members{how}", tuned, "members"),
    ]
    for eps in args.epsilons:
        dp = ["--dp", "--dp-epsilon", f"{eps:g}", "--freeze-embeddings"]
        name = f"{base} + DP-SGD eps {eps:g} on the members{how}, embeddings frozen"
        found.append((name, [*tuned, *dp], "members"))
    return found


def settings(args: argparse.Namespace, files: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(name, train flags) of every setting compared; with --public-vocab each builds its
    vocabulary on other Juliet functions (--vocab) instead of the training functions."""
    val = str(files["val"])
    found = [
        ("none", ["--val-split", "0"]),
        ("early stopping (patience 2)", ["--val", val, "--patience", "2"]),
        ("preset private", ["--val", val, "--preset", "private"]),
    ]
    stop = {0: "", 2: " + early stopping"}.get(
        args.dp_patience, f" + early stopping (patience {args.dp_patience})"
    )
    patience = ["--patience", str(args.dp_patience)]
    for eps in args.epsilons:
        dp = ["--dp", "--dp-epsilon", f"{eps:g}"]
        found.append((f"DP-SGD eps {eps:g}{stop}", ["--val", val, *patience, *dp]))
    if (args.batch_size, args.lr) != (32, 2e-3):
        found = [
            (f"{name}, batch {args.batch_size}, lr {args.lr:g}", flags) for name, flags in found
        ]
    if args.public_vocab:
        found = [
            (f"{name} + public vocabulary", [*flags, "--vocab", str(files["vocab"])])
            for name, flags in found
            if not name.startswith("preset")
        ]
    return found


def run_one(
    name: str,
    flags: list[str],
    seed: int,
    files: dict[str, Path],
    args: argparse.Namespace,
    data: str = "members",
) -> dict[str, Any]:
    model = model_path(name, args.epochs, seed)
    common = ["--threads", str(args.threads)]
    size = ["--arch", "bigru", "--epochs", str(args.epochs), "--seed", str(seed)]
    if "--init" not in flags:  # a model trained further keeps its size and recipe flags
        size += [
            "--max-len", str(args.max_len),
            "--embed-dim", str(args.embed_dim),
            "--hidden-dim", str(args.hidden_dim),
            *(["--batch-size", str(args.batch_size)] if args.batch_size != 32 else []),
            *(["--lr", f"{args.lr:g}"] if args.lr != 2e-3 else []),
        ]  # fmt: skip
    train_args = ["train", str(files[data]), "-o", str(model), *size, *flags, *common]
    trained, train_s = codeaudit(*train_args, "--force")
    predicted, _ = codeaudit("predict", str(model), str(files["nonmembers"]), *common)
    audit_args = [
        "membership",
        str(model),
        "--members",
        str(files["members"]),
        "--nonmembers",
        str(files["nonmembers"]),
        "--seed",
        str(seed),
        *common,
    ]
    audited, audit_s = codeaudit(*audit_args)
    # attacks on the model's outputs: the unknown-token channel reads the vocabulary, which
    # DP-SGD does not cover, and is reported on its own
    on_outputs = [
        a
        for a in audited["attacks"]
        if a.get("family") != "blind" and "tokenizer" not in str(a.get("features"))
    ]
    strongest = max(on_outputs, key=lambda a: a["auc"])
    tprs = [a["tpr_at_fpr"]["0.01"] for a in on_outputs if a["tpr_at_fpr"].get("0.01") is not None]
    privacy = trained.get("privacy") or {}
    return {
        "name": name,
        "seed": seed,
        "epochs": args.epochs,
        "train_cmd": "codeaudit " + " ".join(train_args),
        "audit_cmd": "codeaudit " + " ".join(audit_args),
        "epsilon": privacy.get("epsilon"),
        "delta": privacy.get("delta"),
        "noise_multiplier": privacy.get("noise_multiplier"),
        "kept_epoch": trained["kept_epoch"],
        "epochs_run": len(trained["history"]),
        "train_accuracy": trained["train_metrics"]["accuracy"],
        "test_accuracy": predicted["metrics"]["accuracy"],
        "test_roc_auc": predicted["metrics"]["roc_auc"],
        "attack_auc": strongest["auc"],
        "attack": f"{strongest['attack']} on {strongest['features']}",
        "overall_auc": audited["best"]["auc"],
        "tpr_1": max(tprs) if tprs else None,
        "unk_auc": audited.get("tokenizer_channel_auc"),
        "train_s": train_s,
        "audit_s": audit_s,
    }


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.median(values) if values else None


def epochs_of(row: dict[str, Any]) -> int:
    """The epochs a row's model was planned for (from its command: rows of the first runs do
    not carry the field)."""
    if "epochs" in row:
        return int(row["epochs"])
    return int(re.search(r"--epochs (\d+)", row["train_cmd"]).group(1))  # type: ignore[union-attr]


def report(results: list[dict[str, Any]], args: argparse.Namespace, n: dict[str, int]) -> str:
    """The table over every row measured so far (this run's and the cached ones)."""
    keys = list(dict.fromkeys((epochs_of(r), r["name"]) for r in results))
    keys.sort(key=lambda k: k[0])
    seeds = sorted({r["seed"] for r in results})
    lines = [
        "| training | epsilon spent (delta) | noise multiplier | epochs run / kept | train acc. "
        "| test acc. | test ROC AUC | strongest output attack AUC | best TPR@1%FPR | DP bound on "
        "TPR@1%FPR | unknown-token channel AUC | train s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for epochs, name in keys:
        rows = [r for r in results if r["name"] == name and epochs_of(r) == epochs]
        eps, delta = _median(rows, "epsilon"), _median(rows, "delta")
        bound = min(1.0, math.exp(eps) * 0.01 + delta) if eps is not None else None
        spent = f"{eps:.2f} ({delta:g})" if eps is not None and delta is not None else "-"
        lines.append(
            f"| {name}, {epochs} epochs | {spent} | {_f(_median(rows, 'noise_multiplier'), 2)} "
            f"| {_f(_median(rows, 'epochs_run'), 0)} / {_f(_median(rows, 'kept_epoch'), 0)} "
            f"| {_f(_median(rows, 'train_accuracy'))} | {_f(_median(rows, 'test_accuracy'))} "
            f"| {_f(_median(rows, 'test_roc_auc'))} | {_f(_median(rows, 'attack_auc'))} "
            f"| {_f(_median(rows, 'tpr_1'))} | {_f(bound)} | {_f(_median(rows, 'unk_auc'))} "
            f"| {_f(_median(rows, 'train_s'), 0)} |"
        )
    head = [
        f"Juliet ({args.data.name}), one function per pair (seed 1): {n['members']} members, "
        f"{n['val']} validation functions, {n['nonmembers']} non-members (also the test set). "
        f"BiGRU, embedding {args.embed_dim}, hidden {args.hidden_dim}, at most {args.max_len} ids, "
        f"batch 32, lr 2e-3 unless a row says otherwise; seeds {', '.join(map(str, seeds))}"
        + (" (medians)" if len(seeds) > 1 else "")
        + f"; --threads {args.threads}.",
        "",
    ]
    commands = ["", "Commands (first seed):", ""]
    for epochs, name in keys:
        first = next(r for r in results if r["name"] == name and epochs_of(r) == epochs)
        commands += [f"    {first['train_cmd']}"]
    first = results[0]
    commands += [
        f"    {first['audit_cmd'].replace(str(OUT), 'OUT')}",
        "",
        "(`codeaudit predict MODEL NONMEMBERS` gives the test accuracy and ROC AUC.)",
    ]
    return "\n".join(head + lines + commands).replace(str(OUT), "OUT") + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=JULIET)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--val", type=int, default=300)
    parser.add_argument("--nonmembers", type=int, default=1000)
    parser.add_argument(
        "--epsilons", type=lambda s: [float(x) for x in s.split(",")], default=[1, 4, 8, 16]
    )
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-len", type=int, default=256)
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--hidden-dim", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument(
        "--dp-patience", type=int, default=2, help="early stopping of the DP settings (0: off)"
    )
    parser.add_argument("--only", default=None, help="run only settings whose name has this")
    parser.add_argument(
        "--public-vocab",
        action="store_true",
        help="the settings with their vocabulary built on 2,000 other functions (--vocab)",
    )
    parser.add_argument(
        "--public",
        type=int,
        default=0,
        help="run the public-first recipe instead: a model trained on this many public "
        "functions, then trained further on the members with and without DP-SGD (--init)",
    )
    parser.add_argument("--init-batch-size", type=int, default=None, help="--public: batch")
    parser.add_argument("--init-lr", type=float, default=None, help="--public: learning rate")
    parser.add_argument("--init-patience", type=int, default=3, help="--public: patience")
    parser.add_argument("--out", type=Path, default=None, help="write the table here")
    args = parser.parse_args()
    args.init_batch_size = args.init_batch_size or args.batch_size
    args.init_lr = args.init_lr or args.lr
    if not args.data.is_file():
        print(f"{args.data}: not found (the shared data set)", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    records = one_per_pair(args.data, 1)
    a, b = args.members, args.members + args.val
    files = {
        "members": write(OUT / "members.jsonl", records[:a]),
        "val": write(OUT / "val.jsonl", records[a:b]),
        "nonmembers": write(OUT / "nonmembers.jsonl", records[b : b + args.nonmembers]),
        # --public-vocab: "public" code of the same kind, none of it a member or non-member
        "vocab": write(
            OUT / "vocab.jsonl", records[b + args.nonmembers : b + args.nonmembers + 2000]
        ),
    }
    if args.public:
        start = b + args.nonmembers
        files["public"] = write(
            OUT / f"public{args.public}.jsonl", records[start : start + args.public]
        )
    results_file = OUT / "results.jsonl"
    done = {}
    if results_file.is_file():
        for line in results_file.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            done[(row["name"], row["seed"], epochs_of(row))] = row
    results = []
    for seed in args.seeds:
        chosen = (
            public_settings(args, files, seed)
            if args.public
            else [(name, flags, "members") for name, flags in settings(args, files)]
        )
        for name, flags, data in chosen:
            if args.only and args.only not in name:
                continue
            row = done.pop((name, seed, args.epochs), None)
            if row is None:
                row = run_one(name, flags, seed, files, args, data)
                with open(results_file, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")
            results.append(row)
            print(
                f"{name} seed {seed}: test acc {_f(row['test_accuracy'])}, attack AUC "
                f"{_f(row['attack_auc'])}, TPR@1% {_f(row['tpr_1'])}, eps {_f(row['epsilon'], 2)}"
                f", {row['train_s']:.0f} s",
                flush=True,
            )
    n = {"members": a, "val": args.val, "nonmembers": args.nonmembers}
    table = report(results + list(done.values()), args, n)
    print(table)
    if args.out is not None:
        args.out.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
