"""NMID on real functions: attack AUC before and after `codeaudit harden`, utility, the
label-only floor, what keying buys against averaging, and the cost of hardened inference.

    python benchmarks/harden.py [--archs lstm,bigru,transformer] [--general] \
        [--out docs/harden-results.md]

Targets (overfit on purpose, so they leak): for each architecture, `codeaudit train` defaults
with no validation split on --members functions of ../shared/data/bigvul.jsonl (one side of
each before/after pair, seed 0); --nonmembers other functions (other pairs) are the non-
members. With --general, a BiGRU trained with early stopping on Juliet functions (one side per
pair), which generalises, so its label-only floor is low and the 0.60 target applies.

Each target is hardened exactly as a user would: `run_harden` with --sigma auto
--target-auc 0.6 --export torchscript --sweep (calibration on half of the members and
non-members, verification on the other half). Reported: the strongest attack before (all
outputs), the strongest attack that sees scores after (one query, repeated-query averaging,
rewrite averaging), the label-only attacks, utility, and whether the issue's target holds
(after <= floor + 0.02, and <= 0.60 where the floor is below 0.58).

What keying buys: at the calibrated sigma the same repeated-query averaging attack is run
against the same noise drawn fresh for every query (NMID(keyed=False)).

Cost: batched inference of the original and of the hardened model over the same encodings,
alternated, median of --repeats runs each, in one process.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from codeaudit import api
from codeaudit.api import harden as run_harden
from codeaudit.config import HardenConfig, TrainConfig
from codeaudit.data.loader import load_dataset
from codeaudit.report import render

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT / "shared" / "data" / "bigvul.jsonl"
JULIET = ROOT / "shared" / "data" / "juliet.jsonl"
OUT = Path(__file__).resolve().parent / "out" / "harden"
KEY = "5eed" * 8  # a fixed key, so the benchmark is reproducible (harden draws a random one)


def write(path: Path, samples: list) -> Path:
    path.write_text(
        "".join(
            json.dumps(
                {"id": s.id, "func": s.code, "target": s.label, "lang": s.lang, "pair": s.pair}
            )
            + "\n"
            for s in samples
        )
    )
    return path


def one_per_pair(path: Path, seed: int) -> list:
    rng = random.Random(seed)
    pairs: dict[str, list] = {}
    for s in load_dataset(str(path)):
        pairs.setdefault(s.pair or s.id, []).append(s)
    groups = sorted(pairs.values(), key=lambda g: g[0].pair or g[0].id)
    rng.shuffle(groups)
    return [rng.choice(g) for g in groups]


def inference_cost(model_path: Path, data: Path, repeats: int) -> tuple[float, float, float]:
    """Median seconds of plain and hardened batched inference over the same encodings, in
    alternating order; the ratio is the median of the per-round ratios."""
    from codeaudit.models.checkpoint import load_model
    from codeaudit.models.inference import infer
    from codeaudit.models.nmid import NMID

    base = load_model(model_path).model
    hardened = NMID(1.0, "top1", key=KEY).fit().transform(base)
    encodings = base.encode(load_dataset(str(data)).samples)
    infer(base, encodings[:64])  # warm up both
    infer(hardened, encodings[:64])
    plain, guarded = [], []
    for round_ in range(repeats):
        order = [(base, plain), (hardened, guarded)]
        for model, times in order if round_ % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            infer(model, encodings)
            times.append(time.perf_counter() - t0)
    ratio = statistics.median(g / p for g, p in zip(guarded, plain, strict=True))
    return statistics.median(plain), statistics.median(guarded), ratio


SIGMAS = (2.0, 8.0, 32.0)


def keyed_vs_unkeyed(
    model_path: Path, members: Path, nonmembers: Path, queries: int
) -> dict[float, tuple[float, float, float, float]]:
    """Per sigma: the strongest score attack on one query and on the mean of ``queries``
    answers, for keyed noise and for the same noise drawn fresh per query (all members and
    non-members; threshold and logistic-regression attacks)."""
    from codeaudit.defense.evaluate import (
        observe,
        query_margins,
        released_features,
        score_suite,
        strongest,
    )
    from codeaudit.membership.evaluate import make_folds
    from codeaudit.models.checkpoint import load_model
    from codeaudit.models.nmid import NMID

    base = load_model(model_path).model
    obs = observe(
        base,
        load_dataset(str(members)),
        load_dataset(str(nonmembers)),
        rewrites=0,
        seed=0,
        batch_size=64,
    )
    folds = make_folds(obs.membership, 3, 0)
    usable = frozenset({"loss", "confidence", "logits"})
    out = {}
    for sigma in SIGMAS:
        row = []
        for keyed in (True, False):
            defense = NMID(sigma, "top1", key=KEY, keyed=keyed, seed=1).fit()
            answers = [
                query_margins(defense, base, obs.clean.logits, obs.encodings)
                for _ in range(queries)
            ]
            for margin in (answers[0], np.mean(answers, axis=0)):
                feats = released_features(obs.clean, margin, "top1")
                evs = score_suite(
                    feats, obs.membership, folds, usable, ("logreg",), n_boot=1, seed=0
                )
                best = strongest(evs)
                assert best is not None
                row.append(best.score.auc)
        out[sigma] = (row[0], row[1], row[2], row[3])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--archs", default="lstm,bigru,transformer")
    parser.add_argument("--members", type=int, default=400)
    parser.add_argument("--nonmembers", type=int, default=1000)
    parser.add_argument("--general", action="store_true", help="also a generalising Juliet BiGRU")
    parser.add_argument("--queries", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", help="write a Markdown report here")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--reuse", action="store_true", help="keep trained targets that exist")
    parser.add_argument(
        "--report-only", action="store_true", help="only rebuild the report from saved runs"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if not Path(args.data).is_file():
        print(f"benchmark: {args.data}: not found", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    one = one_per_pair(Path(args.data), 0)
    n_m, n_n = args.members, args.nonmembers
    members = write(OUT / "members.jsonl", one[:n_m])
    nonmembers = write(OUT / "nonmembers.jsonl", one[n_m : n_m + n_n])

    targets: list[tuple[str, Path, Path, Path, TrainConfig]] = []
    for arch in [a for a in args.archs.split(",") if a]:
        config = TrainConfig(
            data=str(members),
            output=str(OUT / f"{arch}.pt"),
            arch=arch,
            val_split=0.0,
            device="cpu",
            force=True,
        )
        targets.append(
            (f"{arch} (overfit, Big-Vul)", members, nonmembers, OUT / f"{arch}.pt", config)
        )
    if args.general and JULIET.is_file():
        jul = one_per_pair(JULIET, 1)
        j_train = write(OUT / "juliet-members.jsonl", jul[:1000])
        j_val = write(OUT / "juliet-val.jsonl", jul[1000:1300])
        j_non = write(OUT / "juliet-nonmembers.jsonl", jul[1300:2300])
        config = TrainConfig(
            data=str(j_train),
            val=str(j_val),
            output=str(OUT / "bigru-juliet.pt"),
            arch="bigru",
            patience=2,
            device="cpu",
            force=True,
        )
        targets.append(
            ("bigru (early-stopped, Juliet)", j_train, j_non, OUT / "bigru-juliet.pt", config)
        )

    for name, mem, non, model_path, train_config in targets:
        stem = model_path.stem
        if args.report_only:
            continue
        if not (args.reuse and model_path.is_file()):
            t0 = time.perf_counter()
            _, trained = api.train(train_config)
            print(
                f"{name}: trained in {time.perf_counter() - t0:.0f}s, "
                f"train accuracy {trained.train_metrics.accuracy:.3f}",
                flush=True,
            )
        t0 = time.perf_counter()
        _, result = run_harden(
            HardenConfig(
                model=str(model_path),
                output=str(OUT / f"{stem}.hardened.pt"),
                members=str(mem),
                nonmembers=str(non),
                sigma=None,
                target_auc=0.6,
                export=("torchscript",),
                sweep=True,
                plot=str(OUT / f"{stem}.curve.png"),
                queries=args.queries,
                key=KEY,
                device="cpu",
                force=True,
            )
        )
        harden_s = time.perf_counter() - t0
        report_json = json.loads(render(result, "json"))
        plain_s, hard_s, ratio = inference_cost(model_path, non, args.repeats)
        averaging = keyed_vs_unkeyed(model_path, mem, non, args.queries)
        report_json["benchmark"] = {
            "name": name,
            "harden_seconds": harden_s,
            "inference": {"plain": plain_s, "hardened": hard_s, "ratio": ratio},
            "averaging": {str(k): v for k, v in averaging.items()},
            "queries": args.queries,
            "repeats": args.repeats,
        }
        (OUT / f"{stem}.bench.json").write_text(json.dumps(report_json, indent=1))
        v = result.verification
        assert v is not None
        print(
            f"{name}: sigma {result.defense.sigma:.3g}; before {v.best_auc_before:.3f}; after "
            f"{_f(v.best_score_auc_after)} ({v.best_score_attack_after}), target "
            f"{v.target:.3f}; rewrites {_f(v.rewrite_averaging_auc)}, target "
            f"{_f(v.rewrite_target)}; floor {v.label_only_floor:.3f}, labels only "
            f"{v.labels_only_auc:.3f}; {'met' if v.target_met else 'NOT met'}; harden "
            f"{harden_s:.0f}s; inference x{ratio:.3f}; averaging {averaging}",
            flush=True,
        )

    rows = []
    for _name, _mem, _non, model_path, _config in targets:
        path = OUT / f"{model_path.stem}.bench.json"
        if path.is_file():
            rows.append(json.loads(path.read_text()))
    lines = report(rows, n_m, n_n)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(rows: list[dict], n_m: int, n_n: int) -> list[str]:
    lines = [
        "# NMID hardening on real functions",
        "",
        "Reproduce: `python benchmarks/harden.py --general --out docs/harden-results.md` "
        f"(Big-Vul targets: {n_m} members, {n_n} non-members, one side per pair; each target "
        "hardened as `codeaudit harden MODEL --members M --nonmembers N --sigma auto "
        "--target-auc 0.6 --export torchscript --sweep` would: sigma calibrated on one half "
        "of the members and non-members, every figure below measured on the other half; a "
        "fixed key for reproducibility). 2 CPU cores shared with other work, one torch "
        "thread, torch 2.13.0 CPU.",
        "",
        "The membership paper (Liao et al., APSEC 2025) reports NMID taking attack AUC from near "
        "1.0 to below 0.65 with utility preserved, against non-adaptive attacks. Here the "
        "attacks after hardening include repeated-query averaging and averaging over "
        "semantics-preserving rewrites, and every attack is compared with what the same attack "
        "reaches from labels alone: no output defence that keeps the labels goes below that.",
        "",
        "## Attack AUC before and after",
        "",
        "Columns: the strongest of all attacks on the original model (every output: embedding, "
        "logits, loss, confidence, unknown-token rate); after hardening, the strongest attack "
        "that sees scores on one query or on the mean of repeated queries, and its target "
        "max(0.60, labels-alone AUC + 0.02); the same for averaging over rewrites; the "
        "label-only floor of the issue (0.5 + half the accuracy gap) and what the score attacks "
        "reach from labels alone; the strongest label-only attack (rewrite boundary included).",
        "",
        "| target | sigma | before | after (one or repeated queries) | target | after (rewrite "
        "averaging) | target | floor / labels alone | strongest label-only | met | below 0.65 |",
        "| --- | ---: | --- | --- | ---: | --- | ---: | --- | ---: | --- | --- |",
    ]
    for r in rows:
        v, d, name = r["verification"], r["defense"], r["benchmark"]["name"]
        after = v["best_score_auc_after"]
        lines.append(
            f"| {name} | {d['sigma']:.3g} | {v['best_auc_before']:.3f} "
            f"({v['best_attack_before']}) | {_f(after)} ({v['best_score_attack_after']}) | "
            f"{v['target']:.3f} | {_f(v['rewrite_averaging_auc'])} | {_f(v['rewrite_target'])} "
            f"| {v['label_only_floor']:.3f} / {v['labels_only_auc']:.3f} | "
            f"{v['label_only_auc']:.3f} | {'yes' if v['target_met'] else 'no'} | "
            f"{'yes' if after is not None and after < 0.65 else 'no'} |"
        )
    lines += [
        "",
        "## What keying buys: repeated-query averaging",
        "",
        "The strongest score attack (thresholds and logistic regression on loss, confidence and "
        "pseudo-logits; all members and non-members) on one query and on the mean of "
        f"{rows[0]['benchmark']['queries'] if rows else 16} answers per function: with NMID's "
        "keyed noise, and with the same noise drawn fresh for every query.",
        "",
        "| target | sigma | keyed: 1 query | keyed: averaged | fresh noise: 1 query | "
        "fresh noise: averaged |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        for sigma, (k1, ka, u1, ua) in r["benchmark"]["averaging"].items():
            lines.append(
                f"| {r['benchmark']['name']} | {float(sigma):g} | {k1:.3f} | {ka:.3f} | "
                f"{u1:.3f} | {ua:.3f} |"
            )
    lines += [
        "",
        "## Utility (verification half)",
        "",
        "| target | data | accuracy before / after | F1 before / after | score ROC AUC before / "
        "after |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        for u in r["verification"]["utility"]:
            lines.append(
                f"| {r['benchmark']['name']} | {u['split']} | {u['accuracy_before']:.3f} / "
                f"{u['accuracy_after']:.3f} | {u['f1_before']:.3f} / {u['f1_after']:.3f} | "
                f"{_f(u['roc_auc_before'])} / {_f(u['roc_auc_after'])} |"
            )
    lines += [
        "",
        "## Per attack (verification half): AUC (TPR at 1% FPR) before / after",
        "",
    ]
    if rows:
        names = [r["benchmark"]["name"] for r in rows]
        lines += [
            "| attack / features | " + " | ".join(names) + " |",
            "| --- | " + " | ".join("---" for _ in names) + " |",
        ]
        for k, row in enumerate(rows[0]["verification"]["rows"]):
            cells = []
            for r in rows:
                x = r["verification"]["rows"][k]

                def cell(auc: float | None, tpr: float | None) -> str:
                    return "-" if auc is None else f"{auc:.3f} ({_f(tpr, 2)})"

                after = (
                    cell(x["after_auc"], x["after_tpr_at_1"])
                    if x["after_auc"] is not None
                    else (x["note"] or "-")
                )
                cells.append(f"{cell(x['before_auc'], x['before_tpr_at_1'])} / {after}")
            lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    lines += ["", "## Privacy-utility curves (verification half)", ""]
    for r in rows:
        c = r["calibration"]
        lines += [
            f"**{r['benchmark']['name']}**: sigma {r['defense']['sigma']:.3g} chosen on the "
            f"calibration half (labels alone {c['labels_only_auc']:.3f} there, target "
            f"{c['effective_target']:.3f}; rewrite target {_f(c['rewrite_target'])}; "
            f"{'reached' if c['reached'] else 'not reached'}).",
            "",
            "| sigma | best score AUC | rewrite averaging AUC | ROC AUC non-members | "
            "strongest attack |",
            "| ---: | ---: | ---: | ---: | --- |",
        ]
        for p in r["sweep"]:
            lines.append(
                f"| {p['sigma']:g} | {_f(p['best_auc'])} | {_f(p['rewrite_auc'])} | "
                f"{_f(p['roc_auc_nonmembers'])} | {p['best_attack']} |"
            )
        lines.append("")
    lines += [
        "## Cost",
        "",
        "| target | harden (s) | calibration / verification / sweep (s) | plain inference (s) | "
        "hardened inference (s) | hardened / plain (median of alternating runs) |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        t, b = r["timings"], r["benchmark"]
        inf = b["inference"]
        lines.append(
            f"| {b['name']} | {b['harden_seconds']:.0f} | {t.get('calibration', 0):.0f} / "
            f"{t.get('verification', 0):.0f} / {t.get('sweep', 0):.0f} | {inf['plain']:.2f} | "
            f"{inf['hardened']:.2f} | {inf['ratio']:.3f} ({b['repeats']} runs) |"
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
