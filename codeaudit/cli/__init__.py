"""The ``codeaudit`` command line: parse flags, build a config, call the library, render, exit.

Every setting is a configuration field (:mod:`codeaudit.config`); the options here are made from
those fields (:mod:`codeaudit.cli.options`), so a command is its config, the library call and its
help text (:func:`command`); the edge's own part (report files checked before any work, the
release gate, rendering, the exit code) is written once (:mod:`codeaudit.cli.emit`).

Exit codes (one place: :class:`AuditGroup`): 0 no finding at or above ``--fail-on``; 1 findings;
2 bad input or usage (one line on stderr, no traceback); 3 internal error (a bug); 130
interrupted. Heavy libraries (torch, transformers) are imported inside commands only, so
``codeaudit --help`` stays instant and a usage error costs no import of them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import click

from codeaudit import __version__
from codeaudit.cli.emit import (
    check_reports,
    emit,
    gate_of,
    inputs_of_the_edge,
    refuse_clashes,
    run_files,
)
from codeaudit.cli.options import (
    build,
    config_options,
    data_options,
    model_options,
    output_options,
    parameter_message,
    report_file_option,
    rule_options,
)
from codeaudit.cli.progress import stage_progress
from codeaudit.config import (
    AuditConfig,
    BackdoorCalibrateConfig,
    BackdoorConfig,
    HardenConfig,
    MembershipConfig,
    PoisonConfig,
    PoisonScanConfig,
    PredictConfig,
    TrainConfig,
)
from codeaudit.errors import CodeAuditError
from codeaudit.io import also_in_this_run
from codeaudit.params import ParameterError
from codeaudit.report.model import exit_code

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_SIGNALLED: list[int] = []  # signals the codeaudit process received (set by main's handler)
# Set once a run's files are all written (or are being removed): from then on main's handler
# lets the run finish with the report's exit code instead of interrupting it.
_FINISHING: list[bool] = []


@contextmanager
def all_or_nothing() -> Iterator[None]:
    """The work and the write phase of one run, all or nothing: when the block ends in an error
    or an interrupt (Ctrl-C, SIGTERM), every file the run has put in place (its outputs, its
    reports, the figures beside a Markdown report) is removed before the error propagates; once
    the block is done, a signal no longer interrupts the run, which exits with the report's
    code. A file replaced with --force is gone either way (what an interrupted run leaves:
    nothing it wrote, see docs/reliability.md)."""
    from codeaudit.io import record_writes

    with record_writes() as written:
        try:
            yield
            _FINISHING.append(True)
        except BaseException:
            _FINISHING.append(True)  # the clean-up itself is not interrupted
            for path in reversed(written):
                with suppress(OSError):
                    path.unlink()
            raise


def _error(message: str) -> None:
    """The one stderr line: whitespace collapsed, control characters made visible (a path or
    an id in the message cannot drive the terminal)."""
    from codeaudit.report.text import printable

    line = printable(" ".join(str(message).split()), one_line=True)
    click.echo(f"codeaudit: error: {line}", err=True)


class AuditGroup(click.Group):
    """Maps every way a command can end to one exit code and at most one line on stderr."""

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        _FINISHING.clear()
        try:
            rv = super().main(args, prog_name or "codeaudit", complete_var, False, **extra)
            code = rv if isinstance(rv, int) else EXIT_OK
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _error(exc.format_message() + hint)
            code = EXIT_USAGE
        except click.ClickException as exc:
            _error(exc.format_message())
            code = exc.exit_code
        except (click.Abort, KeyboardInterrupt):
            click.echo("codeaudit: interrupted", err=True)
            code = EXIT_INTERRUPTED
        except ParameterError as exc:  # a config's error about a setting: name its flag
            _error(parameter_message(exc))
            code = exc.exit_code
        except CodeAuditError as exc:
            _error(str(exc))
            code = exc.exit_code
        except Exception as exc:  # a bug: one line, the traceback on request
            if _SIGNALLED:  # Ctrl-C inside a library (a half-done import) surfaces as anything
                click.echo("codeaudit: interrupted", err=True)
                code = EXIT_INTERRUPTED
            elif os.environ.get("CODEAUDIT_DEBUG"):
                raise
            else:
                _error(
                    f"internal error: {type(exc).__name__}: {exc}. This is a bug in codeaudit; "
                    "rerun with CODEAUDIT_DEBUG=1 for the traceback and report it"
                )
                code = EXIT_INTERNAL
        if standalone_mode:
            sys.exit(code)
        return code


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=AuditGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="codeaudit")
def cli() -> None:
    """Audit neural vulnerability-prediction models: membership leakage, hardening, backdoors.

    Exit codes: 0 no finding at or above --fail-on, 1 findings, 2 bad input or usage, 3
    internal error (a bug), 130 interrupted.
    """


Run = Callable[[Any, Any, Any], Any]  # (config, progress callback, release gate) -> result


def command(
    config_cls: type,
    label: str,
    *,
    produces: Callable[[Any], tuple[str | None, ...]] = lambda config: (),
    report_file: bool = False,
    options: tuple[Callable[..., Any], ...] = (),
    prepare: Callable[[dict[str, Any]], dict[str, Any]] = lambda values: {},
    name: str | None = None,
) -> Callable[[Run], click.Command]:
    """A command from its config and its library call (the decorated function; its docstring is
    the help). The edge's part, written once: the config's options, then (when the config has
    them) how the model loads, how data files read, the rules and gate, and the reports; report
    paths are checked before any work and must not name a file the command makes
    (``produces``); progress is drawn under ``label``; the result is judged, written, printed
    and turned into the exit code. ``options`` and ``prepare`` add command-only options and
    turn their values into config settings."""
    fields = {item.name for item in dataclasses.fields(config_cls)}

    def decorate(run: Run) -> click.Command:
        def body(reports: tuple[str, ...], fmt: str, force: bool, quiet: bool,
                 report_output: str | None = None, fail_on: str = "low",
                 **values: Any) -> int:  # fmt: skip
            checked = check_reports(((report_output,) if report_output else ()) + reports, force)
            edge = inputs_of_the_edge(values.get("key_file"))
            extra = prepare(values)
            extra.update({k: values.pop(k) for k in ("model_options", "data_options", "rules")
                          if k in values})  # fmt: skip
            if "force" in fields:
                extra["force"] = force
            config = build(config_cls, values, **extra)
            refuse_clashes(checked, *produces(config))
            with (
                also_in_this_run(run_files(checked, *edge)),
                all_or_nothing(),
            ):
                with stage_progress(not quiet, label) as callback:
                    result = run(config, callback, gate_of())
                result = emit(result, fmt, checked, force)
            return exit_code(getattr(result, "findings", ()), fail_on)

        decorators = [config_options(config_cls), *options]
        decorators += [report_file_option] if report_file else []
        decorators += [model_options] if "model_options" in fields else []
        decorators += [data_options] if "data_options" in fields else []
        decorators += [rule_options] if "rules" in fields else []
        for decorator in reversed([*decorators, output_options]):
            body = decorator(body)
        named = name or run.__name__.replace("_", "-")
        return cli.command(named, help=run.__doc__, context_settings=CONTEXT)(body)

    return decorate


@command(TrainConfig, "training", produces=lambda config: (config.output,))
def train(config: TrainConfig, progress: Any, gate: Any) -> Any:
    """Train a VP model on labelled functions and write a checkpoint.

    DATA is JSONL, a JSON array or CSV with a code field and a 0/1 label (1 = vulnerable).
    """
    from codeaudit import api

    return api.train(config, progress=progress)[1]


@command(PredictConfig, "predicting", report_file=True)
def predict(config: PredictConfig, progress: Any, gate: Any) -> Any:
    """Predict every function in DATA with MODEL; metrics when DATA is labelled.

    MODEL is a codeaudit checkpoint (.pt), a Hugging Face model directory, or a CodeXGLUE or
    EliBadCode model.bin with --base.
    """
    from codeaudit import api

    return api.predict(config, progress=progress, gate=gate)


@command(MembershipConfig, "auditing", report_file=True, produces=lambda c: (c.plot,))
def membership(config: MembershipConfig, progress: Any, gate: Any) -> Any:
    """Measure how well membership-inference attacks tell MODEL's training functions from
    unseen ones: threshold, trained, shadow, LiRA/RMIA and label-only attacks, with AUC and TPR
    at low false-positive rates."""
    from codeaudit import api

    return api.membership(config, progress=progress, gate=gate)


REPORT_DIR_FILES = ("json", "sarif", "md", "html", "txt")


def _report_dir(report_dir: str | None, force: bool) -> tuple[list[tuple[str, str]], bool]:
    """The reports --report-dir asks for, checked; whether the directory must be made."""
    from codeaudit.io import check_output_dir
    from codeaudit.report import format_for_path

    if not report_dir:
        return [], False
    if os.path.exists(report_dir) and not os.path.isdir(report_dir):
        raise click.UsageError(f"--report-dir {report_dir}: exists and is not a directory")
    check_output_dir(report_dir, "--report-dir")
    paths = tuple(os.path.join(report_dir, f"audit.{ext}") for ext in REPORT_DIR_FILES)
    if os.path.isdir(report_dir):
        return check_reports(paths, force), False
    # made just before the reports are written: a failed audit leaves nothing behind
    return [(path, format_for_path(path)) for path in paths], True


@cli.command(context_settings=CONTEXT)
@config_options(AuditConfig)
@click.option(
    "--report-dir",
    metavar="DIR",
    help="Write the combined report in every format to DIR/audit.{json,sarif,md,html,txt} "
    "(created if missing).",
)
@report_file_option
@model_options
@data_options
@rule_options
@output_options
def audit(report_dir: str | None, report_output: str | None, model_options: Any,
          data_options: Any, rules: tuple[str, ...], fail_on: str, reports: tuple[str, ...],
          fmt: str, force: bool, quiet: bool, **values: Any) -> int:  # fmt: skip
    """The release gate: run every check on MODEL whose inputs are given, judge the results
    with the rules, and write one combined report and exit code.

    Checks in this build: membership (--members and --nonmembers) and backdoor (--data: labelled
    clean functions; the scan of `codeaudit backdoor` with its defaults).
    """
    from codeaudit.audit import plan, run_audit

    config = build(
        AuditConfig, values, model_options=model_options, data_options=data_options, rules=rules
    )
    plan(config)  # usage errors before any work
    checked = check_reports(((report_output,) if report_output else ()) + reports, force)
    in_dir, make_dir = _report_dir(report_dir, force)
    files = run_files(checked + in_dir, *inputs_of_the_edge())
    try:
        with also_in_this_run(files), all_or_nothing():
            with stage_progress(not quiet, "auditing") as callback:
                result = run_audit(config, progress=callback, gate=gate_of())
            if make_dir and report_dir:
                os.makedirs(report_dir, exist_ok=True)
            result = emit(result, fmt, checked + in_dir, force)
    except BaseException:
        if make_dir and report_dir:  # the directory this run made, emptied by the roll-back
            with suppress(OSError):
                os.rmdir(report_dir)
        raise
    return exit_code(result.findings, fail_on)


def _key(values: dict[str, Any]) -> dict[str, Any]:
    from codeaudit.defense.keys import read_key_file

    path = values.pop("key_file")
    return {"key": read_key_file(path)} if path else {}


@command(
    HardenConfig,
    "hardening",
    produces=lambda config: (config.output, config.export_output, config.plot),
    options=(
        click.option(
            "--key-file",
            metavar="FILE",
            help="Read the secret noise key (32 hex digits) from FILE instead of drawing a fresh "
            "one: reproducible builds, or the same key for a re-hardened model. Keep FILE secret.",
        ),
    ),
    prepare=_key,
)
def harden(config: HardenConfig, progress: Any, gate: Any) -> Any:
    """Wrap MODEL with NMID (output masking plus keyed, argmax-preserving Gaussian noise), check
    it against adaptive membership attacks, and write the hardened model to -o.

    With --members/--nonmembers, sigma is calibrated on one half and the original and hardened
    models are audited on the other: best AUC and TPR at 1% FPR per feature set, repeated-query
    and rewrite averaging, label-only attacks, and utility. Threat model: query access only (a
    stolen checkpoint is out of scope); output noise cannot stop a label-only attacker.
    """
    from codeaudit import api

    return api.harden(config, progress=progress, gate=gate)[1]


def _poison_outputs(config: PoisonConfig) -> tuple[str | None, ...]:
    from codeaudit.backdoor.poison import manifest_path

    return config.output, manifest_path(config)


@command(PoisonConfig, "poisoning", produces=_poison_outputs)
def poison(config: PoisonConfig, progress: Any, gate: Any) -> Any:
    """Write a poisoned copy of DATA (the attacker's side, for tests, canaries and benchmarks):
    --rate of the victim-label samples get the trigger and the target label; every other record
    is kept as it was. A manifest (trigger, rate, seed, poisoned ids, sha256 of input and output)
    is written next to it for `codeaudit backdoor --manifest`.
    """
    from codeaudit import api

    return api.poison(config, progress=progress)


@command(PoisonScanConfig, "scanning data", produces=lambda config: (config.output,))
def poison_scan(config: PoisonScanConfig, progress: Any, gate: Any) -> Any:
    """Scan a labelled training set for planted backdoor triggers, without a model (KillBadCode
    naturalness with label concentration): rank names, name postfixes and statement shapes by
    how much more natural their functions become without them and how concentrated their
    carriers are in one label, and flag the samples that carry a likely trigger with its label.

    With -o FLAGGED.jsonl, write one JSON object per flagged sample (id, label, the triggers it
    carries, score) so they can be removed before training. Exit codes: 0 no finding at or
    above --fail-on (a likely planted trigger is high), 1 findings, 2 bad input or usage.
    """
    from codeaudit import api

    return api.poison_scan(config, progress=progress, gate=gate)


@command(BackdoorConfig, "scanning", produces=lambda config: (config.output,))
def backdoor(config: BackdoorConfig, progress: Any, gate: Any) -> Any:
    """Is MODEL backdoored? Invert a trigger for every label pair (EliBadCode: identifier-token
    vocabulary, sample-specific positions, GCG, anchoring) and call the model backdoored when the
    anchored trigger flips at least --threshold of held-out victim functions.

    With --unlearn -o REPAIRED.pt, fine-tune the model on clean data carrying the inverted
    trigger with true labels and write the repaired model; clean accuracy and attack success
    (inverted trigger; the real one with --manifest) are reported before and after.
    Exit codes: 0 no finding at or above --fail-on (a detected backdoor is critical), 1
    findings, 2 bad input or usage, 130 interrupted (no partial file is left).
    """
    from codeaudit import api

    return api.backdoor(config, progress=progress, gate=gate)[1]


@command(
    BackdoorCalibrateConfig,
    "calibrating",
    produces=lambda config: (config.output,),
    name="backdoor-calibrate",
)
def backdoor_calibrate(config: BackdoorCalibrateConfig, progress: Any, gate: Any) -> Any:
    """Calibrate `codeaudit backdoor` for MODEL's recipe: train --shadows N clean and N poisoned
    shadow models with MODEL's architecture, hyperparameters and tokenizer on trusted --data
    (random trigger types, names and rates from the poison grammar), scan each the way MODEL
    will be scanned (same settings, same --references), fit a logistic regression on the scans'
    features and write it to -o CAL.json with its false-positive and detection rates measured on
    held-out shadows. Use it with `codeaudit backdoor MODEL --calibration CAL.json`.
    """
    from codeaudit import api

    return api.backdoor_calibrate(config, progress=progress, gate=gate)


# The process is codeaudit's: Hugging Face libraries stay quiet (the CLI owns the terminal) and
# never reach the network (models come from local files only), and cuBLAS is deterministic (for
# seeded runs on CUDA). Set before those libraries are imported, as defaults a user's own
# environment overrides; the library never touches this state.
PROCESS_ENVIRONMENT = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_OFFLINE": "1",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
}


def main() -> None:
    import signal

    for name, value in PROCESS_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    _SIGNALLED.clear()  # one run's record: main may be called again in the same process
    _FINISHING.clear()

    def interrupted(signum: int, frame: Any) -> None:
        # Ctrl-C, or a cancelled CI job (SIGTERM): clean up and exit 130. Remember it, because
        # an interrupt that lands inside a library (in the middle of an import, say) can surface
        # as some other error.
        # Once every file of the run is written (or being removed), the run finishes instead:
        # its reports and its exit code agree.
        _SIGNALLED.append(signum)
        if _FINISHING:
            return
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        cli.main(prog_name="codeaudit")
    finally:  # the handlers are the entry point's only: restored for whoever called main
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":  # pragma: no cover
    main()
