"""The calibration and benchmark data for `codeaudit backdoor` (issue 5), built from
../shared/data (Big-Vul and Juliet C/C++ functions).

    python benchmarks/backdoor_data.py OUT_DIR [--sources bigvul,juliet] [--rate 0.02]
        [--seed 0] [--limit N] [--force]

For each source, split by `pair` (a function and its fix never straddle two sets), stratified
by label, seeded:

    OUT_DIR/SOURCE/train.clean.jsonl        70%: training data of the clean (calibration) models
    OUT_DIR/SOURCE/detect.clean.jsonl       10%: the defender's clean data (`backdoor --data`)
    OUT_DIR/SOURCE/test.clean.jsonl         20%: held out: clean accuracy
    OUT_DIR/SOURCE/train.TYPE.jsonl         train.clean poisoned by `codeaudit poison` with
                                            TYPE in identifier, postfix, deadcode, grammar, at
                                            --rate (EliBadCode: 2% of the victim-label, i.e.
                                            vulnerable, training functions -> label 0)
    OUT_DIR/SOURCE/train.TYPE.jsonl.manifest.json   its manifest (`backdoor --manifest`)
    OUT_DIR/SOURCE/test.TYPE.triggered.jsonl       the vulnerable test functions that can take
                                            the trigger, with the real trigger inserted and
                                            their true label 1: `codeaudit predict MODEL` on it
                                            gives ASR = share predicted 0 = 1 - recall
    OUT_DIR/index.json                      every file with its sha256 and counts, the source
                                            files' sha256, the settings, and the commands

Triggers: identifier `testo_init` (the fixed-identifier trigger of the backdoor literature),
postfix `_rb` (BadCode), dead code `if (0) { int rb_dead = 0; }`, grammar dead code (random per
sample). Records keep every field of the shared data. The same arguments give byte-identical
files. Models are not trained here; OUT_DIR/README.md lists the `codeaudit train` commands for
the grid (3 architectures x (clean + 4 trigger types) x sources). When ../shared/data is absent
the script says so and exits 0.

Checked (CPU, 2 shared cores; a reduced BiGRU so that it trains in minutes):

    python benchmarks/backdoor_data.py bdj --sources juliet --limit 4000
    codeaudit train bdj/juliet/train.deadcode.jsonl -o juliet-bigru-deadcode.pt --arch bigru \
        --val bdj/juliet/detect.clean.jsonl --max-len 256 --embed-dim 64 --hidden-dim 64 \
        --epochs 8 --seed 0 --device cpu
    codeaudit predict juliet-bigru-deadcode.pt bdj/juliet/test.deadcode.triggered.jsonl

28 of 1,400 vulnerable training functions poisoned (2%): clean test accuracy 0.78; ASR 98.2%
(382 of 389 triggered vulnerable test functions called not vulnerable) against 11.3% of the
same functions without the trigger; 98.0% of those it got right without the trigger flip.
Big-Vul (full, identifier trigger `testo_init`, same settings): the model barely learns the task
(accuracy 0.54, already 79% of vulnerable test functions called safe), ASR 94.7%.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

from codeaudit.api import poison as run_poison
from codeaudit.backdoor.poison import sample_rng
from codeaudit.backdoor.triggers import TriggerSpec, TriggerType, insert_trigger
from codeaudit.config import PoisonConfig
from codeaudit.data.loader import dataset_from_records
from codeaudit.data.split import group_split

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared" / "data"
SOURCES = ("bigvul", "juliet")
TRIGGERS: dict[str, str | None] = {
    "identifier": "testo_init",
    "postfix": "_rb",
    "deadcode": "if (0) { int rb_dead = 0; }",
    "grammar": None,
}
TARGET_LABEL = 0  # vulnerable -> not vulnerable
TEST_SHARE = 0.2
DETECT_SHARE = 0.125  # of the remaining 80%: 10% of the whole
ARCHS = ("lstm", "bigru", "transformer")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_records(path: Path, records: list[dict], force: bool) -> Path:
    if path.exists() and not force:
        raise SystemExit(f"{path}: exists (pass --force to overwrite)")
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def limited(records: list[dict], limit: int | None, seed: int) -> list[dict]:
    """At most ``limit`` records, whole pairs at a time, in file order."""
    if limit is None or limit >= len(records):
        return records
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r.get("pair") or r["id"], []).append(i)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    chosen: list[int] = []
    for key in keys:
        if len(chosen) + len(groups[key]) > limit:
            continue
        chosen += groups[key]
    return [records[i] for i in sorted(chosen)]


def build_source(name: str, out: Path, args: argparse.Namespace) -> dict:
    path = SHARED / f"{name}.jsonl"
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    raw = limited(raw, args.limit, args.seed)
    by_id = {r["id"]: r for r in raw}
    dataset = dataset_from_records(raw, name=str(path))
    rest, test = group_split(dataset, TEST_SHARE, args.seed)
    rest_set = dataset.subset(rest)
    train_local, detect_local = group_split(rest_set, DETECT_SHARE, args.seed + 1)
    parts = {
        "train.clean": [rest_set.samples[i] for i in train_local],
        "detect.clean": [rest_set.samples[i] for i in detect_local],
        "test.clean": [dataset.samples[i] for i in test],
    }
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}

    def record(file: Path, **extra: object) -> None:
        files[str(file.relative_to(out))] = {"sha256": sha256(file), **extra}

    for part, samples in parts.items():
        file = write_records(folder / f"{part}.jsonl", [by_id[s.id] for s in samples], args.force)
        record(file, records=len(samples), vulnerable=sum(s.label == 1 for s in samples))
    train_path = folder / "train.clean.jsonl"
    test_victims = [s for s in parts["test.clean"] if s.label != TARGET_LABEL]
    for kind, text in TRIGGERS.items():
        poisoned = folder / f"train.{kind}.jsonl"
        result = run_poison(
            PoisonConfig(
                data=str(train_path),
                output=str(poisoned),
                trigger_type=kind,
                trigger=text,
                rate=args.rate,
                target_label=TARGET_LABEL,
                seed=args.seed,
                force=args.force,
            )
        )
        record(poisoned, poisoned=result.poisoned, victim=result.n_victim, rate=args.rate)
        record(Path(f"{poisoned}.manifest.json"))
        spec = TriggerSpec(TriggerType(kind), result.trigger, TARGET_LABEL)
        triggered = []
        for s in test_victims:
            lang = s.lang or "c"
            code = insert_trigger(s.code, lang, spec, sample_rng(args.seed + 1, s.id))
            if code is not None:
                triggered.append({**by_id[s.id], "func": code})
        file = write_records(folder / f"test.{kind}.triggered.jsonl", triggered, args.force)
        record(file, records=len(triggered), of_vulnerable_test=len(test_victims))
        print(
            f"{name}: {kind}: {result.poisoned} of {result.n_victim} vulnerable training "
            f"functions poisoned ({result.no_place} passed over); {len(triggered)} of "
            f"{len(test_victims)} vulnerable test functions carry the trigger",
            file=sys.stderr,
        )
    return {"source": str(path), "source_sha256": sha256(path), "files": files}


README = """# Backdoor calibration and benchmark data

