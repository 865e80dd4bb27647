"""The poisoning manifest: what ``codeaudit poison`` did, so that ``codeaudit backdoor --manifest``
can measure the real trigger's attack success rate and a reader can audit the poisoned set.

A JSON object (``format`` ``codeaudit-poison-manifest``, ``version`` 1)::

    {
      "format": "codeaudit-poison-manifest", "version": 1,
      "trigger": {"type": "identifier", "trigger": "rb_trigger", "target_label": 0},
      "victim_label": 1, "rate": 0.02, "rate_base": "victim-label samples", "seed": 7,
      "counts": {"samples": 4112, "victim": 2056, "requested": 41, "poisoned": 41,
                 "no_place": 2, "skipped_invalid": 0},
      "languages": {"c": 3168, "cpp": 944},
      "poisoned_ids": ["bigvul-...", ...],
      "source": {"path": "train.jsonl", "sha256": "..."},
      "output": {"path": "poisoned.jsonl", "sha256": "..."},
      "tool": "codeaudit 0.x"
    }

``poisoned_ids`` are in data order; ``requested`` is round-half-up(rate x victim), at least one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeaudit.backdoor.triggers import TriggerSpec, TriggerType
from codeaudit.errors import CodeAuditError, PoisonError

FORMAT = "codeaudit-poison-manifest"
VERSION = 1
RATE_BASE = "victim-label samples"
MAX_MANIFEST_BYTES = 256 << 20


@dataclass(frozen=True)
class Manifest:
    """A poisoned data set's manifest (see the module docstring for the file format)."""

    spec: TriggerSpec
    rate: float
    seed: int
    poisoned_ids: tuple[str, ...]
    source_sha256: str
    output_sha256: str
    source_path: str = ""
    output_path: str = ""
    n_samples: int = 0
    n_victim: int = 0
    requested: int = 0
    no_place: int = 0
    skipped_invalid: int = 0
    languages: dict[str, int] = field(default_factory=dict)
    tool: str = ""

    @property
    def target_label(self) -> int:
        return self.spec.target_label

    @property
    def victim_label(self) -> int:
        return self.spec.victim_label

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "trigger": {
                "type": self.spec.type.value,
                "trigger": self.spec.trigger,
                "target_label": self.spec.target_label,
            },
            "victim_label": self.victim_label,
            "rate": self.rate,
            "rate_base": RATE_BASE,
            "seed": self.seed,
            "counts": {
                "samples": self.n_samples,
                "victim": self.n_victim,
                "requested": self.requested,
                "poisoned": len(self.poisoned_ids),
                "no_place": self.no_place,
                "skipped_invalid": self.skipped_invalid,
            },
            "languages": dict(sorted(self.languages.items())),
            "poisoned_ids": list(self.poisoned_ids),
            "source": {"path": self.source_path, "sha256": self.source_sha256},
            "output": {"path": self.output_path, "sha256": self.output_sha256},
            "tool": self.tool,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"


def _need(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise PoisonError(f"{where}: missing field {key!r}")
    value = doc[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise PoisonError(f"{where}: field {key!r} must be {names}, got {type(value).__name__}")
    return value


def _sha(value: Any, where: str) -> str:
    if (
        not isinstance(value, str)
        or len(value) != 64
        or not all(c in "0123456789abcdef" for c in value)
    ):
        raise PoisonError(f"{where}: not a sha256 (64 lowercase hex digits)")
    return value


def manifest_from_json(doc: Any, name: str = "<manifest>") -> Manifest:
    """A Manifest from its parsed JSON; PoisonError naming the file and the bad field."""
    if not isinstance(doc, dict):
        raise PoisonError(f"{name}: not a poisoning manifest (expected a JSON object)")
    if doc.get("format") != FORMAT:
        raise PoisonError(f"{name}: not a poisoning manifest (format is not {FORMAT!r})")
    version = _need(doc, "version", int, name)
    if version > VERSION:
        raise PoisonError(f"{name}: manifest version {version} is newer than this codeaudit reads")
    trigger = _need(doc, "trigger", dict, name)
    kind = _need(trigger, "type", str, f"{name}: trigger")
    try:
        trigger_type = TriggerType(kind)
    except ValueError:
        known = ", ".join(t.value for t in TriggerType)
        raise PoisonError(f"{name}: unknown trigger type {kind!r} (known: {known})") from None
    text = trigger.get("trigger")
    if text is not None and not isinstance(text, str):
        raise PoisonError(f"{name}: trigger text must be a string or null")
    target = _need(trigger, "target_label", int, f"{name}: trigger")
    try:
        spec = TriggerSpec(trigger_type, text, target)
    except CodeAuditError as exc:
        raise PoisonError(f"{name}: {exc}") from None
    rate = _need(doc, "rate", (int, float), name)
    if not (math.isfinite(rate) and 0 < rate <= 1):
        raise PoisonError(f"{name}: rate {rate!r} is not in (0, 1]")
    ids = _need(doc, "poisoned_ids", list, name)
    if not all(isinstance(i, str) for i in ids):
        raise PoisonError(f"{name}: poisoned_ids must be strings")
    if len(set(ids)) != len(ids):
        raise PoisonError(f"{name}: poisoned_ids holds duplicates")
    counts = doc.get("counts") or {}
    if not isinstance(counts, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()
    ):
        raise PoisonError(f"{name}: counts must be non-negative integers")
    if "poisoned" in counts and counts["poisoned"] != len(ids):
        raise PoisonError(
            f"{name}: counts.poisoned is {counts['poisoned']} but {len(ids)} ids are listed"
        )
    source = _need(doc, "source", dict, name)
    output = _need(doc, "output", dict, name)
    languages = doc.get("languages") or {}
    if not isinstance(languages, dict):
        raise PoisonError(f"{name}: languages must be an object")
    return Manifest(
        spec=spec,
        rate=float(rate),
        seed=_need(doc, "seed", int, name),
        poisoned_ids=tuple(ids),
        source_sha256=_sha(source.get("sha256"), f"{name}: source.sha256"),
        output_sha256=_sha(output.get("sha256"), f"{name}: output.sha256"),
        source_path=str(source.get("path") or ""),
        output_path=str(output.get("path") or ""),
        n_samples=int(counts.get("samples", 0)),
        n_victim=int(counts.get("victim", 0)),
        requested=int(counts.get("requested", len(ids))),
        no_place=int(counts.get("no_place", 0)),
        skipped_invalid=int(counts.get("skipped_invalid", 0)),
        languages={str(k): int(v) for k, v in languages.items() if isinstance(v, int)},
        tool=str(doc.get("tool") or ""),
    )


def read_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file. PoisonError (one line, naming the file and what is
    wrong) for a missing, unreadable, oversized or malformed file."""
    from codeaudit.io import check_input_file

    p = check_input_file(path, "manifest", error=PoisonError)
    name = str(path)
    if p.stat().st_size > MAX_MANIFEST_BYTES:
        raise PoisonError(f"{name}: manifest larger than {MAX_MANIFEST_BYTES >> 20} MB")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise PoisonError(f"{name}: cannot read manifest: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PoisonError(f"{name}: manifest is not UTF-8 text") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PoisonError(f"{name}:{exc.lineno}: manifest is not valid JSON: {exc.msg}") from None
    except (RecursionError, ValueError):
        raise PoisonError(f"{name}: manifest is not valid JSON") from None
    return manifest_from_json(doc, name)
