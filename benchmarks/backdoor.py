"""`codeaudit backdoor` on real functions: GCG step cost against its floor, and the verdict
threshold calibrated on clean vs backdoored models, with unlearning (issue 5).

    python benchmarks/backdoor_data.py /tmp/bd/data --sources juliet --limit 6000
    python benchmarks/backdoor.py --data-dir /tmp/bd/data/juliet --models /tmp/bd/models \
        [--archs bigru,lstm] [--triggers clean,identifier,postfix,deadcode,grammar] \
        [--speed] [--inversion] [--scan [--trigger-len N] [--full-scope --unlearn-epochs E]] \
        [--out docs/backdoor-tables.md --threshold 0.5]

Models: `codeaudit train DATA_DIR/train.KIND.jsonl --arch ARCH --val-split 0 --max-len 256
--embed-dim 64 --hidden-dim 64 --epochs 6 --seed 0` (KIND clean or a trigger type), trained
here (through `api.train`) unless MODELS/ARCH-KIND.pt exists.

--speed: on MODELS/ARCH-clean.pt, seconds per GCG step (the gradient plus candidates x samples
evaluations, as `gcg` does them) against the floor: one forward-backward through
`forward_embeds` of the same N x (T + L) batch, plus candidates x samples bare forwards
(`model.forward` over full-length id rows, chunked by the same token budget); median of
--repeats, measured alternately in one process. --inversion: the whole inversion (both label
pairs, scan defaults) on the BiGRU.

--scan: `run_backdoor` on every model with DATA_DIR/detect.clean.jsonl as the defender's data
(the manifest for backdoored models; head-only unlearning, and with --full-scope also
`--unlearn-scope full`), a threshold of 1.0 so the verdict is taken from the flip rates
afterwards; plus the real trigger's ASR on DATA_DIR/test.KIND.triggered.jsonl
and clean accuracy on DATA_DIR/test.clean.jsonl, before and after repair. Results are kept in
MODELS/scan-*.json, so a run resumes and --out alone re-renders the report.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from codeaudit import api
from codeaudit.config import BackdoorConfig, DataConfig, TrainConfig
from codeaudit.data.loader import load_data

KINDS = ("clean", "identifier", "postfix", "deadcode", "grammar")
TRAIN = dict(val_split=0.0, max_len=256, embed_dim=64, hidden_dim=64, epochs=6, seed=0)
ASR_TARGET = 0.02


def train(data_dir: Path, models: Path, arch: str, kind: str) -> tuple[Path, float | None]:
    path = models / f"{arch}-{kind}.pt"
    if path.is_file():
        return path, None
    started = time.perf_counter()
    config = TrainConfig(
        data=str(data_dir / f"train.{kind}.jsonl"),
        output=str(path),
        arch=arch,
        device="cpu",
        **TRAIN,  # type: ignore[arg-type]
    )
    api.train(config)
    return path, time.perf_counter() - started


# -- speed ------------------------------------------------------------------------------------
def _median(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def speed(model_path: Path, detect: Path, repeats: int, candidates: int = 64) -> dict:
    from codeaudit.backdoor.gcg import TriggerObjective
    from codeaudit.backdoor.positions import DEFAULT_BATCH_TOKENS, select_positions
    from codeaudit.backdoor.scanner import BackdoorScanner
    from codeaudit.backdoor.vocab import trigger_vocabulary
    from codeaudit.models.base import Batch
    from codeaudit.models.checkpoint import load_model

    model = load_model(str(model_path), device="cpu").model
    model.eval()
    samples = list(load_data(str(detect), DataConfig(), require_labels=True).samples)
    scanner = BackdoorScanner()
    correct, _ = scanner._candidates(model, samples, 1)
    placed = select_positions(model, correct[:30], room=5)
    vocab = trigger_vocabulary(model.tokenizer, {model.default_lang})
    rng = np.random.default_rng(0)
    length = 5
    trig = rng.choice(vocab.ids, size=length)
    cands = np.stack([rng.choice(vocab.ids, size=length) for _ in range(candidates)])
    out: dict = {"arch": model.arch if hasattr(model, "arch") else model_path.stem}
    objectives = {
        "cached": TriggerObjective(model, placed, 0, vocab.ids, cache=True),
        "uncached": TriggerObjective(model, placed, 0, vocab.ids, cache=False),
    }
    n = len(placed)
    width = max(len(p.context) for p in placed) + length
    emb = model.input_embeddings()
    pad = model.tokenizer.pad_id
    ids = torch.full((n, width), pad, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, p in enumerate(placed):
        row = [*p.context[: p.position], *trig, *p.context[p.position :]]
        ids[i, : len(row)] = torch.as_tensor(row)
        mask[i, : len(row)] = 1
    rows_all = ids.repeat(candidates, 1)
    mask_all = mask.repeat(candidates, 1)
    per_chunk = max(1, DEFAULT_BATCH_TOKENS // width)

    def floor_grad() -> None:
        e = emb(ids).detach().requires_grad_(True)
        with torch.enable_grad():
            logits = model.forward_embeds(e, mask).logits
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(n, dtype=torch.long))
            torch.autograd.grad(loss, [e])

    def floor_fwd() -> None:
        with torch.no_grad():
            for s in range(0, len(rows_all), per_chunk):
                m = mask_all[s : s + per_chunk]
                model.forward(Batch(rows_all[s : s + per_chunk], m, m.sum(1)))

    timers = {
        "floor_grad": floor_grad,
        "floor_fwd": floor_fwd,
        "grad": lambda: objectives["cached"].gradient(trig.tolist()),
        "cand": lambda: objectives["cached"].losses(cands),
        "cand_uncached": lambda: objectives["uncached"].losses(cands),
    }
    for fn in timers.values():  # warm-up
        fn()
    samples_t: dict[str, list[float]] = {k: [] for k in timers}
    for _ in range(repeats):  # alternate, so load changes hit every timer alike
        for k, fn in timers.items():
            samples_t[k].append(_median(fn, 1))
    med = {k: statistics.median(v) for k, v in samples_t.items()}
    out.update({k: round(v, 4) for k, v in med.items()})
    out["n"], out["width"], out["candidates"] = n, width, candidates
    out["floor"] = round(med["floor_grad"] + med["floor_fwd"], 4)
    out["step"] = round(med["grad"] + med["cand"], 4)
    out["step_uncached"] = round(med["grad"] + med["cand_uncached"], 4)
    out["ratio"] = round(out["step"] / out["floor"], 3)
    out["ratio_uncached"] = round(out["step_uncached"] / out["floor"], 3)
    return out


def whole_inversion(model_path: Path, detect: Path) -> dict:
    from codeaudit.backdoor.scanner import BackdoorScanner
    from codeaudit.models.checkpoint import load_model

    model = load_model(str(model_path), device="cpu").model
    samples = list(load_data(str(detect), DataConfig(), require_labels=True).samples)
    t = time.perf_counter()
    scanner = BackdoorScanner(threshold=1.0).fit(model, samples)
    total = time.perf_counter() - t
    pairs = []
    for p in scanner.pairs_:
        inv = scanner.inversions_[(p.victim_label, p.target_label)]
        pairs.append(
            {
                "pair": f"{p.victim_label}->{p.target_label}",
                "steps": p.steps,
                "stop": p.stop,
                "seconds": p.seconds,
                "per_step": round(
                    (inv.seconds_gradient + inv.seconds_candidates) / max(1, inv.steps), 4
                ),
            }
        )
    return {"model": model_path.name, "seconds": round(total, 1), "pairs": pairs}


# -- scan -------------------------------------------------------------------------------------
def test_metrics(model_path: Path, data_dir: Path, kind: str) -> dict:
    """Clean accuracy on test.clean and the real trigger's ASR on test.KIND.triggered."""
    from codeaudit.backdoor.unlearn import accuracy, success_rate
    from codeaudit.models.checkpoint import load_model

    model = load_model(str(model_path), device="cpu").model
    model.eval()
    clean = list(
        load_data(str(data_dir / "test.clean.jsonl"), DataConfig(), require_labels=True).samples
    )
    out = {"acc": accuracy(model, clean, 1 << 17)}
    trig = data_dir / f"test.{kind}.triggered.jsonl"
    if kind != "clean" and trig.is_file():
        s = list(load_data(str(trig), DataConfig(), require_labels=True).samples)
        rows = [list(e.ids) for e in model.encode(s)]
        out["asr"] = success_rate(model, rows, 0, 1 << 17)
        out["n_asr"] = len(rows)
    vul = [x for x in clean if x.label == 1]
    out["fnr_clean"] = 1 - accuracy(model, vul, 1 << 17)
    return out


