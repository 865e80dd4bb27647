"""The privacy-utility frontier of `codeaudit harden` on a generalising Juliet BiGRU: Gaussian
noise at every sigma, confidence bands at every number of bands, the label-only release, the
undefended model, and a MemGuard-style anchor; and what harden costs against a membership
audit of the same data.

    python benchmarks/harden_frontier.py [--members 1200 --val 300 --nonmembers 800] \
        [--reuse] [--threads 1] [--out benchmarks/out/frontier/frontier.md]

Target: a BiGRU trained with early stopping (`codeaudit train --val --patience 3`) on
--members Juliet functions (one side per pair, seed 1), validated on --val others; the
non-members are further functions of other pairs. Every frontier point is measured on the
verification half of harden's own calibration split (seed 0), with the same attacks harden
runs (threshold attacks and logistic regression on every released feature set, on one answer
and on answers averaged over up to 8 rewrites), the same folds and the same key.

- Gaussian: keyed Gaussian noise on the logits (NMID), sigma on harden's grid.
- Banded: `--noise banded`, the confidence replaced by its band (cut at quantiles of the
  calibration half's non-members' margins) plus a keyed uniform within the band.
- Label only: `--expose label`; its attack AUC is what the same attacks reach from labels.
- MemGuard-style (Jia et al., CCS 2019), an anchor, not a codeaudit defence: the defender trains
  its own attack classifier (logistic regression on the released confidence's logit) on the
  calibration half and moves each released confidence toward that classifier's decision
  boundary (where it outputs 0.5) by at most --memguard budgets (in probability), keeping the
  predicted label; deterministic, so repeated queries gain nothing.

Timing: `codeaudit membership` (defaults), `codeaudit harden` (defaults: --sigma auto), the same
with --noise banded, and membership again, each in a fresh process (no cache shared), one torch
thread, with the load average before and after each; the ratio divides by the mean membership
time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harden import JULIET, one_per_pair, write  # noqa: E402

OUT = HERE / "out" / "frontier"
KEY = "5eed" * 8
BUDGETS = (0.05, 0.1, 0.2, 0.3, 0.5)
SIGMAS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 32.0)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def memguard_margins(
    cal_margin: np.ndarray, cal_members: np.ndarray, margins: list[np.ndarray], budget: float
) -> list[np.ndarray]:
    """MemGuard's phase I for a binary model: the defender's attack classifier is a logistic
    regression on the released confidence's logit (trained on the calibration half's clean
    answers); each answer's confidence moves toward the classifier's 0.5 point by at most
    ``budget``, never across 0.5 (the label is kept)."""
    from sklearn.linear_model import LogisticRegression

    x = np.abs(cal_margin).reshape(-1, 1)
    clf = LogisticRegression().fit(x, cal_members)
    w, b = float(clf.coef_[0, 0]), float(clf.intercept_[0])
    boundary = -b / w if w != 0 else float(np.median(x))
    c_star = 1.0 / (1.0 + np.exp(-max(boundary, 1e-3)))
    out = []
    for m in margins:
        c = 1.0 / (1.0 + np.exp(-np.abs(m)))
        moved = c + np.clip(c_star - c, -budget, budget)
        moved = np.clip(moved, 0.5 + 1e-6, 1 - 1e-12)
        r = np.log(moved) - np.log1p(-moved)
        out.append(np.where(m > 0, np.maximum(r, 1e-4), -r))
    return out


def frontier(args: argparse.Namespace, model_path: Path, mem: Path, non: Path) -> dict:
    from codeaudit.data.loader import load_dataset
    from codeaudit.defense.calibrate import (
        BAND_GRID,
        BandCalibrator,
        CurveEvaluator,
        SigmaCalibrator,
        calibration_split,
        sweep,
        sweep_bands,
    )
    from codeaudit.defense.evaluate import observe
    from codeaudit.models.checkpoint import load_model
    from codeaudit.models.nmid import NMID

    base = load_model(model_path).model
    t0 = time.perf_counter()
    obs = observe(
        base,
        load_dataset(str(mem)),
        load_dataset(str(non)),
        rewrites=8,
        seed=0,
        batch_size=64,
    )
    observe_s = time.perf_counter() - t0
    cal, ver = calibration_split(obs.samples, obs.membership, 0.5, 0)
    gauss = obs.with_noise(NMID(0.0, "top1", key=KEY).fit(base), base)
    bands = obs.with_noise(NMID(0.0, "top1", key=KEY, edges=()).fit(base), base)

    def evaluator(o):  # type: ignore[no-untyped-def]
        return CurveEvaluator(o, "top1", classifiers=("logreg",), folds=5, seed=0)

    g_cal, g_ver = evaluator(gauss.subset(cal)), evaluator(gauss.subset(ver))
    b_cal, b_ver = evaluator(bands.subset(cal)), evaluator(bands.subset(ver))
    sigma = SigmaCalibrator(0.6).fit(g_cal)
    banded = BandCalibrator(0.6).fit(b_cal)
    g_curve = sweep(g_ver, sorted({*SIGMAS, sigma.sigma_}))
    b_curve = sweep_bands(b_ver, BAND_GRID, b_cal.band_edges)

    ver_obs = gauss.subset(ver)
    cal_obs = gauss.subset(cal)
    cal_margin = cal_obs.clean.logits[:, 1].astype(float) - cal_obs.clean.logits[:, 0]
    ver_margin = ver_obs.clean.logits[:, 1].astype(float) - ver_obs.clean.logits[:, 0]
    var_margin = ver_obs.variant_logits[:, 1].astype(float) - ver_obs.variant_logits[:, 0]
    anchor = []
    for budget in BUDGETS:
        m, v = memguard_margins(cal_margin, cal_obs.membership, [ver_margin, var_margin], budget)
        point = g_ver.point_of(m, v if len(v) else None)
        anchor.append({"budget": budget, **_point(point)})
    return {
        "observe_seconds": observe_s,
        "n": {"calibration": len(cal), "verification": len(ver)},
        "labels_only_auc": g_ver.labels_only_auc,
        "rewrite_labels_only_auc": g_ver.rewrite_labels_only_auc,
        "label_roc_auc_nonmembers": g_ver.label_roc_auc_nonmembers,
        "label_only_floor": g_ver.floor,
        "calibrated_sigma": sigma.sigma_,
        "calibrated_bands": banded.bands_,
        "band_edges": list(banded.edges_),
        "gaussian": [_point(p) for p in g_curve],
        "banded": [_point(p) for p in b_curve],
        "memguard": anchor,
    }


def _point(p) -> dict:  # type: ignore[no-untyped-def]
    return {
        "sigma": p.sigma,
        "bands": p.bands,
        "attack": p.best_auc,
        "attack_name": p.best_attack,
        "rewrite": p.rewrite_auc,
        "roc_members": p.roc_auc_members,
        "roc_nonmembers": p.roc_auc_nonmembers,
    }


def timings(
    model_path: Path, mem: Path, non: Path, threads: int, fewer_rewrites: int | None = None
) -> dict:
    """Wall time of each command in a fresh process (no cache shared with this one or with
    each other), in the order membership, harden, harden --noise banded (then, with
    ``fewer_rewrites``, harden --rewrites N), membership; the ratio divides by the mean of the
    two membership runs."""
    import resource
    import subprocess

    py = [sys.executable, "-m", "codeaudit"]
    data = ["--members", str(mem), "--nonmembers", str(non), "--threads", str(threads)]
    key = OUT / "key.hex"
    key.write_text(KEY + "\n")
    harden = [*py, "harden", str(model_path), *data, "--key-file", str(key), "--force"]
    runs = [
        ("membership", [*py, "membership", str(model_path), *data, "--format", "json"]),
        ("harden", [*harden, "-o", str(OUT / "hardened.pt"), "--format", "json"]),
        (
            "harden --noise banded",
            [*harden, "-o", str(OUT / "hardened-banded.pt"), "--noise", "banded",
             "--format", "json"],
        ),
    ]  # fmt: skip
    if fewer_rewrites is not None:
        runs.append(
            (
                f"harden --rewrites {fewer_rewrites}",
                [*harden, "-o", str(OUT / "hardened-fewer.pt"), "--rewrites",
                 str(fewer_rewrites), "--format", "json"],
            )
        )  # fmt: skip
    runs.append(
        ("membership (again)", [*py, "membership", str(model_path), *data, "--format", "json"])
    )
    out: dict = {}
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    for name, command in runs:
        before = load()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        seconds = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"{name}: exit {done.returncode}: {done.stderr[-2000:]}")
        out[name] = {
            "seconds": seconds,
            "cpu_seconds": cpu,
            "load_before": before,
            "load_after": load(),
        }
        stem = name.replace(" ", "-").replace("(", "").replace(")", "")
        (OUT / f"{stem}.stderr").write_text(done.stderr)
        if name.startswith("harden"):
            report = json.loads(done.stdout)
            stem = (
                "harden-banded"
                if "banded" in name
                else "harden-fewer"
                if "--rewrites" in name
                else "harden"
            )
            (OUT / f"{stem}.json").write_text(done.stdout)
            v, f = report["verification"], report.get("frontier")
            held_out = next(u for u in v["utility"] if u["split"] == "non-members")
            out[name]["result"] = {
                "setting": None if f is None else f["shipped"],
                "best_score_auc_after": v["best_score_auc_after"],
                "target": v["target"],
                "target_met": v["target_met"],
                "labels_only_auc": v["labels_only_auc"],
                "rewrite_averaging_auc": v["rewrite_averaging_auc"],
                "roc_auc_nonmembers": [held_out["roc_auc_before"], held_out["roc_auc_after"]],
                "frontier_chosen": None if f is None else f["chosen"],
                "frontier_reason": None if f is None else f["reason"],
                "findings": [x["rule_id"] for x in report.get("findings", [])],
            }
        print(
            f"{name}: {seconds:.0f}s wall, {cpu:.0f}s CPU (load {out[name]['load_before']} -> "
            f"{out[name]['load_after']})",
            flush=True,
        )
    member_s = (out["membership"]["seconds"] + out["membership (again)"]["seconds"]) / 2
    out["ratio"] = out["harden"]["seconds"] / member_s
    out["ratio_banded"] = out["harden --noise banded"]["seconds"] / member_s
    member_cpu = (out["membership"]["cpu_seconds"] + out["membership (again)"]["cpu_seconds"]) / 2
    out["cpu_ratio"] = out["harden"]["cpu_seconds"] / member_cpu
    out["cpu_ratio_banded"] = out["harden --noise banded"]["cpu_seconds"] / member_cpu
    if fewer_rewrites is not None:
        fewer = out[f"harden --rewrites {fewer_rewrites}"]["seconds"]
        out["ratio_fewer_rewrites"] = fewer / member_s
    return out


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def markdown(report: dict) -> str:
    """The tables of docs/harden-results.md's frontier section, from frontier.json."""
    f = report["frontier"]
    limit = f["labels_only_auc"] + 0.02
    label_roc = f["label_roc_auc_nonmembers"]
    undefended = f["gaussian"][0]["roc_nonmembers"]
    half = (label_roc + undefended) / 2
    lines = [
        f"Verification half: {f['n']['verification']} functions "
        f"(calibration half {f['n']['calibration']}). Labels alone: attack AUC "
        f"{f['labels_only_auc']:.3f} (correctness floor {f['label_only_floor']:.3f}; over "
        f"rewrites {_f(f['rewrite_labels_only_auc'])}), non-member ROC AUC {label_roc:.3f}. "
        f"Undefended released score: ROC AUC {undefended:.3f}. The issue's target: strongest "
        f"score attack <= {limit:.3f} with ROC AUC >= {half:.3f} (halfway).",
        "",
        "| release | setting | strongest score attack | rewrite averaging | ROC AUC members "
        "| ROC AUC non-members | issue target |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]

    def row(kind: str, setting: str, p: dict) -> str:
        ok = p["attack"] is not None and p["attack"] <= limit + 1e-12
        ok = ok and p["roc_nonmembers"] >= half - 1e-12
        return (
            f"| {kind} | {setting} | {_f(p['attack'])} | {_f(p['rewrite'])} | "
            f"{_f(p['roc_members'])} | {_f(p['roc_nonmembers'])} | {'yes' if ok else 'no'} |"
        )

    lines.append(
        f"| label only | - | {f['labels_only_auc']:.3f} | {_f(f['rewrite_labels_only_auc'])} "
        f"| - | {label_roc:.3f} | - |"
    )
    for p in f["gaussian"]:
        mark = " (calibrated)" if p["sigma"] == f["calibrated_sigma"] else ""
        kind = "undefended" if p["sigma"] == 0 else "gaussian"
        lines.append(row(kind, f"sigma {p['sigma']:g}{mark}", p))
    for p in f["banded"]:
        mark = " (calibrated)" if p["bands"] == f["calibrated_bands"] else ""
        lines.append(row("banded", f"{p['bands']} bands{mark}", p))
    for p in f["memguard"]:
        lines.append(row("MemGuard-style", f"budget {p['budget']:g}", p))
    t = report.get("timing")
    if t:
        lines += [
            "",
            "| command | wall seconds | CPU seconds | load average (1/5 min) before -> after |",
            "| --- | ---: | ---: | --- |",
        ]
        for name in ("membership", "harden", "harden --noise banded", "membership (again)"):
            if name not in t:
                continue
            x = t[name]
            lines.append(
                f"| {name} | {x['seconds']:.0f} | {x.get('cpu_seconds', 0):.0f} | "
                f"{x['load_before']} -> {x['load_after']} |"
            )
        lines.append(
            f"\nharden / membership (mean of the two membership runs): wall {t['ratio']:.2f} "
            f"(Gaussian), {t['ratio_banded']:.2f} (banded); CPU {t.get('cpu_ratio', 0):.2f} "
            f"(Gaussian), {t.get('cpu_ratio_banded', 0):.2f} (banded)."
        )
        for name in ("harden", "harden --noise banded"):
            r = t[name]["result"]
            lines.append(
                f"\n`{name}`: shipped {r['setting']}; strongest score attack after "
                f"{_f(r['best_score_auc_after'])} (target {_f(r['target'])}, labels alone "
                f"{_f(r['labels_only_auc'])}); non-member ROC AUC "
                f"{_f(r['roc_auc_nonmembers'][0])} -> {_f(r['roc_auc_nonmembers'][1])}; "
                f"frontier: {r['frontier_reason']}"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1200)
    parser.add_argument("--val", type=int, default=300)
    parser.add_argument("--nonmembers", type=int, default=800)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep a trained target that exists")
    parser.add_argument("--no-timing", action="store_true", help="only the frontier")
    parser.add_argument(
        "--fewer-rewrites",
        type=int,
        default=None,
        metavar="N",
        help="timing: also time harden --rewrites N",
    )
    parser.add_argument(
        "--timing-only", action="store_true", help="keep the last frontier.json; time again"
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the tables of the last run's frontier.json"
    )
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads((OUT / "frontier.json").read_text())))
        return 0
    import torch

    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    jul = one_per_pair(JULIET, 1)
    a, b, c = args.members, args.members + args.val, args.members + args.val + args.nonmembers
    mem = write(OUT / "members.jsonl", jul[:a])
    val = write(OUT / "val.jsonl", jul[a:b])
    non = write(OUT / "nonmembers.jsonl", jul[b:c])
    model_path = OUT / "bigru.pt"
    if not (args.reuse and model_path.is_file()):
        from codeaudit import api
        from codeaudit.config import TrainConfig

        api.train(TrainConfig(
            data=str(mem), val=str(val), output=str(model_path), arch="bigru", patience=3,
            device="cpu", threads=args.threads, force=True,
        ))  # fmt: skip
    if args.timing_only:
        report = json.loads((OUT / "frontier.json").read_text())
    else:
        report = {"load_start": load()}
        t0 = time.perf_counter()
        report["frontier"] = frontier(args, model_path, mem, non)
        report["frontier_seconds"] = time.perf_counter() - t0
        print(f"frontier: {report['frontier_seconds']:.0f}s", flush=True)
        (OUT / "frontier.json").write_text(json.dumps(report, indent=1))
    if not args.no_timing:
        report["timing"] = timings(model_path, mem, non, args.threads, args.fewer_rewrites)
    report["load_end"] = load()
    (OUT / "frontier.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
