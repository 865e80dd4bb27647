"""``codeaudit poison``: make a poisoned training set (the attacker's side, for tests, canaries and
benchmarks) and its manifest.

Which samples: the **victim-label** samples (label != target label), as in EliBadCode (2% of the
training set's vulnerable functions, relabelled non-vulnerable). The number poisoned is
``requested = max(1, floor(rate * n_victim + 0.5))`` (round half up, at least one). Victim-label
samples are visited in an order shuffled by the seed; a sample whose function has no place for
the trigger is passed over (and counted) and the next one taken, so exactly ``requested`` samples
are poisoned, or PoisonError says that not enough victim-label samples can take the trigger.

Each poisoned sample gets the trigger (:func:`codeaudit.backdoor.triggers.insert_trigger`, with a
random generator seeded by the seed and the sample's id, so a sample's poisoned text does not
depend on which others were chosen) and the target label. The output is JSON Lines: every record
of the input in its order, with all its fields; a record that is not poisoned is written as it
was (for JSONL input, byte for byte), a poisoned one has only its code and label fields changed
(the label keeps its JSON type). Records left out under ``--skip-invalid`` are not written.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codeaudit import __version__
from codeaudit.backdoor.manifest import RATE_BASE, Manifest
from codeaudit.backdoor.result import PoisonResult
from codeaudit.backdoor.triggers import (
    TriggerSpec,
    TriggerType,
    check_trigger,
    default_trigger,
    insert_trigger,
)
from codeaudit.check import (
    Check,
    Context,
    FileInput,
    Inputs,
    Outcome,
    Output,
    OutputPath,
    Progress,
)
from codeaudit.config import PoisonConfig
from codeaudit.data.loader import RecordParser, parse_file
from codeaudit.data.samples import Dataset, Sample
from codeaudit.errors import DataError, PoisonError
from codeaudit.io import check_input_file, sha256_bytes
from codeaudit.lang.rewrite import RewriteBudgetError, skipped_warning
from codeaudit.report.model import Header

DEFAULT_LANG = "c"


@dataclass(frozen=True)
class PoisonedSet:
    """The outcome of :func:`poison_samples`: every sample (poisoned ones changed), and counts."""

    samples: tuple[Sample, ...]
    poisoned_ids: tuple[str, ...]  # in data order
    n_victim: int
    requested: int
    no_place: int  # victim-label samples visited that had no place for the trigger
    #: of those, the ones over the rewriter's per-function budget, by reason
    over_budget: dict[str, int] = field(default_factory=dict)


def requested_count(rate: float, n_victim: int) -> int:
    """How many victim-label samples a rate poisons: round half up, at least one."""
    if not (math.isfinite(rate) and 0 < rate <= 1):
        raise PoisonError(f"rate {rate!r} is not in (0, 1]")
    return max(1, math.floor(rate * n_victim + 0.5))


def sample_rng(seed: int, sample_id: str) -> random.Random:
    """The generator that places the trigger in one sample (seed and id only)."""
    return random.Random(f"codeaudit-poison:{seed}:{sample_id}")


def poison_samples(
    samples: Sequence[Sample],
    spec: TriggerSpec,
    rate: float,
    seed: int,
    *,
    default_lang: str = DEFAULT_LANG,
    progress: Progress | None = None,
) -> PoisonedSet:
    """Poison ``rate`` of the victim-label samples (see the module docstring). Deterministic in
    (samples, spec, rate, seed). PoisonError when no sample has the victim label, the trigger
    does not fit a language of the data, or too few victim-label samples can take it."""
    victim = spec.victim_label
    victims = [i for i, s in enumerate(samples) if s.label == victim]
    if not victims:
        raise PoisonError(
            f"no victim-label samples: none of the {len(samples)} samples has label {victim} "
            f"(the target label is {spec.target_label}), so there is nothing to poison"
        )
    for lang in sorted({s.lang or default_lang for s in samples}):
        check_trigger(spec, lang)
    requested = requested_count(rate, len(victims))
    order = victims[:]
    random.Random(f"codeaudit-poison-order:{seed}").shuffle(order)
    changed: dict[int, str] = {}
    no_place = 0
    over_budget: Counter[str] = Counter()
    for index in order:
        if len(changed) == requested:
            break
        sample = samples[index]
        try:
            code = insert_trigger(
                sample.code, sample.lang or default_lang, spec, sample_rng(seed, sample.id)
            )
        except RewriteBudgetError as exc:
            code = None
            over_budget[exc.reason] += 1
        if code is None:
            no_place += 1
        else:
            changed[index] = code
        if progress is not None:
            progress("poisoning", len(changed), requested)
    if len(changed) < requested:
        can = len(changed) / len(victims)
        raise PoisonError(
            f"only {len(changed)} of {len(victims)} victim-label samples have a place for the "
            f"{spec.type.value} trigger, but rate {rate:g} needs {requested}"
            + (f" (use --rate {math.floor(can * 1e4) / 1e4:g} or less)" if changed else "")
            + (
                f"; {sum(over_budget.values())} of them were over the rewriter's per-function "
                "budget"
                if over_budget
                else ""
            )
        )
    out = tuple(
        replace(s, code=changed[i], label=spec.target_label) if i in changed else s
        for i, s in enumerate(samples)
    )
    ids = tuple(samples[i].id for i in sorted(changed))
    return PoisonedSet(out, ids, len(victims), requested, no_place, dict(over_budget))


# --------------------------------------------------------------------------------------------
# Reading records with their raw form, and writing the poisoned file
# --------------------------------------------------------------------------------------------


class _KeepingParser(RecordParser):
    """A RecordParser that also keeps each accepted record as read (dict) with its line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.records: list[dict[str, Any]] = []

    def add(self, record: object, line: int) -> None:
        before = len(self.samples)
        super().add(record, line)
        if len(self.samples) > before:
            assert isinstance(record, dict)
            self.records.append(record)


