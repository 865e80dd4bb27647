"""``codeaudit audit``: the release gate. The runner over several checks: every check whose inputs
are given runs on one model, loaded and hashed once, and their results combine into one: one
section per check, one findings list, one exit code.

The checks an audit can run are listed in :data:`CHECKS`: each entry names the audit inputs it
needs, the :class:`~codeaudit.check.Check` that runs it and how the audit's settings become that
check's configuration. The combined :class:`AuditResult` keeps each check's result (with its
findings moved to the combined list); each result describes its own report sections.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from codeaudit.check import Check, Progress
from codeaudit.config import AuditConfig, BackdoorConfig, MembershipConfig, PoisonScanConfig
from codeaudit.errors import CodeAuditError, UsageError
from codeaudit.report.model import Artifact, Finding, Header


@dataclass(frozen=True)
class AuditCheck:
    """A check the audit can run: the AuditConfig fields it needs (all of them), the check, and
    its configuration from the audit's."""

    name: str
    title: str
    inputs: tuple[str, ...]
    check: Callable[[], Check]
    configure: Callable[[AuditConfig], Any]
    description: str = ""


@dataclass(frozen=True)
class CheckSection:
    """One check of an audit: its result, or why it did not run (``failed``: it was requested
    and could not run on these inputs; otherwise it was not requested)."""

    check: str
    title: str
    result: Any | None
    reason: str | None = None  # set when result is None
    seconds: float = 0.0
    failed: bool = False


@dataclass(frozen=True)
class AuditResult:
    header: Header
    sections: tuple[CheckSection, ...]
    warnings: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    checks_failed: int = 0  # requested checks that could not run (rule CA-A001)

    def describe(self, figures: bool = True) -> list[Any]:
        """The report sections: each check's own, in order (a check that did not run says
        why)."""
        from codeaudit.report.document import Paragraph, Section, sections_for

        described: list[Any] = []
        for check in self.sections:
            if check.result is None:
                said = "Could not run" if check.failed else "Not run"
                described.append(
                    Section(
                        check.title,
                        summary="",
                        blocks=(Paragraph(f"{said}: {check.reason}"),),
                        status=said.lower(),
                    )
                )
            else:
                described.extend(sections_for(check.result, figures))
        return described

    def section(self, check: str) -> CheckSection | None:
        return next((s for s in self.sections if s.check == check), None)


# -- checks ---------------------------------------------------------------------------------------


def _membership_check() -> Check:
    from codeaudit.membership.check import MembershipCheck

    return MembershipCheck()


def _membership_config(config: AuditConfig) -> MembershipConfig:
    assert config.members is not None and config.nonmembers is not None
    return MembershipConfig(
        model=config.model,
        members=config.members,
        nonmembers=config.nonmembers,
        population=config.population,
        thorough=config.thorough,  # expanded by MembershipConfig, the one place
        folds=config.folds,
        shadows=config.shadows,
        references=config.references,
        n_boot=config.n_boot,
        seed=config.seed,
        batch_size=config.batch_size,
        device=config.device,
        executor=config.executor,
        workers=config.workers,
        ray_address=config.ray_address,
        cpus_per_model=config.cpus_per_model,
        gpus_per_model=config.gpus_per_model,
        model_options=config.model_options,
        cache_dir=config.cache_dir,
        rules=config.rules,
        data_options=config.data_options,
    )


def _backdoor_check() -> Check:
    from codeaudit.backdoor.check import BackdoorCheck

    return BackdoorCheck()


def _backdoor_config(config: AuditConfig) -> BackdoorConfig:
    assert config.data is not None
    return BackdoorConfig(
        model=config.model,
        data=config.data,
        seed=config.seed,
        device=config.device,
        model_options=config.model_options,
        train_data=config.train_data,
        rules=config.rules,
        data_options=config.data_options,
    )


def _poison_scan_check() -> Check:
    from codeaudit.backdoor.poison_scan import PoisonScanCheck

    return PoisonScanCheck()


def _poison_scan_config(config: AuditConfig) -> PoisonScanConfig:
    assert config.train_data is not None
    return PoisonScanConfig(
        data=config.train_data, rules=config.rules, data_options=config.data_options
    )


CHECKS: dict[str, AuditCheck] = {
    "membership": AuditCheck(
        name="membership",
        title="Membership inference",
        inputs=("members", "nonmembers"),
        check=_membership_check,
        configure=_membership_config,
        description="can an attacker tell the model's training functions from unseen ones?",
    ),
    "backdoor": AuditCheck(
        name="backdoor",
        title="Backdoor",
        inputs=("data",),
        check=_backdoor_check,
        configure=_backdoor_config,
        description="does a short trigger flip the model's verdicts (EliBadCode trigger "
        "inversion)?",
    ),
    "poison-scan": AuditCheck(
        name="poison-scan",
        title="Training data",
        inputs=("train_data",),
        check=_poison_scan_check,
        configure=_poison_scan_config,
        description="does the training data carry a planted trigger (KillBadCode naturalness "
        "and label concentration)?",
    ),
}

