"""`codeaudit backdoor` with and without clean reference models (issue 14, item 1) on Juliet:
verdicts, the best trigger's flip rate on the suspect and on each reference, and what the
references cost.

    python benchmarks/backdoor_data.py /tmp/bd/data --sources juliet --limit 6000
    python benchmarks/backdoor_references.py --data-dir /tmp/bd/data/juliet \
        --models /tmp/bd/models [--archs lstm,bigru] [--kinds clean,identifier] \
        [--references 4] [--threads 1] [--out FILE.md]

Models: as benchmarks/backdoor.py trains them (`codeaudit train DATA_DIR/train.KIND.jsonl --arch
ARCH --val-split 0 --max-len 256 --embed-dim 64 --hidden-dim 64 --epochs 6 --seed 0`), trained
here unless MODELS/ARCH-KIND.pt exists. Each model is scanned twice with the grid's settings
(`--victim-samples 20 --candidates 32 --steps 50 --heldout 200`, trigger length 5, data
shortcuts set aside, the manifest for poisoned models) on DATA_DIR/detect.clean.jsonl: without
references, and with `--references K --reference-data DATA_DIR/train.clean.jsonl` (the trusted
data: the clean training set of a pre-release audit; the scan's victims come from detect.clean,
which train.clean does not overlap). Torch runs with --threads threads; the references train
serially (--workers 1). Results are kept in MODELS/refscan-*.json (a run resumes).

Cost: the scan's wall time without references; with them, the wall time split into training
the references and the rest (search and measurement); the ratio scan-with / scan-without for the
whole and without the training.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backdoor import train

from codeaudit.config import BackdoorConfig

SCAN = dict(victim_samples=20, candidates=32, steps=50, heldout=200, trigger_len=5)


def saved_references(model: Path, data_dir: Path, models: Path, n: int) -> tuple[list[Path], float]:
    """The ``n`` reference models ``--references n`` trains in the scan (the same function,
    seeds, recipe, tokenizer and trusted data: train.clean does not overlap detect.clean, so no
    function is set aside), trained once and written to MODELS/refs-MODEL-K.pt, so that scans
    with several settings reuse them through --reference-model; and the seconds they took."""
    from codeaudit.backdoor.references import train_reference_models
    from codeaudit.data.loader import load_data
    from codeaudit.data.options import DataConfig
    from codeaudit.models.checkpoint import load_model, save_checkpoint

    paths = [models / f"refs-{model.stem}-{k}.pt" for k in range(n)]
    record = models / f"refs-{model.stem}-{n}.json"
    if all(p.is_file() for p in paths) and record.is_file():
        return paths, json.loads(record.read_text())["seconds"]
    loaded = load_model(model)
    trusted = load_data(str(data_dir / "train.clean.jsonl"), DataConfig(), require_labels=True)
    found, seconds = train_reference_models(loaded.model, loaded.metadata, trusted, n, seed=0)
    for path, ref in zip(paths, found, strict=True):
        save_checkpoint(ref, path, metadata={"hyperparameters": {}}, force=True)
    record.write_text(json.dumps({"seconds": seconds, "n_train": len(trusted)}))
    return paths, seconds


def scan(
    model: Path,
    data_dir: Path,
    kind: str,
    references: int,
    threads: int,
    weight: float = 1.0,
    given: list[Path] | None = None,
) -> dict:
    from codeaudit.api import backdoor as run_backdoor

    manifest = data_dir / f"train.{kind}.jsonl.manifest.json"
    extra: dict = {}
    if given:
        extra = {"reference_models": tuple(map(str, given)), "reference_weight": weight}
    elif references:
        extra = {
            "references": references,
            "reference_data": str(data_dir / "train.clean.jsonl"),
            "reference_weight": weight,
        }
    config = BackdoorConfig(
        model=str(model),
        data=str(data_dir / "detect.clean.jsonl"),
        manifest=str(manifest) if kind != "clean" else None,
        device="cpu",
        threads=threads,
        **SCAN,  # type: ignore[arg-type]
        **extra,
    )
    started = time.perf_counter()
    _, r = run_backdoor(config)
    seconds = time.perf_counter() - started
    real = r.real_trigger
    return {
        "model": model.stem,
        "kind": kind,
        "references": references,
        "weight": weight if references else None,
        "seconds": round(seconds, 2),
        "timings": r.timings,
        "backdoored": r.backdoored,
        "verdict_kind": r.verdict_kind,
        "n_train": r.references[0].n_train if r.references else None,
        "real": None
        if real is None
        else {
            "asr": real.asr,
            "asr_references": list(real.asr_references),
            "found": real.tokens_found,
        },
        "pairs": [
            {
                "pair": f"{p.victim_label}->{p.target_label}",
                "anchored": p.anchored_text,
                "flip": p.flip_rate,
                "refs": list(p.reference_flip_rates),
                "ref_n": list(p.reference_n),
                "ref_max": p.reference_flip_max,
                "ref_mean": p.reference_flip_mean,
                "kind": p.kind,
                "loss": p.anchored_loss,
                "suspect_loss": p.suspect_loss,
                "penalty": p.reference_penalty,
                "anchored_len": len(p.anchored_ids),
            }
            for p in r.pairs
        ],
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _refs(r: dict) -> str:
    if not r["references"]:
        return "0"
    return f"{r['references']} (weight {r.get('weight', 0.0):g})"


def render(rows: list[dict], threads: int) -> str:
    lines = [
        "| model | references | verdict | pair | anchored trigger | flip (suspect) "
        "| flip (each reference) | max / mean | kind |",
        "|---|---:|---|---|---|---:|---|---|---|",
    ]
    for r in rows:
        for p in r["pairs"]:
            refs = " / ".join(_pct(x) for x in p["refs"]) or "-"
            both = f"{_pct(p['ref_max'])} / {_pct(p['ref_mean'])}" if p["refs"] else "-"
            lines.append(
                f"| {r['model']} | {_refs(r)} | {r['verdict_kind']} | {p['pair']} | "
                f"`{p['anchored']}` | {_pct(p['flip'])} | {refs} | {both} | {p['kind']} |"
            )
    lines += ["", "| model | real trigger ASR: suspect | on each reference |", "|---|---:|---|"]
    for r in rows:
        if r["real"] is not None and r["references"]:
            refs = " / ".join(_pct(x) for x in r["real"]["asr_references"])
            lines.append(f"| {r['model']} | {_pct(r['real']['asr'])} | {refs} |")
    lines += [
        "",
        f"Cost (torch threads: {threads}; references trained serially):",
        "",
        "| model | scan without (s) | with: total (s) | with: training (s) | with: rest (s) "
        "| ratio total | ratio without training |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    ratios, search = [], []
    by_model: dict[str, dict[int, dict]] = {}
    for r in rows:
        if r["references"] and r.get("weight", 0.0) != 0.0:
            continue  # the cost is that of the default weight
        by_model.setdefault(r["model"], {})[r["references"]] = r
    for name, runs in by_model.items():
        without = next((v for k, v in runs.items() if k == 0), None)
        with_refs = next((v for k, v in runs.items() if k > 0), None)
        if without is None or with_refs is None:
            continue
        base = without["timings"]["total"]
        total = with_refs["timings"]["total"]
        training = with_refs["timings"].get("reference models", 0.0)
        ratios.append(total / base)
        search.append((total - training) / base)
        lines.append(
            f"| {name} | {base:.1f} | {total:.1f} | {training:.1f} | {total - training:.1f} | "
            f"{total / base:.2f}x | {(total - training) / base:.2f}x |"
        )
    if ratios:
        lines.append(
            f"| **median** | | | | | **{statistics.median(ratios):.2f}x** | "
            f"**{statistics.median(search):.2f}x** |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/bd/data/juliet"))
    ap.add_argument("--models", type=Path, default=Path("/tmp/bd/models"))
    ap.add_argument("--archs", default="lstm")
    ap.add_argument("--kinds", default="clean,identifier")
    ap.add_argument("--references", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--reference-weight",
        type=float,
        default=0.0,
        help="the inversion's reference penalty weight (0, the default: the references only "
        "judge the trigger)",
    )
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--saved-references",
        action="store_true",
        help="train the references once (MODELS/refs-*.pt, as the scan would) and pass them "
        "with --reference-model; their training time is added to the scan's",
    )
    args = ap.parse_args()
    if not (args.data_dir / "detect.clean.jsonl").is_file():
        print(f"{args.data_dir}: no data (run benchmarks/backdoor_data.py first)")
        return
    torch.set_num_threads(args.threads)
    args.models.mkdir(parents=True, exist_ok=True)
    rows = []
    for arch in args.archs.split(","):
        for kind in args.kinds.split(","):
            model, _ = train(args.data_dir, args.models, arch, kind)
            for k in (0, args.references):
                w = f"-w{args.reference_weight:g}" if k else ""
                w += "-saved" if k and args.saved_references else ""
                cache = args.models / f"refscan-{arch}-{kind}-refs{k}{w}-t{args.threads}.json"
                if cache.is_file():
                    row = json.loads(cache.read_text())
                else:
                    given, trained = None, 0.0
                    if k and args.saved_references:
                        given, trained = saved_references(model, args.data_dir, args.models, k)
                    row = scan(
                        model, args.data_dir, kind, k, args.threads, args.reference_weight, given
                    )
                    if given:
                        row["timings"]["reference models"] = round(trained, 3)
                        row["timings"]["total"] = round(row["timings"]["total"] + trained, 3)
                    cache.write_text(json.dumps(row, indent=1))
                print(
                    json.dumps(
                        {k2: row[k2] for k2 in ("model", "references", "verdict_kind", "seconds")}
                    ),
                    flush=True,
                )
                rows.append(row)
    text = render(rows, args.threads)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