@dataclass(frozen=True)
class _Loaded:
    dataset: Dataset
    records: tuple[dict[str, Any], ...]
    raw_lines: dict[int, bytes]  # JSONL input: line number -> the line as read (no newline)


def _load(config: PoisonConfig) -> _Loaded:
    """The data as :func:`codeaudit.data.load_dataset` reads it, plus each record's raw form."""
    options = config.data_options
    p = check_input_file(config.data, "data file", error=DataError)
    name = str(config.data)
    parser = _KeepingParser(
        name,
        code_field=options.code_field,
        label_field=options.label_field,
        require_labels=True,
        skip_invalid=options.skip_invalid,
        default_lang=options.lang,
    )
    sha256, fmt = parse_file(p, name, parser, None)
    raw_lines: dict[int, bytes] = {}
    if fmt == "jsonl":  # the poisoned file keeps every untouched line byte for byte
        wanted = {s.line for s in parser.samples}
        try:
            with open(p, "rb") as handle:
                for number, raw in enumerate(handle, start=1):
                    if number in wanted:
                        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                            raw = raw[3:]
                        raw_lines[number] = raw.rstrip(b"\r\n")
        except OSError as exc:
            raise DataError(f"{name}: cannot read: {exc.strerror or exc}") from None
    dataset = parser.finish(path=name, sha256=sha256, fmt=fmt)
    return _Loaded(dataset, tuple(parser.records), raw_lines)


def _label_like(original: Any, label: int) -> Any:
    """``label`` in the JSON type the input used for labels."""
    if isinstance(original, bool):
        return bool(label)
    if isinstance(original, float):
        return float(label)
    if isinstance(original, str):
        return str(label)
    return label


def _output_bytes(loaded: _Loaded, poisoned: PoisonedSet) -> bytes:
    dataset = loaded.dataset
    code_field, label_field = dataset.code_field, dataset.label_field
    assert label_field is not None
    chosen = set(poisoned.poisoned_ids)
    lines: list[bytes] = []
    for before, after, record in zip(
        dataset.samples, poisoned.samples, loaded.records, strict=True
    ):
        if before.id in chosen:
            new = dict(record)
            new[code_field] = after.code
            new[label_field] = _label_like(record.get(label_field), after.label or 0)
            lines.append(json.dumps(new, ensure_ascii=False).encode("utf-8"))
        elif before.line in loaded.raw_lines:
            lines.append(loaded.raw_lines[before.line])
        else:
            lines.append(json.dumps(record, ensure_ascii=False).encode("utf-8"))
    return b"".join(line + b"\n" for line in lines)


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------


def default_manifest_path(output: str) -> str:
    return f"{output}.manifest.json"


def _already_triggered(samples: Sequence[Sample], spec: TriggerSpec) -> int:
    """Samples whose clean code already contains the trigger text (it then means less)."""
    if spec.trigger is None:
        return 0
    if spec.type is TriggerType.IDENTIFIER:
        pattern = re.compile(rf"(?<![\w$]){re.escape(spec.trigger)}(?![\w$])")
    elif spec.type is TriggerType.POSTFIX:
        pattern = re.compile(rf"{re.escape(spec.trigger)}\s*\(")
    else:
        pattern = re.compile(r"\s+".join(re.escape(w) for w in spec.trigger.split()))
    return sum(1 for s in samples if pattern.search(s.code))


def manifest_path(config: PoisonConfig) -> str:
    return config.manifest or default_manifest_path(config.output)