def scan(
    model_path: Path, data_dir: Path, kind: str, scope: str, out_dir: Path, settings: dict
) -> dict:
    from codeaudit.api import backdoor as run_backdoor

    tl = settings.get("trigger_len", 5)
    keep = "-keep" if settings.get("keep_shortcuts") else ""
    lr = settings.get("unlearn_lr", 5e-3)
    keep += f"-lr{lr:g}" if lr != 5e-3 else ""
    repaired = out_dir / f"{model_path.stem}.{scope}.len{tl}{keep}.repaired.pt"
    manifest = data_dir / f"train.{kind}.jsonl.manifest.json"
    config = BackdoorConfig(
        model=str(model_path),
        data=str(data_dir / "detect.clean.jsonl"),
        manifest=str(manifest) if kind != "clean" else None,
        unlearn=True,
        output=str(repaired),
        unlearn_scope=scope,
        threshold=1.0,
        device="cpu",
        force=True,
        **settings,
    )
    t = time.perf_counter()
    _, r = run_backdoor(config)
    seconds = time.perf_counter() - t
    u = r.unlearning
    row = {
        "model": model_path.stem,
        "kind": kind,
        "scope": scope,
        "seconds": round(seconds, 1),
        "timings": r.timings,
        "pairs": [
            {
                "pair": f"{p.victim_label}->{p.target_label}",
                "flip_rate": p.flip_rate,
                "inversion_flip_rate": p.inversion_flip_rate,
                "n_heldout": p.n_heldout,
                "trigger": list(p.trigger_tokens),
                "anchored": list(p.anchored_tokens),
                "anchored_text": p.anchored_text,
                "loss": p.loss,
                "steps": p.steps,
                "stop": p.stop,
                "seconds": p.seconds,
                "shortcuts_excluded": p.shortcuts_excluded,
                "shortcuts": [
                    {
                        "text": c.text,
                        "target_support": c.target_support,
                        "other_support": c.other_support,
                        "flip_rate": c.flip_rate,
                        "flip_rate_renamed": c.flip_rate_renamed,
                    }
                    for c in p.shortcuts
                ],
            }
            for p in r.pairs
        ],
        "best_pair": r.best_pair,
        "real": None,
        "unlearning": None,
    }
    if r.real_trigger is not None:
        rt = r.real_trigger
        row["real"] = {
            "trigger": rt.trigger,
            "poisoned": rt.poisoned,
            "tokens_found": rt.tokens_found,
            "asr_detect": rt.asr,
            "n": rt.n_asr,
        }
    if u is not None:
        row["unlearning"] = {
            "pair": u.pair,
            "epochs": u.epochs,
            "acc_before": u.before.accuracy,
            "acc_after": u.after.accuracy,
            "asr_inv_before": u.before.asr_inverted,
            "asr_inv_after": u.after.asr_inverted,
            "asr_real_before": u.before.asr_real,
            "asr_real_after": u.after.asr_real,
            "n_eval": u.n_eval,
            "seconds": u.seconds,
        }
    row["test_before"] = test_metrics(model_path, data_dir, kind)
    row["test_after"] = test_metrics(repaired, data_dir, kind)
    return row


