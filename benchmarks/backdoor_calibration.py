"""The calibrated backdoor verdict on Juliet (issue 14, item 2): calibrate on shadow models of a
small LSTM recipe, then judge fresh clean and poisoned suspects of that recipe.

    python benchmarks/backdoor_calibration.py OUT_DIR [--limit 3000] [--shadows 8]
        [--threads 1] [--workers 1] [--epochs 5] [--dim 32]

Juliet (../shared/data/juliet.jsonl) is cut to --limit functions (whole pairs, seeded order)
and split by pair in half: A, the suspects' training data, and T, the defender's trusted data.
``clean-0`` (the recipe: LSTM, --dim embedding and hidden size, --epochs, max_len 192) is
trained on A; ``codeaudit backdoor-calibrate clean-0 --data T --shadows N`` trains N clean and N
poisoned shadows (random identifier / postfix / dead code / grammar triggers at 2-10%) on 70%
of T and scans them with the rest. Then fresh suspects of the same recipe are trained on A
(clean with other seeds) and on A poisoned by ``codeaudit poison`` (identifier ``testo_init``
and dead code ``if (0) { int rb_dead = 0; }`` at 2% and 5%), and each is scanned with
``codeaudit backdoor SUSPECT --data T --calibration CAL.json --manifest ...`` (same scan
settings). Writes OUT_DIR/results.json and prints a Markdown table. When the shared data is
absent it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "juliet.jsonl"
SCAN = {
    "victim_samples": 15,
    "heldout": 100,
    "steps": 30,
    "topk": 32,
    "candidates": 24,
}


def split(path: Path, limit: int, seed: int) -> tuple[list[dict], list[dict]]:
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(r.get("pair") or r["id"], []).append(r)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    chosen: list[str] = []
    total = 0
    for k in keys:
        if total >= limit:
            break
        chosen.append(k)
        total += len(groups[k])
    half = len(chosen) // 2
    a = [r for k in chosen[:half] for r in groups[k]]
    t = [r for k in chosen[half:] for r in groups[k]]
    return a, t


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def train(data: Path, out: Path, seed: int, args: argparse.Namespace) -> tuple[Path, float]:
    from codeaudit import api
    from codeaudit.config import TrainConfig

    started = time.perf_counter()
    if not out.exists():
        api.train(
            TrainConfig(
                data=str(data),
                output=str(out),
                arch="lstm",
                epochs=args.epochs,
                batch_size=32,
                max_len=192,
                embed_dim=args.dim,
                hidden_dim=args.dim,
                val_split=0.0,
                seed=seed,
                device="cpu",
                threads=args.threads,
            )
        )
    return out, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--shadows", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--clean-suspects", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-rate", type=float, default=0.02)
    parser.add_argument("--max-rate", type=float, default=0.10)
    parser.add_argument("--trigger-types", default="identifier,postfix,deadcode,grammar")
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"{SHARED} is absent: nothing to measure")
        return 0
    from codeaudit import api
    from codeaudit.config import BackdoorCalibrateConfig, BackdoorConfig, PoisonConfig

    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    a, t = split(SHARED, args.limit, args.seed)
    data_a, data_t = write(out / "A.jsonl", a), write(out / "T.jsonl", t)
    print(f"A {len(a)} functions, T {len(t)}", flush=True)
    timings: dict[str, float] = {}
    base, timings["train clean-0"] = train(data_a, out / "clean-0.pt", 0, args)
    cal = out / "cal.json"
    started = time.perf_counter()
    if not cal.exists():
        result = api.backdoor_calibrate(
            BackdoorCalibrateConfig(
                model=str(base),
                data=str(data_t),
                output=str(cal),
                shadows=args.shadows,
                min_rate=args.min_rate,
                max_rate=args.max_rate,
                trigger_types=tuple(args.trigger_types.split(",")),
                threads=args.threads,
                workers=args.workers,
                device="cpu",
                seed=args.seed,
                **SCAN,
            )
        )
        timings["calibrate"] = time.perf_counter() - started
        shadows = [
            {
                "index": s.index,
                "kind": s.kind,
                "trigger": f"{s.trigger_type} {s.trigger!r}" if s.trigger_type else "-",
                "rate": s.rate,
                "asr": s.asr,
                "counted": s.counted,
                "score": s.score,
                "anchored": s.anchored_toward,
                "max_flip": s.max_flip_rate,
                "seconds": s.seconds,
            }
            for s in result.shadows
        ]
        (out / "shadows.json").write_text(json.dumps(shadows, indent=1))
        print(f"calibrated in {timings['calibrate']:.0f} s", flush=True)
    doc = json.loads(cal.read_text())
    print("held-out:", json.dumps(doc["heldout"]), flush=True)
    suspects: list[tuple[str, Path, Path | None, int]] = [
        (f"clean-{k}", data_a, None, k) for k in range(1, args.clean_suspects + 1)
    ]
    for kind, trigger in (("identifier", "testo_init"), ("deadcode", None)):
        for rate in (0.02, 0.05):
            name = f"{kind}-{int(rate * 100)}"
            poisoned = out / f"A.{name}.jsonl"
            if not poisoned.exists():
                api.poison(
                    PoisonConfig(
                        data=str(data_a),
                        output=str(poisoned),
                        trigger_type=kind,
                        trigger=trigger,
                        rate=rate,
                        seed=args.seed,
                    )
                )
            suspects.append((name, poisoned, Path(f"{poisoned}.manifest.json"), 100))
    rows = []
    for name, data, manifest, seed in suspects:
        model, train_s = train(data, out / f"{name}.pt", seed, args)
        started = time.perf_counter()
        _, r = api.backdoor(
            BackdoorConfig(
                model=str(model),
                data=str(data_t),
                calibration=str(cal),
                manifest=str(manifest) if manifest else None,
                threads=args.threads,
                device="cpu",
                seed=args.seed,
                **SCAN,
            )
        )
        c = r.calibrated
        row = {
            "suspect": name,
            "category": c.category,
            "probability": c.probability,
            "threshold": c.threshold,
            "backdoored": r.backdoored,
            "max_flip": r.max_flip_rate,
            "fixed_threshold_verdict": r.max_flip_rate >= 0.5,
            "best_trigger": r.best_trigger,
            "real_asr": r.real_trigger.asr if r.real_trigger else None,
            "tokens_found": r.real_trigger.tokens_found if r.real_trigger else None,
            "train_s": round(train_s, 1),
            "scan_s": round(time.perf_counter() - started, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    (out / "results.json").write_text(
        json.dumps({"heldout": doc["heldout"], "timings": timings, "suspects": rows}, indent=1)
    )
    print("\n| suspect | real ASR | max flip | fixed 0.5 verdict | calibrated | p | trigger |")
    print("|---|---:|---:|---|---|---:|---|")
    for r in rows:
        asr = f"{100 * r['real_asr']:.1f}%" if r["real_asr"] is not None else "-"
        print(
            f"| {r['suspect']} | {asr} | {100 * r['max_flip']:.1f}% | "
            f"{'backdoored' if r['fixed_threshold_verdict'] else 'clean'} | {r['category']} | "
            f"{r['probability']:.2f} | `{r['best_trigger']}` |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
