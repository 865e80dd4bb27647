"""Membership audit on real functions: attack strength per architecture and feature set, and
the audit's cost against bare inference.

    python benchmarks/membership.py [--archs lstm,bigru,transformer] [--references 8]
        [--out docs/membership-results.md]

Data (../shared/data/bigvul.jsonl): one side of each before/after pair, so no two samples are
near-copies; --members pairs become the training set of an overfitted target (codeaudit train
defaults, no validation split), --nonmembers other pairs are the non-members (partners of members
are left out: a near-identical copy with the other label would blur the question).

Big-Vul's before/after sides cannot be told apart by these models (held-out accuracy stays near
0.5 however they are trained), so no model trained on it generalises. The generalising case uses
../shared/data/juliet.jsonl instead (--general-data), which is learnable: a BiGRU trained with
early stopping on --general-train functions (validation on other pairs), audited with members
drawn from its training set and non-members from pairs it never saw.

Cost: the audit (features, threshold, trained and label-only attacks; no shadow or reference
models) is timed against bare batched inference of the same model over the same samples
(`codeaudit predict`'s work: tokenisation plus forward passes), in one run, median of
--repeats. Reference-model attacks are timed separately.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

from codeaudit import api
from codeaudit.api import membership as run_membership
from codeaudit.config import MembershipConfig, PredictConfig, TrainConfig
from codeaudit.data.loader import load_dataset

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bigvul.jsonl"
GENERAL_DATA = DEFAULT_DATA.with_name("juliet.jsonl")
OUT = Path(__file__).resolve().parent / "out" / "membership"


def write(path: Path, samples: list) -> Path:
    path.write_text(
        "".join(
            json.dumps({"id": s.id, "func": s.code, "target": s.label, "lang": s.lang}) + "\n"
            for s in samples
        )
    )
    return path


def one_per_pair(path: str, rng: random.Random) -> list:
    """One record of each before/after pair (records without a pair stand alone), shuffled."""
    groups: dict[str, list] = {}
    for s in load_dataset(path):
        groups.setdefault(s.pair or s.id, []).append(s)
    ordered = sorted(groups.values(), key=lambda g: g[0].pair or g[0].id)
    rng.shuffle(ordered)
    return [rng.choice(g) for g in ordered]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--archs", default="lstm,bigru,transformer")
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--nonmembers", type=int, default=1000)
    parser.add_argument("--references", type=int, default=8)
    parser.add_argument("--reference-archs", default="lstm,bigru")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--general-data", default=str(GENERAL_DATA))
    parser.add_argument("--general-train", type=int, default=2000)
    parser.add_argument("--juliet-reference-arch", default="lstm")
    parser.add_argument("--out", help="write a Markdown report here")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        print(f"benchmark: {args.data}: not found", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    one = one_per_pair(args.data, rng)
    n_m, n_n = args.members, args.nonmembers
    members = write(OUT / "members.jsonl", one[:n_m])
    nonmembers = write(OUT / "nonmembers.jsonl", one[n_m : n_m + n_n])
    general = one_per_pair(args.general_data, random.Random(1))
    n_g = args.general_train
    general_train = write(OUT / "general-train.jsonl", general[:n_g])
    general_val = write(OUT / "general-val.jsonl", general[n_g : n_g + n_g // 4])
    general_non = write(
        OUT / "general-nonmembers.jsonl", general[n_g + n_g // 4 : n_g + n_g // 4 + n_n]
    )

    lines = [
        "# Membership audit on real functions",
        "",
        f"Reproduce: `python benchmarks/membership.py --out docs/membership-results.md` "
        f"({n_m} members, {n_n} non-members from `{Path(args.data).name}`, one side per pair).",
        "",
    ]
    cost_rows, feature_tables, summary_rows = [], [], []
    reference_rows: list[tuple[str, object]] = []
    for arch in args.archs.split(","):
        model_path = OUT / f"{arch}.pt"
        started = time.perf_counter()
        _, trained = api.train(
            TrainConfig(
                data=str(members),
                output=str(model_path),
                arch=arch,
                val_split=0.0,
                device="cpu",
                force=True,
            )
        )
        train_s = time.perf_counter() - started
        print(
            f"{arch}: trained in {train_s:.0f}s, train accuracy "
            f"{trained.train_metrics.accuracy:.3f}",
            flush=True,
        )
        base = MembershipConfig(
            model=str(model_path),
            members=str(members),
            nonmembers=str(nonmembers),
            device="cpu",
            n_boot=200,
        )
        bare, audit = [], []
        result = None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            api.predict(PredictConfig(model=str(model_path), data=str(members), device="cpu"))
            api.predict(PredictConfig(model=str(model_path), data=str(nonmembers), device="cpu"))
            bare.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            result = run_membership(base)
            audit.append(time.perf_counter() - t0)
        assert result is not None
        ratio = statistics.median(a / b for a, b in zip(audit, bare, strict=True))
        t0 = time.perf_counter()
        thorough = run_membership(
            replace(base, classifiers=("logreg", "mlp", "rf", "gb"), boundary_samples=200)
        )
        thorough_s = time.perf_counter() - t0
        refs_s = None
        if arch in args.reference_archs.split(",") and args.references:
            t0 = time.perf_counter()
            result = run_membership(replace(base, references=args.references))
            refs_s = time.perf_counter() - t0
            reference_rows.append((f"{arch}, Big-Vul", result))
        cost_rows.append(
            (
                arch,
                statistics.median(bare),
                statistics.median(audit),
                ratio,
                result.timings,
                thorough_s,
                thorough.best.auc,
                refs_s,
            )
        )
        by = {a.attack: a for a in result.attacks}
        summary_rows.append((arch, trained.train_metrics.accuracy, result))
        feature_tables.append((arch, result.by_features))
        print(
            f"{arch}: bare {statistics.median(bare):.1f}s audit {statistics.median(audit):.1f}s "
            f"ratio {ratio:.2f}; best {result.best.attack} {result.best.features} "
            f"AUC {result.best.auc:.3f}; LiRA {by.get('lira-online') and by['lira-online'].auc}",
            flush=True,
        )

    # LiRA where per-sample difficulty varies: an overfitted LSTM on learnable (Juliet) code
    if args.references and args.juliet_reference_arch:
        arch = args.juliet_reference_arch
        j_members = write(OUT / "juliet-members.jsonl", general[-n_m:])
        j_non = write(OUT / "juliet-nonmembers.jsonl", general[-n_m - n_n : -n_m])
        j_model = OUT / f"juliet-{arch}.pt"
        api.train(
            TrainConfig(
                data=str(j_members),
                output=str(j_model),
                arch=arch,
                val_split=0.0,
                device="cpu",
                force=True,
            )
        )
        j_result = run_membership(
            MembershipConfig(
                model=str(j_model),
                members=str(j_members),
                nonmembers=str(j_non),
                references=args.references,
                device="cpu",
                n_boot=200,
            )
        )
        reference_rows.append((f"{arch}, Juliet", j_result))

    # a generalising BiGRU (Juliet): early stopping on validation loss
    gen_path = OUT / "bigru-general.pt"
    _, gen_trained = api.train(
        TrainConfig(
            data=str(general_train),
            val=str(general_val),
            output=str(gen_path),
            arch="bigru",
            patience=2,
            device="cpu",
            force=True,
        )
    )
    gen_sample = write(OUT / "general-members.jsonl", load_dataset(general_train).samples[:n_n])
    gen = run_membership(
        MembershipConfig(
            model=str(gen_path), members=str(gen_sample), nonmembers=str(general_non), device="cpu"
        )
    )
    print(
        f"generalising bigru: kept epoch {gen_trained.kept_epoch}, best AUC {gen.best.auc:.3f}",
        flush=True,
    )

    def tpr(row: object) -> str:
        value = row.tpr_at_fpr.get("0.01")  # type: ignore[attr-defined]
        return "-" if value is None else f"{value:.3f}"

    lines += [
        "## Verdicts",
        "",
        "| target | train acc | non-member acc | best attack | AUC (95% CI) | "
        "TPR@1%FPR (best) | label-only floor | LiRA online AUC / TPR@1% | RMIA AUC |",
        "| --- | ---: | ---: | --- | --- | ---: | ---: | --- | ---: |",
    ]
    for arch, _train_acc, r in [*summary_rows, ("bigru, early-stopped on Juliet", None, gen)]:
        by = {a.attack: a for a in r.attacks}
        lira = by.get("lira-online")
        rmia = by.get("rmia")
        lines.append(
            f"| {arch} | {r.utility.members_accuracy:.3f} | {r.utility.nonmembers_accuracy:.3f} | "
            f"{r.best.attack} on {r.best.features} | {r.best.auc:.3f} "
            f"({r.best.auc_ci[0]:.3f}-{r.best.auc_ci[1]:.3f}) | {tpr(r.best_tpr)} "
            f"({r.best_tpr.attack}) | {r.utility.label_only_floor:.3f} | "
            f"{f'{lira.auc:.3f} / {tpr(lira)}' if lira else '-'} | "
            f"{f'{rmia.auc:.3f}' if rmia else '-'} |"
        )
    lines += [
        "",
        f"Generalising BiGRU ({n_g} Juliet functions, early stopping kept epoch "
        f"{gen_trained.kept_epoch}) verdict: {gen.verdict}",
        "",
    ]
    lines += [
        f"## Reference attacks ({args.references} reference models) against trained attacks",
        "",
        "TPR at 1% FPR (AUC in brackets). *trained, outputs*: the best trained attack on "
        "logits, loss and confidence; *trained, all*: the best on any feature set (with the "
        "embedding); *trained + LiRA*: the trained attack on all four outputs plus the LiRA score.",
        "",
        "| target | members / non-members acc | LiRA online | LiRA offline | RMIA | "
        "trained, outputs | trained, all | trained + LiRA |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cell(row: object) -> str:
        if row is None:
            return "-"
        return f"{tpr(row)} ({row.auc:.3f})"  # type: ignore[attr-defined]

    def best_of(rows: list) -> object:
        return max(rows, key=lambda r: (r.tpr_at_fpr.get("0.01") or -1.0, r.auc), default=None)

    for name, r in reference_rows:
        by = {a.attack: a for a in r.attacks if a.family == "reference" and "+" not in a.features}
        trained_rows = [a for a in r.attacks if a.family == "trained"]
        outputs_only = [a for a in trained_rows if "embedding" not in a.features]
        combined = [a for a in r.attacks if a.features.endswith("+lira-online")]
        lines.append(
            f"| {name} | {r.utility.members_accuracy:.3f} / {r.utility.nonmembers_accuracy:.3f} | "
            f"{cell(by.get('lira-online'))} | {cell(by.get('lira-offline'))} | "
            f"{cell(by.get('rmia'))} | {cell(best_of(outputs_only))} | "
            f"{cell(best_of(trained_rows))} | {cell(best_of(combined))} |"
        )
    lines.append("")
    lines += ["## By feature combination (best trained attack, AUC)", ""]
    archs = [a for a, _ in feature_tables]
    lines += [
        "| features | " + " | ".join(archs) + " |",
        "| --- | " + " | ".join("---:" for _ in archs) + " |",
    ]
    combos = [row.features for row in feature_tables[0][1]]
    for combo in sorted(combos, key=lambda c: (c.count("+"), c)):
        cells = []
        for _, rows in feature_tables:
            row = next((r for r in rows if r.features == combo), None)
            cells.append("-" if row is None else f"{row.auc:.3f}")
        lines.append(f"| {combo} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Cost",
        "",
        "| arch | bare inference (s) | default audit (s) | audit / bare (median) | "
        "features (s) | trained attacks (s) | --thorough audit (s) | --thorough best AUC | "
        f"with --references {args.references} (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for arch, bare_s, audit_s, ratio, timings, thorough_s, thorough_auc, refs_s in cost_rows:
        lines.append(
            f"| {arch} | {bare_s:.1f} | {audit_s:.1f} | {ratio:.2f} | "
            f"{timings.get('features', 0):.1f} | {timings.get('trained_attacks', 0):.1f} | "
            f"{thorough_s:.0f} | {thorough_auc:.3f} | "
            f"{'-' if refs_s is None else f'{refs_s:.0f}'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
