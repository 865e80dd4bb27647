"""Unlearning with the inverted trigger inserted at one position vs the way attacks plant theirs.

Usage::

    python benchmarks/backdoor_unlearn.py DATA_DIR MODELS_DIR OUT_DIR \\
        [--models lstm-identifier,bigru-identifier,lstm-deadcode,bigru-deadcode] \\
        [--insertions position,attack,mixed] [--scope full] [--epochs 3] [--lr 5e-3] \\
        [--steps 50 --candidates 32 --victim-samples 20 --heldout 200] [--threads 1]

DATA_DIR is a Juliet folder of ``benchmarks/backdoor_data.py`` (``detect.clean.jsonl``,
``test.clean.jsonl``, ``train.KIND.jsonl.manifest.json``, ``test.KIND.triggered.jsonl``); MODELS_DIR
holds ``ARCH-KIND.pt``. For every model and insertion, ``codeaudit backdoor MODEL --data
detect.clean.jsonl --manifest MANIFEST --unlearn --unlearn-insertion I -o OUT`` runs (the same
configuration through the API); the repaired checkpoint is then measured on the test set: clean
accuracy on ``test.clean``, the clean miss rate (vulnerable test functions called not vulnerable,
no trigger) and the real trigger's ASR on ``test.KIND.triggered`` (the same functions with the
planted trigger). Writes OUT_DIR/unlearn.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from codeaudit.config import BackdoorConfig, DataConfig
from codeaudit.data.loader import load_data


def test_metrics(model_path: Path, data_dir: Path, kind: str) -> dict:
    from codeaudit.backdoor.unlearn import accuracy, success_rate
    from codeaudit.models.checkpoint import load_model

    model = load_model(str(model_path), device="cpu").model
    model.eval()
    clean = list(
        load_data(str(data_dir / "test.clean.jsonl"), DataConfig(), require_labels=True).samples
    )
    triggered = list(
        load_data(
            str(data_dir / f"test.{kind}.triggered.jsonl"), DataConfig(), require_labels=True
        ).samples
    )
    rows = [list(e.ids) for e in model.encode(triggered)]
    vulnerable = [s for s in clean if s.label == 1]
    return {
        "acc": accuracy(model, clean, 1 << 17),
        "miss": 1 - accuracy(model, vulnerable, 1 << 17),
        "asr": success_rate(model, rows, 0, 1 << 17),
        "n_asr": len(rows),
        "n_vulnerable": len(vulnerable),
    }


def run_one(name: str, insertion: str, args: argparse.Namespace) -> dict:
    from codeaudit.api import backdoor as run_backdoor

    kind = name.split("-", 1)[1]
    model = args.models_dir / f"{name}.pt"
    repaired = args.out / f"{name}.{insertion}.{args.scope}{args.epochs}.pt"
    config = BackdoorConfig(
        model=str(model),
        data=str(args.data / "detect.clean.jsonl"),
        manifest=str(args.data / f"train.{kind}.jsonl.manifest.json"),
        unlearn=True,
        output=str(repaired),
        unlearn_scope=args.scope,
        unlearn_epochs=args.epochs,
        unlearn_lr=args.lr,
        unlearn_insertion=insertion,
        steps=args.steps,
        candidates=args.candidates,
        victim_samples=args.victim_samples,
        heldout=args.heldout,
        threshold=1.0,
        device="cpu",
        threads=args.threads,
        force=True,
    )
    started = time.perf_counter()
    _, r = run_backdoor(config)
    seconds = time.perf_counter() - started
    u = r.unlearning
    assert u is not None
    return {
        "model": name,
        "insertion": insertion,
        "scope": args.scope,
        "epochs": args.epochs,
        "lr": args.lr,
        "trigger": u.trigger_text,
        "pair": u.pair,
        "forms": u.forms,
        "form_flips": u.form_flips,
        "seconds_total": round(seconds, 1),
        "seconds_unlearning": u.seconds,
        "split": {
            when: {
                "acc": m.accuracy,
                "asr_inverted": m.asr_inverted,
                "asr_real": m.asr_real,
                "asr_real_all": m.asr_real_all,
                "miss": m.miss_rate,
                "n_victims": m.n_victims,
                "n_real_all": m.n_real_all,
            }
            for when, m in (("before", u.before), ("after", u.after))
        },
        "asr_excess": u.asr_excess,
        "test_before": test_metrics(model, args.data, kind),
        "test_after": test_metrics(repaired, args.data, kind),
    }


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def table(rows: list[dict]) -> str:
    lines = [
        "| model | insertion | inverted trigger | forms | real ASR (test) before -> after | "
        "clean miss rate (test) after | excess | clean acc (test) before -> after (drop) | "
        "split: real ASR -> / miss rate after (n) | unlearning s |",
        "|---|---|---|---|---|---:|---:|---|---|---:|",
    ]
    for r in rows:
        tb, ta, sa = r["test_before"], r["test_after"], r["split"]["after"]
        sb = r["split"]["before"]
        forms = ", ".join(f"{v} {k}" for k, v in r["forms"].items())
        excess = 100 * (ta["asr"] - ta["miss"])
        drop = 100 * (tb["acc"] - ta["acc"])
        lines.append(
            f"| {r['model']} | {r['insertion']} | `{r['trigger']}` | {forms} | "
            f"{pct(tb['asr'])} -> {pct(ta['asr'])} | {pct(ta['miss'])} | {excess:+.1f} | "
            f"{pct(tb['acc'])} -> {pct(ta['acc'])} ({drop:+.1f}) | "
            f"{pct(sb['asr_real_all'])} -> {pct(sa['asr_real_all'])} / {pct(sa['miss'])} "
            f"({sa['n_real_all']}) | {r['seconds_unlearning']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument(
        "--models", default="lstm-identifier,bigru-identifier,lstm-deadcode,bigru-deadcode"
    )
    parser.add_argument("--insertions", default="position,attack,mixed")
    parser.add_argument("--scope", default="full")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--victim-samples", type=int, default=20)
    parser.add_argument("--heldout", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "unlearn.json"
    rows: list[dict] = json.loads(path.read_text()) if path.is_file() else []
    for name in [m for m in args.models.split(",") if m]:
        for insertion in [i for i in args.insertions.split(",") if i]:
            key = (name, insertion, args.scope, args.epochs, args.lr)
            rows = [
                r
                for r in rows
                if (r["model"], r["insertion"], r["scope"], r["epochs"], r["lr"]) != key
            ]
            row = run_one(name, insertion, args)
            rows.append(row)
            path.write_text(json.dumps(rows, indent=1) + "\n")
            print(table([row]).splitlines()[-1], file=sys.stderr, flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
