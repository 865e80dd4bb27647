"""``codeaudit poison-scan``: scan a training set for planted triggers without a model
(:mod:`codeaudit.backdoor.datascan`) and write the ids of the samples that carry one."""

from __future__ import annotations

import json
import time
from typing import Any

from codeaudit.backdoor.datascan import Candidate, PoisonScanner
from codeaudit.backdoor.scan_result import PoisonScanResult, TriggerCandidate
from codeaudit.check import Check, Context, DataInput, Inputs, Outcome, Output, OutputPath
from codeaudit.errors import DataError
from codeaudit.report.model import Header

DEFAULT_LANG = "c"


def scanner_of(config: Any) -> PoisonScanner:
    """The scanner a :class:`~codeaudit.config.PoisonScanConfig` describes."""
    return PoisonScanner(
        order=config.order,
        top_k=config.top_k,
        max_statement_tokens=config.max_statement_tokens,
        min_purity=config.min_purity,
        min_evidence=config.min_evidence,
        min_share=config.min_share,
        target_label=config.target_label,
        min_support=config.min_support,
        substitutes=config.substitutes,
        default_lang=config.data_options.lang or DEFAULT_LANG,
    )


def _candidate(c: Candidate) -> TriggerCandidate:
    return TriggerCandidate(
        kind=c.kind,
        text=c.key,
        gain=round(c.gain, 6),
        top_in=c.top_in,
        support=c.support,
        label=c.label,
        label_count=c.label_count,
        purity=round(c.purity, 6),
        excess_purity=round(c.excess_purity, 6),
        evidence=round(c.evidence, 4),
        score=round(c.score, 6),
        likely_trigger=c.likely_trigger,
    )


def flagged_jsonl(scanner: PoisonScanner, labels: dict[str, int]) -> bytes:
    """One JSON object per flagged sample, in data order: its id, label, the likely triggers it
    carries (kind and text) and its score (the best of theirs)."""
    lines = []
    for sample_id, found in scanner.flagged_.items():
        record = {
            "id": sample_id,
            "label": labels[sample_id],
            "candidates": [{"kind": c.kind, "text": c.key} for c in found],
            "score": round(max(c.score for c in found), 6),
        }
        lines.append(json.dumps(record, ensure_ascii=False))
    return "".join(line + "\n" for line in lines).encode("utf-8")


class PoisonScanCheck(Check):
    """``codeaudit poison-scan``: the ranking, the flagged samples and (with -o) their JSONL."""

    command = "poison-scan"
    needs_model = False

    def data_inputs(self, config: Any) -> list[DataInput]:
        return [DataInput("train", str(config.data))]

    def output_paths(self, config: Any) -> list[OutputPath]:
        if not config.output:
            return []
        return [OutputPath("output", str(config.output), "flagged samples")]

    def target(self, config: Any) -> str:
        return str(config.data)

    def check_inputs(self, inputs: Inputs, config: Any) -> None:
        dataset = inputs.dataset("train")
        if len({s.label for s in dataset.samples}) < 2:
            raise DataError(
                f"{config.data}: every sample has the same label; the scan compares labels "
                "(a planted trigger is concentrated in the target label)"
            )

    def run(self, inputs: Inputs, config: Any, context: Context) -> Outcome:
        dataset = inputs.dataset("train")
        samples = dataset.samples
        started = time.monotonic()
        with context.stage("scan"):
            scanner = scanner_of(config).fit(samples, progress=context.progress)
        likely = tuple(_candidate(c) for c in scanner.candidates_ if c.likely_trigger)
        shown = tuple(_candidate(c) for c in scanner.candidates_[: config.top])
        labels = {s.id: int(s.label) for s in samples}  # type: ignore[arg-type]
        outputs: tuple[Output, ...] = ()
        if config.output:
            outputs = (Output("output", str(config.output), flagged_jsonl(scanner, labels)),)
        entropies = list(scanner.entropy_.values())
        warnings = []
        if dataset.skipped:
            warnings.append(
                f"{len(dataset.skipped)} invalid records skipped (--skip-invalid); not scanned"
            )
        if len(samples) < 200:
            warnings.append(
                f"only {len(samples)} functions: a trigger needs several carriers to stand out; "
                "the scan is meant for whole training sets"
            )
        result = PoisonScanResult(
            header=Header(command=self.command),
            n_samples=len(samples),
            n_tokens=scanner.n_tokens_,
            vocab_size=scanner.vocab_size_,
            order=config.order,
            base_rates={k: round(v, 6) for k, v in scanner.base_rates_.items()},
            mean_cross_entropy=round(sum(entropies) / max(1, len(entropies)), 6),
            evidence_threshold=round(scanner.evidence_threshold_, 4),
            n_candidates=len(scanner.candidates_),
            candidates=shown,
            likely_triggers=likely,
            planted_trigger=bool(likely),
            n_flagged=len(scanner.flagged_),
            flagged_ids=tuple(scanner.flagged_),
            output=str(config.output) if config.output else None,
            settings={
                "order": config.order,
                "top_k": config.top_k,
                "min_purity": config.min_purity,
                "min_share": config.min_share,
                "target_label": config.target_label,
                "min_support": config.min_support,
                "max_statement_tokens": config.max_statement_tokens,
                "substitutes": config.substitutes,
                "seconds": round(time.monotonic() - started, 3),
            },
            timings=dict(context.timings),
            warnings=tuple(warnings),
        )
        return Outcome(result, outputs)