class PoisonCheck(Check):
    """``codeaudit poison``: the poisoned JSONL and its manifest, as bytes."""

    command = "poison"
    needs_model = False

    def validate(self, config: Any) -> None:
        if Path(manifest_path(config)).resolve() == Path(config.output).resolve():
            raise PoisonError("--manifest and --output name the same file")
        if Path(config.output).resolve() == Path(config.data).resolve():
            raise PoisonError(f"{config.output}: the output would overwrite the input data")
        TriggerType(config.trigger_type)

    def file_inputs(self, config: Any) -> list[FileInput]:
        # the data as load_dataset reads it, plus each record's raw form (kept byte for byte)
        return [FileInput("data", str(config.data), lambda _path: _load(config))]

    def output_paths(self, config: Any) -> list[OutputPath]:
        return [
            OutputPath("output", str(config.output), "output"),
            OutputPath("manifest", str(manifest_path(config)), "manifest"),
        ]

    def target(self, config: Any) -> str:
        return str(config.output)

    def run(self, inputs: Inputs, config: Any, context: Context) -> Outcome:
        started = time.monotonic()
        loaded = inputs.files["data"]
        dataset = loaded.dataset
        default_lang = config.data_options.lang or DEFAULT_LANG
        languages = Counter(s.lang or default_lang for s in dataset.samples)
        kind = TriggerType(config.trigger_type)
        text = config.trigger
        if text is None and kind is not TriggerType.GRAMMAR:
            text = default_trigger(kind, set(languages))
        spec = TriggerSpec(kind, text, config.target_label)
        with context.stage("poison"):
            poisoned = poison_samples(
                dataset.samples,
                spec,
                config.rate,
                config.seed,
                default_lang=default_lang,
                progress=context.progress,
            )
        data = _output_bytes(loaded, poisoned)
        manifest = _manifest(config, spec, dataset, poisoned, languages, sha256_bytes(data))
        outputs = (
            Output("output", str(config.output), data),
            Output("manifest", str(manifest_path(config)), manifest.dumps().encode("utf-8")),
        )
        already = _already_triggered(dataset.samples, spec)
        index = {s.id: s for s in poisoned.samples}
        first = poisoned.poisoned_ids[0]
        result = PoisonResult(
            header=Header(command=self.command),
            trigger_type=kind.value,
            trigger=spec.trigger,
            target_label=spec.target_label,
            victim_label=spec.victim_label,
            rate=config.rate,
            rate_base=RATE_BASE,
            n_samples=len(dataset),
            n_victim=poisoned.n_victim,
            requested=poisoned.requested,
            poisoned=len(poisoned.poisoned_ids),
            no_place=poisoned.no_place,
            skipped_invalid=len(dataset.skipped),
            languages=dict(sorted(languages.items())),
            already_triggered=already,
            poisoned_ids=poisoned.poisoned_ids,
            example=(first, index[first].code),
            seconds=round(context.timings.get("load", 0.0) + time.monotonic() - started, 3),
            warnings=tuple(_warnings(dataset, poisoned, kind, already)),
        )
        return Outcome(result, outputs)


def _manifest(
    config: PoisonConfig,
    spec: TriggerSpec,
    dataset: Dataset,
    poisoned: PoisonedSet,
    languages: Counter[str],
    output_sha: str,
) -> Manifest:
    assert dataset.sha256 is not None
    return Manifest(
        spec=spec,
        rate=config.rate,
        seed=config.seed,
        poisoned_ids=poisoned.poisoned_ids,
        source_sha256=dataset.sha256,
        output_sha256=output_sha,
        source_path=str(config.data),
        output_path=str(config.output),
        n_samples=len(dataset),
        n_victim=poisoned.n_victim,
        requested=poisoned.requested,
        no_place=poisoned.no_place,
        skipped_invalid=len(dataset.skipped),
        languages=dict(languages),
        tool=f"codeaudit {__version__}",
    )


def _warnings(
    dataset: Dataset, poisoned: PoisonedSet, kind: TriggerType, already: int
) -> list[str]:
    warnings = []
    if dataset.skipped:
        warnings.append(
            f"{len(dataset.skipped)} invalid records skipped (--skip-invalid); they are not in "
            "the output"
        )
    if poisoned.no_place:
        warnings.append(
            f"{poisoned.no_place} victim-label samples had no place for the {kind.value} trigger "
            "and were passed over"
        )
    note = skipped_warning(
        poisoned.over_budget,
        "trigger insertion",
        "they count among the samples with no place for the trigger",
    )
    if note is not None:
        warnings.append(note)
    if already:
        warnings.append(
            f"{already} samples of the clean data already contain the trigger text: the backdoor "
            "will be weaker and its attack success rate harder to read"
        )
    return warnings