# Which check each input flag feeds (so an input for a check this build lacks is refused).
INPUTS: dict[str, str] = {
    "members": "membership",
    "nonmembers": "membership",
    "data": "backdoor",
    "train_data": "poison-scan",
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def plan(config: AuditConfig) -> list[AuditCheck]:
    """The checks to run, or a usage error that says which flag is missing or unusable."""
    for name, check in sorted(INPUTS.items()):
        if getattr(config, name) is not None and check not in CHECKS:
            raise UsageError(
                f"{_flag(name)} is for the {check} check, which this build of codeaudit does not "
                f"have (available: {', '.join(CHECKS)})"
            )
    if config.checks:
        unknown = [c for c in config.checks if c not in CHECKS]
        if unknown:
            raise UsageError(
                f"--checks {unknown[0]}: not a check of this build (available: {', '.join(CHECKS)})"
            )
        chosen = [CHECKS[c] for c in dict.fromkeys(config.checks)]
    else:
        chosen = [
            check
            for check in CHECKS.values()
            if any(getattr(config, i) is not None for i in check.inputs)
        ]
    for check in chosen:
        missing = [i for i in check.inputs if getattr(config, i) is None]
        if missing:
            raise UsageError(
                f"the {check.name} check needs {' and '.join(_flag(i) for i in check.inputs)} "
                f"(missing {', '.join(_flag(i) for i in missing)})"
            )
    if not chosen:
        needs = "; ".join(
            f"{' and '.join(_flag(i) for i in c.inputs)} ({c.name})" for c in CHECKS.values()
        )
        raise UsageError(f"nothing to audit: give the inputs of at least one check: {needs}")
    return chosen


def combine_findings(findings: list[Finding]) -> tuple[Finding, ...]:
    """One finding per (rule, target): a rule that reads the same model in two checks (the
    checkpoint rule) reports once."""
    seen: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        seen.setdefault(finding.key, finding)
    return tuple(sorted(seen.values(), key=lambda f: (-f.severity.rank, f.rule_id)))


def run_audit(
    config: AuditConfig, *, progress: Progress | None = None, gate: Any = None
) -> AuditResult:
    """Validate every chosen check, load the model once and every check's data before the first
    check runs, run each on them, combine, and judge the combined result by ``gate`` (a
    :class:`~codeaudit.gate.ReleaseGate`) when given.

    A requested check that cannot run on these inputs (too few usable samples, a model it cannot
    read) does not throw away the others' results: its section says why, and rule CA-A001 turns
    it into a finding, so a release is never passed on a check that did not run."""
    from codeaudit.models.checkpoint import load_with
    from codeaudit.models.device import resolve_device
    from codeaudit.rules import evaluate, load_rules
    from codeaudit.runner import load_inputs, prepare, run
    from codeaudit.threads import CpuSample, choose_threads

    since = CpuSample.now()
    chosen = plan(config)
    runs = [(entry, entry.check(), entry.configure(config)) for entry in chosen]
    for _, check, check_config in runs:  # every usage error before any loading
        prepare(check, check_config)
    device = resolve_device(config.device)
    loaded = None
    if any(check.needs_model for _, check, _ in runs):
        loaded = load_with(config.model, config.model_options, device=device)
    inputs = [load_inputs(check, cfg, device, loaded) for _, check, cfg in runs]
    for (_, check, check_config), loaded_inputs in zip(runs, inputs, strict=True):
        check.check_inputs(loaded_inputs, check_config)  # bad input: exit 2 before any work
    threads = choose_threads(config.threads, since)
    sections: list[CheckSection] = []
    findings: list[Finding] = []
    artifacts: dict[tuple[str, str], Artifact] = {}
    for (entry, check, check_config), loaded_inputs in zip(runs, inputs, strict=True):
        started = time.perf_counter()

        def report(stage: str, done: int, total: int, _name: str = entry.name) -> None:
            if progress is not None:
                progress(f"{_name}: {stage}", done, total)

        try:
            result, _ = run(
                check, check_config, progress=report, inputs=loaded_inputs, threads=threads
            )
        except CodeAuditError as exc:
            sections.append(
                CheckSection(
                    check=entry.name,
                    title=entry.title,
                    result=None,
                    reason=" ".join(str(exc).split()),
                    seconds=round(time.perf_counter() - started, 3),
                    failed=True,
                )
            )
            continue
        findings += result.findings
        for artifact in result.header.artifacts:
            artifacts.setdefault((artifact.role, artifact.path), artifact)
        sections.append(
            CheckSection(
                check=entry.name,
                title=entry.title,
                result=dataclasses.replace(result, findings=()),
                seconds=round(time.perf_counter() - started, 3),
            )
        )
    for name, entry in CHECKS.items():
        if entry not in chosen:
            needs = " and ".join(_flag(i) for i in entry.inputs)
            sections.append(
                CheckSection(
                    check=name,
                    title=entry.title,
                    result=None,
                    reason=f"not requested (needs {needs})",
                )
            )
    result = AuditResult(
        header=Header(
            command="audit",
            seed=config.seed,
            threads=threads,
            artifacts=tuple(artifacts.values()),
        ),
        sections=tuple(sections),
        checks_failed=sum(s.failed for s in sections),
    )
    findings += evaluate(load_rules(config.rules), result, command="audit", target=config.model)
    result = dataclasses.replace(result, findings=combine_findings(findings))
    return gate.apply(result) if gate is not None else result
