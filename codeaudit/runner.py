"""The one runner: the only code that loads a check's inputs, times the run, stamps the report
header, evaluates the rules, applies the release gate and hands over the files a check made.

    result, outcome = run(MembershipCheck(), config, progress=callback)
    write_outputs(outcome.outputs, force=config.force)

Everything before the work that can fail does so first (rules, output paths, device), so a bad
setting costs no inference. ``audit`` runs several checks on one model loaded once
(:func:`run` with ``loaded``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from typing import Any

from codeaudit.check import Check, Context, Inputs, Outcome, Output, Progress
from codeaudit.report.model import Artifact, Header


def prepare(check: Check, config: Any, *, model_given: bool = False) -> tuple[Any, ...]:
    """What can be checked before any work: the inputs are there to read (first, before the
    check's own validation, which may import torch), the rules load and the outputs can be
    written. ``model_given``: the model comes from memory, not from ``config.model``."""
    from codeaudit.errors import CheckpointError, DataError
    from codeaudit.io import check_input_file, check_output_path, refuse_same_files
    from codeaudit.rules import load_rules

    if check.needs_model and not model_given:
        check_input_file(config.model, "model", error=CheckpointError, allow_dir=True)
    for item in check.data_inputs(config):
        check_input_file(item.path, "data file", error=DataError)
    check.validate(config)
    rules = load_rules(getattr(config, "rules", ()))
    force = bool(getattr(config, "force", False))
    outputs = check.output_paths(config)
    for output in outputs:
        check_output_path(output.path, force=force, what=output.what)
    refuse_same_files(
        run_inputs(check, config), [(f"{o.what} file", o.path) for o in outputs if o.path]
    )
    return rules


def run_inputs(check: Check, config: Any) -> list[tuple[str, str]]:
    """Every file the check reads, as (what, path): the model (a file or directory), the data
    sets and other inputs. No output may be one of them (:func:`~codeaudit.io.refuse_same_files`,
    which also takes the command line's report files)."""
    found: list[tuple[str, str]] = []
    model = getattr(config, "model", None) if check.needs_model else None
    if isinstance(model, str | os.PathLike):
        found.append(("model", str(model)))
    found += [(f"{item.role} data", item.path) for item in check.data_inputs(config)]
    found += [(item.role, item.path) for item in check.file_inputs(config)]
    return found


def load_inputs(check: Check, config: Any, device: str, loaded: Any = None) -> Inputs:
    """The check's model (unless already ``loaded``) and data files, each loaded once."""
    from codeaudit.data.loader import load_data
    from codeaudit.models.checkpoint import load_with

    if loaded is None and check.needs_model:
        loaded = load_with(config.model, config.model_options, device=device)
    data = {
        item.role: load_data(item.path, config.data_options, require_labels=item.require_labels)
        for item in check.data_inputs(config)
    }
    files = {item.role: item.load(item.path) for item in check.file_inputs(config)}
    return Inputs(loaded, data, files)


def artifacts(check: Check, config: Any, inputs: Inputs, outputs: Sequence[Output]) -> tuple:
    from codeaudit.io import sha256_bytes, sha256_file

    # What was read (the model, then the data), then what was written, for every command alike.
    found: list[Artifact] = list(inputs.model.artifacts()) if inputs.model is not None else []
    for item in check.data_inputs(config):
        found.append(Artifact(item.role, item.path, inputs.data[item.role].sha256))
    for other in check.file_inputs(config):
        found.append(Artifact(other.role, other.path, sha256_file(other.path)))
    found += [Artifact(o.role, o.path, sha256_bytes(o.data)) for o in outputs]
    return tuple(found)


def run(
    check: Check,
    config: Any,
    *,
    progress: Progress | None = None,
    loaded: Any = None,
    inputs: Inputs | None = None,
    gate: Any = None,
    threads: Any = None,
) -> tuple[Any, Outcome]:
    """Run one check: returns its result (header, timings and findings filled in, judged by
    ``gate`` when given: a :class:`~codeaudit.gate.ReleaseGate`) and its outcome (the files to
    write, the model it made). ``loaded``: a model already loaded (the audit loads once for every
    check; a Python caller may pass one from memory); ``inputs``: everything already loaded and
    checked (the audit reads and checks every check's inputs before the first check runs);
    ``threads``: the :class:`~codeaudit.threads.ThreadChoice` to run with (default: chosen from
    ``config.threads`` once the inputs are loaded, see :mod:`codeaudit.threads`)."""
    from codeaudit.models.device import resolve_device
    from codeaudit.models.encoding import encoding_run
    from codeaudit.rules import evaluate
    from codeaudit.threads import CpuSample, choose_threads, limit_threads

    started = time.perf_counter()
    since = CpuSample.now()
    rules = prepare(check, config, model_given=loaded is not None or inputs is not None)
    context = Context(device=resolve_device(getattr(config, "device", "auto")), progress=progress)
    if inputs is None:
        with context.stage("load"):
            inputs = load_inputs(check, config, context.device, loaded)
            check.check_inputs(inputs, config)
    if threads is None:
        threads = choose_threads(getattr(config, "threads", None), since)
    with limit_threads(threads.count), encoding_run():
        outcome = check.run(inputs, config, context)
    header = Header(
        command=check.command,
        seed=getattr(config, "seed", None),
        threads=threads,
        artifacts=artifacts(check, config, inputs, outcome.outputs),
    )
    result = dataclasses.replace(outcome.result, header=header)
    if "timings" in {f.name for f in dataclasses.fields(result)}:
        timings = {**context.timings, "total": time.perf_counter() - started}
        result = dataclasses.replace(result, timings={k: round(v, 3) for k, v in timings.items()})
    findings = evaluate(rules, result, command=check.command, target=check.target(config))
    result = dataclasses.replace(result, findings=findings)
    if gate is not None:
        result = gate.apply(result)
    return result, dataclasses.replace(outcome, result=result)


def write_outputs(outputs: Sequence[Output], *, force: bool) -> None:
    """Write a check's files, each atomically, all or none (a file written before one that
    fails is removed again: no poisoned set without its manifest); none over an existing file
    without ``force``."""
    from pathlib import Path

    from codeaudit.io import atomic_write

    written: list[Path] = []
    try:
        for output in outputs:
            data = output.data
            written.append(atomic_write(output.path, lambda h, d=data: h.write(d), force=force))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