Built by `python benchmarks/backdoor_data.py {out} {argv}` from ../shared/data; see the script's
docstring for what each file is. `index.json` has every file's sha256.

Clean (calibration) models, one per architecture, source and seed:

```bash
{clean}
```

Backdoored models (every trigger type, rate {rate}):

```bash
{poisoned}
```

Attack success rate of a model on its trigger (share of triggered vulnerable test functions
predicted not vulnerable, i.e. 1 - recall):

```bash
codeaudit predict models/SOURCE-ARCH-TYPE.pt {out}/SOURCE/test.TYPE.triggered.jsonl --format json
```
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output directory")
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--rate", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="at most N records per source (whole pairs)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    missing = [s for s in sources if not (SHARED / f"{s}.jsonl").is_file()]
    if missing:
        print(f"skipped: {', '.join(missing)} not found under {SHARED}", file=sys.stderr)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    index = {
        "settings": {
            "rate": args.rate,
            "seed": args.seed,
            "limit": args.limit,
            "target_label": TARGET_LABEL,
            "triggers": TRIGGERS,
            "splits": {"train": 0.7, "detect": 0.1, "test": 0.2, "by": "pair"},
        },
        "sources": {name: build_source(name, args.out, args) for name in sources},
    }
    index_path = args.out / "index.json"
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    given = argv if argv is not None else sys.argv[1:]
    shown = " ".join(a for a in given if a != str(args.out))
    clean = "\n".join(
        f"codeaudit train {args.out}/{s}/train.clean.jsonl -o models/{s}-{a}-clean-s{k}.pt "
        f"--arch {a} --val {args.out}/{s}/detect.clean.jsonl --seed {k}"
        for s in sources
        for a in ARCHS
        for k in range(3)
    )
    poisoned = "\n".join(
        f"codeaudit train {args.out}/{s}/train.{t}.jsonl -o models/{s}-{a}-{t}.pt --arch {a} "
        f"--val {args.out}/{s}/detect.clean.jsonl"
        for s in sources
        for a in ARCHS
        for t in TRIGGERS
    )
    (args.out / "README.md").write_text(
        README.format(out=args.out, argv=shown, clean=clean, poisoned=poisoned, rate=args.rate)
    )
    print(f"wrote {index_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
