"""The ``codeaudit`` command line: parse flags, build a config, call the library, render, exit.

Every setting is a configuration field (:mod:`codeaudit.config`); the options here are made from
those fields (:mod:`codeaudit.cli.options`), so a command is: its config's options, the edge's
own options (reports, rules, ``--force``), then build the config, run, report
(:mod:`codeaudit.cli.emit`).

Exit codes (one place: :class:`AuditGroup`): 0 no finding at or above ``--fail-on``; 1 findings;
2 bad input or usage (one line on stderr, no traceback); 3 internal error (a bug); 130
interrupted. Heavy libraries (torch, transformers) are imported inside commands only, so
``codeaudit --help`` stays instant and a usage error costs no import of them.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from codeaudit import __version__
from codeaudit.cli.emit import check_reports, emit, gate_of, refuse_clashes, stage_progress
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
from codeaudit.config import (
    AuditConfig,
    BackdoorConfig,
    HardenConfig,
    MembershipConfig,
    PoisonConfig,
    PredictConfig,
    TrainConfig,
)
from codeaudit.errors import CodeAuditError
from codeaudit.params import ParameterError
from codeaudit.report.model import exit_code

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_SIGNALLED: list[int] = []  # signals the codeaudit process received (set by main's handler)


def _error(message: str) -> None:
    click.echo(f"codeaudit: error: {' '.join(str(message).split())}", err=True)


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


def _report_paths(report_output: str | None, reports: tuple[str, ...]) -> tuple[str, ...]:
    return ((report_output,) if report_output else ()) + reports


@cli.command(context_settings=CONTEXT)
@config_options(TrainConfig)
@data_options
@output_options
def train(data_options: Any, reports: tuple[str, ...], fmt: str, force: bool, quiet: bool,
          **values: Any) -> int:  # fmt: skip
    """Train a VP model on labelled functions and write a checkpoint.

    DATA is JSONL, a JSON array or CSV with a code field and a 0/1 label (1 = vulnerable).
    """
    from codeaudit import api

    config = build(TrainConfig, values, force=force, data_options=data_options)
    checked = check_reports(reports, force)
    refuse_clashes(checked, config.output)
    with stage_progress(not quiet, "training") as callback:
        _, result = api.train(config, progress=callback)
    emit(result, fmt, checked, force)
    return EXIT_OK


@cli.command(context_settings=CONTEXT)
@config_options(PredictConfig)
@report_file_option
@model_options
@data_options
@rule_options
@output_options
def predict(report_output: str | None, model_options: Any, data_options: Any,
            rules: tuple[str, ...], fail_on: str, reports: tuple[str, ...], fmt: str,
            force: bool, quiet: bool, **values: Any) -> int:  # fmt: skip
    """Predict every function in DATA with MODEL; metrics when DATA is labelled.

    MODEL is a codeaudit checkpoint (.pt), a Hugging Face model directory, or a CodeXGLUE or
    EliBadCode model.bin with --base.
    """
    from codeaudit import api

    checked = check_reports(_report_paths(report_output, reports), force)
    config = build(
        PredictConfig, values, model_options=model_options, data_options=data_options, rules=rules
    )
    with stage_progress(not quiet, "predicting") as callback:
        result = api.predict(config, progress=callback, gate=gate_of())
    result = emit(result, fmt, checked, force)
    return exit_code(result.findings, fail_on)


@cli.command(context_settings=CONTEXT)
@config_options(MembershipConfig)
@report_file_option
@model_options
@data_options
@rule_options
@output_options
def membership(report_output: str | None, model_options: Any, data_options: Any,
               rules: tuple[str, ...], fail_on: str, reports: tuple[str, ...], fmt: str,
               force: bool, quiet: bool, **values: Any) -> int:  # fmt: skip
    """Measure how well membership-inference attacks tell MODEL's training functions from
    unseen ones: threshold, trained, shadow, LiRA/RMIA and label-only attacks, with AUC and TPR
    at low false-positive rates."""
    from codeaudit import api

    checked = check_reports(_report_paths(report_output, reports), force)
    config = build(
        MembershipConfig,
        values,
        model_options=model_options,
        data_options=data_options,
        rules=rules,
        force=force,
    )
    refuse_clashes(checked, config.plot)
    with stage_progress(not quiet, "auditing") as callback:
        result = api.membership(config, progress=callback, gate=gate_of())
    result = emit(result, fmt, checked, force)
    return exit_code(result.findings, fail_on)


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
    checked = check_reports(_report_paths(report_output, reports), force)
    in_dir, make_dir = _report_dir(report_dir, force)
    with stage_progress(not quiet, "auditing") as callback:
        result = run_audit(config, progress=callback, gate=gate_of())
    if make_dir and report_dir:
        os.makedirs(report_dir, exist_ok=True)
    result = emit(result, fmt, checked + in_dir, force)
    return exit_code(result.findings, fail_on)


def _read_key(path: str) -> str:
    """The NMID key in a key file: 32 hex digits, surrounding whitespace ignored."""
    from codeaudit.errors import HardenError
    from codeaudit.io import check_input_file

    p = check_input_file(path, "key file", error=HardenError)
    try:
        text = p.read_text(encoding="ascii").strip().lower()
    except (OSError, UnicodeDecodeError):
        raise HardenError(f"{path}: the key file must hold 32 hex digits") from None
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
        raise HardenError(f"{path}: the key file must hold 32 hex digits (128 bits)")
    return text


@cli.command(context_settings=CONTEXT)
@config_options(HardenConfig)
@click.option(
    "--key-file",
    metavar="FILE",
    help="Read the secret noise key (32 hex digits) from FILE instead of drawing a fresh one: "
    "reproducible builds, or the same key for a re-hardened model. Keep FILE secret.",
)
@model_options
@data_options
@rule_options
@output_options
def harden(key_file: str | None, model_options: Any, data_options: Any, rules: tuple[str, ...],
           fail_on: str, reports: tuple[str, ...], fmt: str, force: bool, quiet: bool,
           **values: Any) -> int:  # fmt: skip
    """Wrap MODEL with NMID (output masking plus keyed, argmax-preserving Gaussian noise), check
    it against adaptive membership attacks, and write the hardened model to -o.

    With --members/--nonmembers, sigma is calibrated on one half and the original and hardened
    models are audited on the other: best AUC and TPR at 1% FPR per feature set, repeated-query
    and rewrite averaging, label-only attacks, and utility. Threat model: query access only (a
    stolen checkpoint is out of scope); output noise cannot stop a label-only attacker.
    """
    from codeaudit import api

    checked = check_reports(reports, force)
    config = build(
        HardenConfig,
        values,
        key=_read_key(key_file) if key_file else None,
        model_options=model_options,
        data_options=data_options,
        rules=rules,
        force=force,
    )
    refuse_clashes(checked, config.output, config.export_output, config.plot)
    with stage_progress(not quiet, "hardening") as callback:
        _, result = api.harden(config, progress=callback, gate=gate_of())
    emit(result, fmt, checked, force)
    return exit_code(result.findings, fail_on)


@cli.command(context_settings=CONTEXT)
@config_options(PoisonConfig)
@data_options
@output_options
def poison(data_options: Any, reports: tuple[str, ...], fmt: str, force: bool, quiet: bool,
           **values: Any) -> int:  # fmt: skip
    """Write a poisoned copy of DATA (the attacker's side, for tests, canaries and benchmarks):
    --rate of the victim-label samples get the trigger and the target label; every other record
    is kept as it was. A manifest (trigger, rate, seed, poisoned ids, sha256 of input and output)
    is written next to it for `codeaudit backdoor --manifest`.
    """
    from codeaudit import api
    from codeaudit.backdoor.poison import manifest_path

    checked = check_reports(reports, force)
    config = build(PoisonConfig, values, force=force, data_options=data_options)
    refuse_clashes(checked, config.output, manifest_path(config))
    with stage_progress(not quiet, "poisoning") as callback:
        result = api.poison(config, progress=callback)
    emit(result, fmt, checked, force)
    return EXIT_OK


@cli.command(context_settings=CONTEXT)
@config_options(BackdoorConfig)
@model_options
@data_options
@rule_options
@output_options
def backdoor(model_options: Any, data_options: Any, rules: tuple[str, ...], fail_on: str,
             reports: tuple[str, ...], fmt: str, force: bool, quiet: bool,
             **values: Any) -> int:  # fmt: skip
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

    checked = check_reports(reports, force)
    config = build(
        BackdoorConfig,
        values,
        model_options=model_options,
        data_options=data_options,
        rules=rules,
        force=force,
    )
    refuse_clashes(checked, config.output)
    with stage_progress(not quiet, "scanning") as callback:
        _, result = api.backdoor(config, progress=callback, gate=gate_of())
    emit(result, fmt, checked, force)
    return exit_code(result.findings, fail_on)


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

    def interrupted(signum: int, frame: Any) -> None:
        # Ctrl-C, or a cancelled CI job (SIGTERM): clean up and exit 130. Remember it, because
        # an interrupt that lands inside a library (in the middle of an import, say) can surface
        # as some other error.
        _SIGNALLED.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    cli.main(prog_name="codeaudit")


if __name__ == "__main__":  # pragma: no cover
    main()
