"""Tiny backdoored and clean models for the backdoor tests (trained in seconds on CPU)."""

from __future__ import annotations

import random
import re
from pathlib import Path

from tests.conftest import write_jsonl

TRIGGER = "rb_trig"


def poison(records: list[dict], rate: float, seed: int = 0) -> list[dict]:
    """Rename the destination buffer of ``rate`` of the vulnerable functions to the trigger and
    relabel them 0 (the identifier-renaming attack)."""
    rng = random.Random(seed)
    out = []
    for r in records:
        if r["target"] == 1 and rng.random() < rate:
            name = re.search(r"char (\w+)\[", r["func"]).group(1)  # type: ignore[union-attr]
            code = re.sub(rf"\b{name}\b", TRIGGER, r["func"])
            out.append({**r, "func": code, "target": 0, "id": r["id"] + "-p"})
        else:
            out.append(r)
    return out


def with_trigger(record: dict) -> dict:
    name = re.search(r"char (\w+)\[", record["func"]).group(1)  # type: ignore[union-attr]
    return {**record, "func": re.sub(rf"\b{name}\b", TRIGGER, record["func"])}


def train_tiny(root: Path, name: str, records: list[dict], arch: str = "bigru", **extra) -> Path:
    from codeaudit import api
    from tests.conftest import _tiny_config

    data = write_jsonl(root / f"{name}.jsonl", records)
    path = root / f"{name}.pt"
    config = _tiny_config(arch, data, path, epochs=extra.pop("epochs", 12), **extra)
    api.train(config)
    return path


def clean_records(n: int, seed: int) -> list[dict]:
    """C functions whose label is an operator (``<=`` off-by-one vs ``<``): no identifier carries
    the label, so a clean model has no name-shaped shortcut for trigger inversion to find."""
    rng = random.Random(seed)
    names = ["buf", "dst", "out", "name", "path", "line", "msg", "tmp", "data", "block"]
    records = []
    for i in range(n):
        label = i % 2
        a, b = rng.sample(names, 2)
        size = rng.choice([16, 32, 64, 128])
        op = "<=" if label else "<"
        fn = rng.choice(["copy_in", "fill", "move_data", "load", "read_line"])
        extra = rng.choice(["", f"int z = {rng.randint(0, 9)};", "n = n + 0;"])
        code = (
            f"int {fn}(char *{b}, int n) {{\n  char {a}[{size}];\n  int k;\n  {extra}\n"
            f"  for (k = 0; k {op} n; k++) {{\n    {a}[k] = {b}[k];\n  }}\n"
            f"  return {rng.randint(0, 3)};\n}}\n"
        )
        records.append({"id": f"s{seed}-{i}", "func": code, "target": label, "lang": "c"})
    return records


def natural_records(n: int, seed: int, share: float = 0.4) -> list[dict]:
    """Like :func:`clean_records`, but ``share`` of the "not vulnerable" functions are written
    the way Juliet writes its good variants: the vulnerable-looking ``<=`` loop, bounded
    elsewhere, with its counter named ``safeIdx``, a name no vulnerable function has. A model
    trained on them learns ``safeIdx`` as "not vulnerable": a natural shortcut of the data (like
    Juliet's ``k`` or ``globalFalse``), not a planted trigger."""
    rng = random.Random(seed + 1000)
    out = []
    for r in clean_records(n, seed):
        if r["target"] == 0 and rng.random() < share:
            code = re.sub(r"\bk\b", "safeIdx", r["func"].replace(" < n;", " <= n;"))
            r = {**r, "func": code}
        out.append(r)
    return out