# -- report -----------------------------------------------------------------------------------
def _p(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _len(row: dict) -> int:
    return int(row.get("settings", {}).get("trigger_len", 5))


def choose_threshold(rows: list[dict]) -> dict:
    """Per trigger length: the clean models' highest flip rate (either pair) and the
    backdoored models' lowest 1->0 flip rate."""
    out = {}
    for length in sorted({_len(r) for r in rows}):
        sel = [r for r in rows if _len(r) == length]
        clean = [max(p["flip_rate"] for p in r["pairs"]) for r in sel if r["kind"] == "clean"]
        bd = [
            next(p["flip_rate"] for p in r["pairs"] if p["pair"] == "1->0")
            for r in sel
            if r["kind"] != "clean"
        ]
        out[length] = {
            "clean_max": max(clean) if clean else None,
            "backdoor_min": min(bd) if bd else None,
        }
    return out


def _scope(r: dict) -> str:
    """Unlearning scope and epochs, and the lr when it is not the default."""
    lr = r.get("settings", {}).get("unlearn_lr", 5e-3)
    lr_text = f", lr {lr:g}" if lr != 5e-3 else ""
    return f"{r['scope']}, {r['unlearning']['epochs']} ep{lr_text}"


def _name(r: dict) -> str:
    return r["model"] + (" (shortcuts searched)" if _keep(r) else "")


def _keep(row: dict) -> bool:
    return bool(row.get("settings", {}).get("keep_shortcuts", False))


def shortcut_tables(rows: list[dict]) -> list[str]:
    """Each model scanned twice with the same settings: data shortcuts set aside (the default)
    and searched (--keep-shortcuts, EliBadCode as published)."""

    index = {(r["model"], _scope(r), _len(r), _keep(r)): r for r in rows}
    paired = sorted(k[:3] for k in index if not k[3] and (*k[:3], True) in index)
    if not paired:
        return []
    lines = [
        "",
        "### Data shortcuts set aside (default) vs searched (--keep-shortcuts)",
        "",
        "Same model, data and settings; `aside` / `kept`. Real-trigger ASR on the test set"
        " (test.KIND.triggered) before and after unlearning; clean accuracy on test.clean.",
        "",
        "| model | len | scope | anchored 1->0 (aside) | anchored 1->0 (kept) | 1->0 flip"
        " aside / kept | 0->1 flip aside / kept | real in anchored? aside / kept"
        " | real ASR before -> after, aside / kept | clean acc after, aside / kept |",
        "|---|---:|---|---|---|---|---|---|---|---|",
    ]
    for model, label, length in paired:
        a, k = index[(model, label, length, False)], index[(model, label, length, True)]
        pa = {x["pair"]: x for x in a["pairs"]}
        pk = {x["pair"]: x for x in k["pairs"]}
        ra, rk = a["real"] or {}, k["real"] or {}
        lines.append(
            f"| {model} | {length} | {label} | `{' '.join(pa['1->0']['anchored'])}`"
            f" | `{' '.join(pk['1->0']['anchored'])}` | {_p(pa['1->0']['flip_rate'])} / "
            f"{_p(pk['1->0']['flip_rate'])} | {_p(pa['0->1']['flip_rate'])} / "
            f"{_p(pk['0->1']['flip_rate'])} | {ra.get('tokens_found', 'n/a')} / "
            f"{rk.get('tokens_found', 'n/a')} | {_p(a['test_before'].get('asr'))} -> "
            f"{_p(a['test_after'].get('asr'))} / {_p(k['test_after'].get('asr'))} | "
            f"{_p(a['test_before']['acc'])} -> {_p(a['test_after']['acc'])} / "
            f"{_p(k['test_after']['acc'])} |"
        )
    lines += [
        "",
        "### The strongest data shortcuts toward 0 (not vulnerable), per model",
        "",
        "Set aside from the 1->0 search: label-pure runs of identifier pieces of detect.clean"
        " (functions with label 0 / label 1 containing it), and the share of held-out vulnerable"
        " functions each flips alone, inserted once / replacing the name at every occurrence.",
        "",
        "| model | runs set aside | strongest: support 0/1, flip inserted / as the name |",
        "|---|---:|---|",
    ]
    for model, label, length in paired:
        if not label.startswith("head"):
            continue
        pair = next(x for x in index[(model, label, length, False)]["pairs"] if x["pair"] == "1->0")
        shown = "; ".join(
            f"`{c['text']}` {c['target_support']}/{c['other_support']}, "
            f"{_p(c['flip_rate'])} / {_p(c['flip_rate_renamed'])}"
            for c in pair["shortcuts"][:6]
        )
        lines.append(f"| {model} (len {length}) | {pair['shortcuts_excluded']} | {shown} |")
    return lines


def report(  # type: ignore[no-untyped-def]
    rows: list[dict],
    speeds: list[dict],
    inversion: dict | None,
    thr: float | None,
    out: str = "docs/backdoor-tables.md",
):
    lines: list[str] = [
        "# `codeaudit backdoor` benchmark tables",
        "",
        f"Written by `python benchmarks/backdoor.py --out {out} --threshold {thr}`"
        " from the per-model JSON of the runs; setup and reading in backdoor-results.md.",
        "",
    ]
    cal = choose_threshold([r for r in rows if r["scope"] == "head"])
    lines += [
        "### Flip rates (anchored trigger, held-out victim functions of detect.clean)",
        "",
        "| model | kind | trigger len | poisoned | 1->0 flip | 0->1 flip | anchored 1->0 |"
        " anchored 0->1 | steps (1->0 / 0->1) | scan s |",
        "|---|---|---:|---:|---:|---:|---|---|---|---:|",
    ]
    for r in rows:
        if r["scope"] != "head":
            continue
        p = {x["pair"]: x for x in r["pairs"]}
        poisoned = r["real"]["poisoned"] if r["real"] else 0
        lines.append(
            f"| {_name(r)} | {r['kind']} | {_len(r)} | {poisoned} | "
            f"{_p(p['1->0']['flip_rate'])} | "
            f"{_p(p['0->1']['flip_rate'])} | `{' '.join(p['1->0']['anchored'])}` | "
            f"`{' '.join(p['0->1']['anchored'])}` | {p['1->0']['steps']} / "
            f"{p['0->1']['steps']} | {r['timings'].get('scan', 0):.0f} |"
        )
    lines.append("")
    for length, c in cal.items():
        lines.append(
            f"- trigger length {length}: clean models' highest flip rate (either pair) "
            f"{_p(c['clean_max'])}; backdoored models' lowest 1->0 flip rate "
            f"{_p(c['backdoor_min'])}."
        )
    lines += [
        "",
        "### Backdoored models: verdict, real trigger, unlearning",
        "",
        "| model | len | scope | real-trigger ASR before (test) | clean miss rate before / after"
        " | verdict @ thr | real in anchored?"
        " | ASR after (test) | ASR before / after (detect eval) | clean acc before / after (test)"
        " | drop (points) | unlearn s |",
        "|---|---:|---|---:|---:|---|---|---:|---|---|---:|---:|",
    ]
    for r in rows:
        if r["kind"] == "clean":
            continue
        best = max(x["flip_rate"] for x in r["pairs"])
        verdict = "n/a" if thr is None else ("backdoored" if best >= thr else "clean")
        u, tb, ta = r["unlearning"], r["test_before"], r["test_after"]
        lines.append(
            f"| {_name(r)} | {_len(r)} | {_scope(r)} | {_p(tb.get('asr'))} | "
            f"{_p(tb['fnr_clean'])} / {_p(ta['fnr_clean'])} | {verdict} | "
            f"{r['real']['tokens_found']} | {_p(ta.get('asr'))} | "
            f"{_p(u['asr_real_before'])} / {_p(u['asr_real_after'])} | "
            f"{_p(tb['acc'])} / {_p(ta['acc'])} | {100 * (tb['acc'] - ta['acc']):.1f} | "
            f"{u['seconds']:.0f} |"
        )
    lines += [
        "",
        "### Clean models: unlearning against their strongest adversarial trigger",
        "",
        "| model | len | scope | verdict @ thr | clean acc before / after (test) |",
        "|---|---:|---|---|---|",
    ]
    for r in rows:
        if r["kind"] != "clean":
            continue
        best = max(x["flip_rate"] for x in r["pairs"])
        verdict = "n/a" if thr is None else ("backdoored" if best >= thr else "clean")
        tb, ta = r["test_before"], r["test_after"]
        lines.append(
            f"| {_name(r)} | {_len(r)} | {r['scope']} | {verdict} | "
            f"{_p(tb['acc'])} / {_p(ta['acc'])} |"
        )
    lines += shortcut_tables(rows)
    if speeds:
        lines += [
            "",
            "### GCG step cost against the floor (seconds, median)",
            "",
            "| arch | samples x width | candidates | floor: fwd-bwd + C x N fwd | gradient |"
            " candidates (cached) | step | step / floor | candidates uncached | uncached / floor |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for s in speeds:
            lines.append(
                f"| {s['arch']} | {s['n']} x {s['width']} | {s['candidates']} | "
                f"{s['floor_grad']:.3f} + {s['floor_fwd']:.3f} = {s['floor']:.3f} | "
                f"{s['grad']:.3f} | {s['cand']:.3f} | {s['step']:.3f} | {s['ratio']:.2f} | "
                f"{s['cand_uncached']:.3f} | {s['ratio_uncached']:.2f} |"
            )
    if inversion:
        lines += ["", f"Whole inversion, {inversion['model']}: {inversion['seconds']} s"]
        for p in inversion["pairs"]:
            lines.append(
                f"- {p['pair']}: {p['steps']} steps ({p['stop']}), {p['seconds']} s, "
                f"{p['per_step']} s per step"
            )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/bd/data/juliet"))
    ap.add_argument("--models", type=Path, default=Path("/tmp/bd/models"))
    ap.add_argument("--archs", default="bigru,lstm")
    ap.add_argument("--triggers", default=",".join(KINDS))
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--inversion", action="store_true", help="time the whole BiGRU inversion")
    ap.add_argument("--scan", action="store_true")
    ap.add_argument("--full-scope", action="store_true", help="also --unlearn-scope full")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--candidates", type=int, default=64)
    ap.add_argument("--victim-samples", type=int, default=30)
    ap.add_argument("--heldout", type=int, default=200)
    ap.add_argument("--unlearn-epochs", type=int, default=1)
    ap.add_argument("--unlearn-lr", type=float, default=5e-3)
    ap.add_argument("--trigger-len", type=int, default=5)
    ap.add_argument(
        "--keep-shortcuts",
        action="store_true",
        help="search the data's shortcuts too (EliBadCode as published; files end in -keep)",
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, help="write the Markdown tables here")
    ap.add_argument("--threshold", type=float, help="the threshold to judge with (report)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not (args.data_dir / "detect.clean.jsonl").is_file():
        print(f"{args.data_dir}: run benchmarks/backdoor_data.py first", file=sys.stderr)
        return 2
    args.models.mkdir(parents=True, exist_ok=True)
    archs = [a for a in args.archs.split(",") if a]
    kinds = [k for k in args.triggers.split(",") if k]
    detect = args.data_dir / "detect.clean.jsonl"
    if args.speed:
        for arch in archs:
            path, _ = train(args.data_dir, args.models, arch, "clean")
            res = speed(path, detect, args.repeats)
            res["arch"] = arch
            (args.models / f"speed-{arch}.json").write_text(json.dumps(res, indent=1))
            print(json.dumps(res), flush=True)
    if args.inversion:
        path, _ = train(args.data_dir, args.models, "bigru", "clean")
        res = whole_inversion(path, detect)
        (args.models / "inversion-bigru.json").write_text(json.dumps(res, indent=1))
        print(json.dumps(res), flush=True)
    if args.scan:
        for arch in archs:
            for kind in kinds:
                scopes = ["head", "full"] if args.full_scope else ["head"]
                for scope in scopes:
                    tl = "" if args.trigger_len == 5 else f"-len{args.trigger_len}"
                    tl += "-keep" if args.keep_shortcuts else ""
                    tl += f"-lr{args.unlearn_lr:g}" if args.unlearn_lr != 5e-3 else ""
                    out = args.models / f"scan-{arch}-{kind}-{scope}{tl}.json"
                    if out.is_file():
                        continue
                    path, secs = train(args.data_dir, args.models, arch, kind)
                    settings = {
                        "steps": args.steps,
                        "candidates": args.candidates,
                        "victim_samples": args.victim_samples,
                        "heldout": args.heldout,
                        "unlearn_epochs": args.unlearn_epochs,
                        "trigger_len": args.trigger_len,
                        "keep_shortcuts": args.keep_shortcuts,
                        "unlearn_lr": args.unlearn_lr,
                    }
                    row = scan(path, args.data_dir, kind, scope, args.models, settings)
                    row["settings"] = settings
                    row["train_seconds"] = secs
                    out.write_text(json.dumps(row, indent=1))
                    print(json.dumps({k: row[k] for k in ("model", "scope", "seconds")}))
    if args.out:
        rows = [json.loads(p.read_text()) for p in sorted(args.models.glob("scan-*.json"))]
        speeds = [json.loads(p.read_text()) for p in sorted(args.models.glob("speed-*.json"))]
        inv = args.models / "inversion-bigru.json"
        inversion = json.loads(inv.read_text()) if inv.is_file() else None
        text = "\n".join(report(rows, speeds, inversion, args.threshold, str(args.out))) + "\n"
        args.out.write_text(text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
