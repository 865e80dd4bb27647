"""The ``codeaudit`` command line: parse flags, build a config, call the library, render, exit.

Exit codes (one place: :class:`AuditGroup`): 0 no finding at or above ``--fail-on``; 1 findings;
2 bad input or usage (one line on stderr, no traceback); 3 internal error (a bug); 130
interrupted. Heavy libraries (torch, transformers) are imported inside commands only, so
``codeaudit --help`` stays instant.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from codeaudit import __version__
from codeaudit.errors import CodeAuditError
from codeaudit.report.model import FAIL_ON_CHOICES, exit_code
from codeaudit.settings import STDOUT_FORMATS

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
        except CodeAuditError as exc:
            _error(str(exc))
            code = exc.exit_code
        except Exception as exc:  # a bug: one line, the traceback on request
            if _SIGNALLED:  # Ctrl-C inside a library (a half-done import) surfaces as anything
                click.echo("codeaudit: interrupted", err=True)
                code = EXIT_INTERRUPTED
                if standalone_mode:
                    sys.exit(code)
                return code
            if os.environ.get("CODEAUDIT_DEBUG"):
                raise
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

    Exit codes: 0 no finding at or above --fail-on, 1 findings, 2 bad input or usage.
    """


# -- shared options -----------------------------------------------------------------------------


def data_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--code-field", help="Field holding the code (default: func, code, source)."),
        click.option(
            "--label-field", help="Field holding the 0/1 label (default: target, label, vul)."
        ),
        click.option(
            "--lang",
            help="Language of records without a 'lang' field: c, cpp, java, python (default c).",
        ),
        click.option(
            "--skip-invalid",
            is_flag=True,
            help="Skip (and count) invalid records instead of stopping at the first.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def model_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """How MODEL is loaded and fed: --trust-checkpoint, --base, --input-format, --max-len.

    The command receives them as one ``model_options`` (a
    :class:`~codeaudit.models.options.LoadOptions`)."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        trust_checkpoint: bool,
        base: str | None,
        input_format: str | None,
        max_len: int | None,
        **kwargs: Any,
    ) -> Any:
        from codeaudit.models.options import LoadOptions

        kwargs["model_options"] = LoadOptions(
            trust_checkpoint=trust_checkpoint,
            base=base,
            input_format=input_format,
            max_len=max_len,
        )
        return fn(*args, **kwargs)

    options = [
        click.option(
            "--base",
            metavar="DIR|ID",
            help="For a bare model.bin (CodeXGLUE, EliBadCode): the base model it was fine-tuned "
            "from, a directory with config.json and tokenizer files or a Hugging Face id in the "
            "local cache (never downloaded).",
        ),
        click.option(
            "--input-format",
            type=click.Choice(["raw", "tokens"]),
            help="The text the model was trained on: raw (whitespace-collapsed source, comments "
            "kept: CodeXGLUE) or tokens (code tokens joined by spaces, comments dropped: "
            "EliBadCode, codeaudit). Default: what the checkpoint records; raw for a Hugging Face "
            "directory; the published default of a model.bin's layout.",
        ),
        click.option(
            "--max-len",
            type=click.IntRange(min=1),
            help="Ids per function the model reads, special tokens included (default: the "
            "model's own; 400 for CodeXGLUE and EliBadCode model.bin).",
        ),
        click.option(
            "--trust-checkpoint",
            is_flag=True,
            help="Allow a checkpoint that needs full unpickling (can run code: only for trusted "
            "files).",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


_PROJECT = "codeaudit.project"  # ctx.meta: the [tool.codeaudit] settings in force
_GATE = "codeaudit.gate"  # ctx.meta: (GateSettings, rules, baseline) of a command with rules
_EMITTED = "codeaudit.emitted"  # ctx.meta: the result as reported (after the gate)


def _project_settings(ctx: click.Context) -> Any:
    """The ``[tool.codeaudit]`` settings of the nearest pyproject.toml (none with --no-config)."""
    from codeaudit.settings import ProjectSettings, load_project_settings

    if _PROJECT not in ctx.meta:
        ctx.meta[_PROJECT] = (
            ProjectSettings() if ctx.params.get("no_config") else load_project_settings()
        )
    return ctx.meta[_PROJECT]


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--report (repeatable), --format, --force, -q, --no-config.

    The command receives ``reports, fmt, force, quiet``; ``fmt`` is already resolved (the flag,
    else ``format`` from [tool.codeaudit], else rich). ``--no-config`` is consumed here."""

    @functools.wraps(fn)
    def wrapper(*args: Any, no_config: bool, **kwargs: Any) -> Any:
        if kwargs.get("fmt") is None:
            kwargs["fmt"] = _project_settings(click.get_current_context()).format or "rich"
        return fn(*args, **kwargs)

    options = [
        click.option(
            "--report",
            "reports",
            multiple=True,
            metavar="FILE",
            help="Write the report to FILE; the format comes from the extension: .json, .sarif, "
            ".md, .html, .txt. Repeatable (several formats at once).",
        ),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(list(STDOUT_FORMATS)),
            default=None,
            help="What to print on standard output (default: rich, or format in [tool.codeaudit]).",
        ),
        click.option("--force", is_flag=True, help="Overwrite existing output files."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bars."),
        click.option(
            "--no-config",
            is_flag=True,
            help="Ignore [tool.codeaudit] in pyproject.toml.",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


def rule_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--rules, --select, --ignore, --fail-on, --baseline.

    The command receives ``rules`` and ``fail_on`` only, both resolved (flags win over
    [tool.codeaudit], then the defaults). The rule files and selectors are validated here, before
    the command does any work (exit 2). ``_emit`` then applies select/ignore/baseline and the
    gate to the result it reports, and the command's exit code is the gate's."""

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        select: tuple[str, ...],
        ignore: tuple[str, ...],
        baseline: str | None,
        **kwargs: Any,
    ) -> Any:
        from codeaudit.gate import GateSettings, load_baseline
        from codeaudit.report.model import utc_now
        from codeaudit.rules import check_selectors, load_rules

        ctx = click.get_current_context()
        project = _project_settings(ctx)
        rules = tuple(kwargs["rules"]) or project.rules or ()
        fail_on = kwargs["fail_on"] or project.fail_on or "low"
        where = f"{project.path}: [tool.codeaudit] "
        loaded = load_rules(rules)
        chosen = {}
        for name, flag in (("select", select), ("ignore", ignore)):
            if _split(flag):
                chosen[name] = _split(flag)
                check_selectors(loaded, chosen[name], f"--{name}")
            else:
                chosen[name] = getattr(project, name) or ()
                check_selectors(loaded, chosen[name], name, where=where)
        settings = GateSettings(
            fail_on=fail_on,
            rule_files=rules,
            select=chosen["select"],
            ignore=chosen["ignore"],
            baseline=baseline,
            config_file=project.path,
            started=utc_now(),
        )
        ctx.meta[_GATE] = (settings, loaded, load_baseline(baseline) if baseline else None)
        kwargs["rules"], kwargs["fail_on"] = rules, fail_on
        code = fn(*args, **kwargs)
        emitted = ctx.meta.get(_EMITTED)
        gate = getattr(getattr(emitted, "header", None), "gate", None)
        return gate.exit_code if gate is not None else code

    options = [
        click.option(
            "--rules",
            multiple=True,
            metavar="FILE|DIR",
            help="Extra rule files (TOML) or directories; a rule with a default rule's id "
            "replaces it. Repeatable.",
        ),
        click.option(
            "--select",
            multiple=True,
            metavar="IDS",
            help="Only these rules: ids or id prefixes, comma-separated or repeated "
            "(CA-M: every membership rule).",
        ),
        click.option(
            "--ignore",
            multiple=True,
            metavar="IDS",
            help="Drop these rules (ids or prefixes; the longest matching --select/--ignore "
            "entry decides).",
        ),
        click.option(
            "--fail-on",
            type=click.Choice(FAIL_ON_CHOICES),
            default=None,
            help="Exit 1 when a finding is at or above this severity (default: low, or fail-on "
            "in [tool.codeaudit]).",
        ),
        click.option(
            "--baseline",
            metavar="REPORT.json",
            help="Report only findings that are not in this earlier codeaudit JSON report "
            "(matched by rule id and target).",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    metavar="auto|cpu|cuda",
    help="Where to run the model.",
)


def _data_config(
    code_field: str | None, label_field: str | None, lang: str | None, skip_invalid: bool
) -> Any:
    from codeaudit.config import DataConfig
    from codeaudit.lang.languages import normalize_language

    return DataConfig(
        code_field=code_field,
        label_field=label_field,
        lang=normalize_language(lang) if lang else None,
        skip_invalid=skip_invalid,
    )


def _check_reports(paths: tuple[str, ...], force: bool) -> list[tuple[str, str]]:
    """Validate report paths before any work: known extension, writable, no clobbering."""
    from codeaudit.io import check_output_path
    from codeaudit.report import format_for_path

    seen: set[str] = set()
    checked = []
    for path in paths:
        if os.path.abspath(path) in seen:
            continue
        seen.add(os.path.abspath(path))
        fmt = format_for_path(path)
        check_output_path(path, force=force, what="report")
        checked.append((path, fmt))
    return checked


def _emit(result: Any, fmt: str, reports: list[tuple[str, str]], force: bool) -> Any:
    """Apply the gate (commands with rule options), write every report file, print the
    report, and return the result as reported.

    Every file (reports and the figures Markdown reports write beside them) is rendered and
    checked before the first is written, so a clash leaves no partial output."""
    from codeaudit.io import atomic_write, check_output_path
    from codeaudit.report import render, render_file

    ctx = click.get_current_context(silent=True)
    gate = ctx.meta.get(_GATE) if ctx is not None else None
    if gate is not None and hasattr(result, "findings"):
        from codeaudit.gate import apply_gate

        settings, rules, baseline = gate
        result = apply_gate(result, settings, rules=rules, baseline=baseline)
    files: list[tuple[str, bytes]] = []
    for path, report_fmt in reports:
        files += render_file(result, report_fmt, path)
    seen: set[str] = set()
    for path, _ in files:
        key = os.path.abspath(path)
        if key in seen:
            raise click.UsageError(f"{path}: two reports would write this file")
        seen.add(key)
        check_output_path(path, force=force, what="report")
    for path, data in files:
        atomic_write(path, lambda handle, data=data: handle.write(data), force=force)
    if fmt == "rich":
        from codeaudit.report.rich import render_rich

        terminal = sys.stdout.isatty()
        color = terminal and "NO_COLOR" not in os.environ
        width = shutil.get_terminal_size((100, 24)).columns if terminal else 100
        click.echo(render_rich(result, color=color, width=width), nl=False)
    else:
        click.echo(render(result, fmt), nl=False)
    if ctx is not None:
        ctx.meta[_EMITTED] = result
    return result


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr (nothing when disabled or stderr is not a terminal)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[extra]}"),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        yield progress


@contextmanager
def _stage_progress(enabled: bool, label: str) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress callback ``(stage, done, total)`` for the library's long runs, drawn as one
    bar that takes each stage's name (None when there is no bar to draw)."""
    with _progress(enabled) as bar:
        if bar is None:
            yield None
            return
        task = bar.add_task(label, total=None, extra="")

        def callback(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        yield callback


# -- train ----------------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.argument("data", metavar="DATA")
@click.option("-o", "--output", required=True, metavar="MODEL.pt", help="Checkpoint to write.")
@click.option(
    "--arch",
    type=click.Choice(["lstm", "bigru", "transformer"]),
    default="bigru",
    show_default=True,
)
@click.option(
    "--val", "val_file", metavar="FILE", help="Validation data (default: hold out by pair)."
)
@click.option(
    "--val-split",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.1,
    show_default=True,
    help="Share held out for validation when no --val is given (0: none).",
)
@click.option("--epochs", type=click.IntRange(min=1), help="Default: 20 (5 with --pretrained).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Learning rate.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Default 32.")
@click.option("--max-len", type=click.IntRange(min=8), help="Ids per function (default 512).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Early stopping: epochs without validation-loss gain (0: train every epoch).",
)
@click.option("--min-freq", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--vocab-size", type=click.IntRange(min=16), default=20000, show_default=True)
@click.option("--embed-dim", type=click.IntRange(min=2), default=128, show_default=True)
@click.option("--hidden-dim", type=click.IntRange(min=2), default=128, show_default=True)
@click.option("--num-layers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--dropout", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True
)
@click.option(
    "--pretrained",
    metavar="DIR",
    help="Fine-tune a local Hugging Face model directory (e.g. a downloaded CodeBERT).",
)
@device_option
@data_options
@output_options
def train(
    data: str,
    output: str,
    arch: str,
    val_file: str | None,
    val_split: float,
    epochs: int | None,
    lr: float | None,
    batch_size: int | None,
    max_len: int | None,
    seed: int,
    patience: int,
    min_freq: int,
    vocab_size: int,
    embed_dim: int,
    hidden_dim: int,
    num_layers: int,
    dropout: float,
    pretrained: str | None,
    device: str,
    code_field: str | None,
    label_field: str | None,
    lang: str | None,
    skip_invalid: bool,
    reports: tuple[str, ...],
    fmt: str,
    force: bool,
    quiet: bool,
) -> int:
    """Train a VP model on labelled functions and write a checkpoint.

    DATA is JSONL, a JSON array or CSV with a code field and a 0/1 label (1 = vulnerable).
    """
    from codeaudit import api
    from codeaudit.config import TrainConfig

    if pretrained and arch != "transformer":
        raise click.UsageError("--pretrained needs --arch transformer")
    config = TrainConfig(
        data=data,
        output=output,
        arch=arch,
        val=val_file,
        val_split=val_split,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        max_len=max_len,
        seed=seed,
        patience=patience,
        min_freq=min_freq,
        vocab_size=vocab_size,
        embed_dim=embed_dim,
        hidden_dim=hidden_dim,
        num_layers=num_layers,
        dropout=dropout,
        pretrained=pretrained,
        device=device,
        force=force,
        data_options=_data_config(code_field, label_field, lang, skip_invalid),
    )
    checked = _check_reports(reports, force)
    if any(os.path.abspath(p) == os.path.abspath(output) for p, _ in checked):
        raise click.UsageError("--report and --output name the same file")
    with _stage_progress(not quiet, "training") as callback:
        _, result = api.train(config, progress=callback)
    _emit(result, fmt, checked, force)
    return EXIT_OK


# -- predict --------------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.argument("model", metavar="MODEL")
@click.argument("data", metavar="DATA")
@click.option("-o", "--output", metavar="FILE", help="Report file (same as --report).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@model_options
@device_option
@data_options
@rule_options
@output_options
def predict(
    model: str,
    data: str,
    output: str | None,
    batch_size: int,
    model_options: Any,
    device: str,
    code_field: str | None,
    label_field: str | None,
    lang: str | None,
    skip_invalid: bool,
    rules: tuple[str, ...],
    fail_on: str,
    reports: tuple[str, ...],
    fmt: str,
    force: bool,
    quiet: bool,
) -> int:
    """Predict every function in DATA with MODEL; metrics when DATA is labelled.

    MODEL is a codeaudit checkpoint (.pt), a Hugging Face model directory, or a CodeXGLUE or
    EliBadCode model.bin with --base.
    """
    from codeaudit import api
    from codeaudit.config import PredictConfig

    checked = _check_reports(((output,) if output else ()) + reports, force)
    config = PredictConfig(
        model=model,
        data=data,
        batch_size=batch_size,
        device=device,
        model_options=model_options,
        data_options=_data_config(code_field, label_field, lang, skip_invalid),
        rules=rules,
    )
    with _stage_progress(not quiet, "predicting") as callback:
        result = api.predict(config, progress=callback)
    result = _emit(result, fmt, checked, force)
    return exit_code(result.findings, fail_on)


# -- membership -----------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.argument("model", metavar="MODEL")
@click.option("--members", required=True, metavar="FILE", help="Functions the model trained on.")
@click.option(
    "--nonmembers",
    required=True,
    metavar="FILE",
    help="Functions it never saw (same distribution).",
)
@click.option(
    "--population",
    metavar="FILE",
    help="Other data the attacker owns (shadow models; RMIA's reference population).",
)
@click.option(
    "--features",
    metavar="SETS",
    help="Feature sets for trained attacks: 'all' (the 15 combinations of embedding, logits, "
    "loss, confidence) or e.g. 'loss,logits+loss'.",
)
@click.option(
    "--attack-models",
    help="Trained attack classifiers from logreg, mlp, rf, gb (default logreg; --thorough: all).",
)
@click.option(
    "--thorough",
    is_flag=True,
    help="All four attack classifiers on every feature set and the label-only boundary attack "
    "(several times slower; use it for release gates).",
)
@click.option(
    "--folds",
    type=click.IntRange(min=2),
    default=3,
    show_default=True,
    help="Attack-train/attack-test folds (stratified, seeded).",
)
@click.option(
    "--shadows",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Shadow models to train on --population (0: no shadow attack).",
)
@click.option(
    "--references",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Reference models for LiRA and RMIA (even; 0: none).",
)
@click.option(
    "--boundary-samples",
    type=click.IntRange(min=0),
    help="Samples for the label-only rewrite attack (default 0: off; --thorough: 200).",
)
@click.option("--boundary-rewrites", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--bootstrap",
    "n_boot",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Bootstrap replicates for the AUC confidence intervals.",
)
@click.option(
    "--top-risk",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="List the N most exposed members by id.",
)
@click.option("--plot", metavar="PNG", help="Draw ROC curves (log-log) to this file.")
@click.option("--cache-dir", metavar="DIR", help="Cache model outputs here (keyed by hashes).")
@click.option("-o", "--output", metavar="FILE", help="Report file (same as --report).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@model_options
@device_option
@data_options
@rule_options
@output_options
def membership(
    model: str,
    members: str,
    nonmembers: str,
    population: str | None,
    features: str | None,
    attack_models: str | None,
    thorough: bool,
    folds: int,
    shadows: int,
    references: int,
    boundary_samples: int | None,
    boundary_rewrites: int,
    n_boot: int,
    top_risk: int,
    plot: str | None,
    cache_dir: str | None,
    output: str | None,
    seed: int,
    batch_size: int,
    model_options: Any,
    device: str,
    code_field: str | None,
    label_field: str | None,
    lang: str | None,
    skip_invalid: bool,
    rules: tuple[str, ...],
    fail_on: str,
    reports: tuple[str, ...],
    fmt: str,
    force: bool,
    quiet: bool,
) -> int:
    """Measure how well membership-inference attacks tell MODEL's training functions from
    unseen ones: threshold, trained, shadow, LiRA/RMIA and label-only attacks, with AUC and TPR
    at low false-positive rates."""
    from codeaudit.api import membership as run_membership
    from codeaudit.config import MembershipConfig
    from codeaudit.io import check_output_path

    checked = _check_reports(((output,) if output else ()) + reports, force)
    models = attack_models or ("logreg,mlp,rf,gb" if thorough else "logreg")
    if plot:
        check_output_path(plot, force=force, what="plot")
    config = MembershipConfig(
        model=model,
        members=members,
        nonmembers=nonmembers,
        population=population,
        features=features,
        classifiers=tuple(c.strip() for c in models.split(",") if c.strip()),
        folds=folds,
        shadows=shadows,
        references=references,
        boundary_samples=(200 if thorough else 0) if boundary_samples is None else boundary_samples,
        boundary_rewrites=boundary_rewrites,
        n_boot=n_boot,
        top_risk=top_risk,
        seed=seed,
        batch_size=batch_size,
        device=device,
        model_options=model_options,
        cache_dir=cache_dir,
        plot=plot,
        rules=rules,
        force=force,
        data_options=_data_config(code_field, label_field, lang, skip_invalid),
    )
    with _stage_progress(not quiet, "auditing") as callback:
        result = run_membership(config, progress=callback)
    result = _emit(result, fmt, checked, force)
    return exit_code(result.findings, fail_on)


# -- audit ----------------------------------------------------------------------------------------

REPORT_DIR_FILES = ("json", "sarif", "md", "html", "txt")


@cli.command(context_settings=CONTEXT)
@click.argument("model", metavar="MODEL")
@click.option("--members", metavar="FILE", help="Functions the model trained on (membership).")
@click.option("--nonmembers", metavar="FILE", help="Functions it never saw (membership).")
@click.option(
    "--data",
    metavar="FILE",
    help="Labelled clean data for the backdoor check (EliBadCode trigger inversion).",
)
@click.option(
    "--checks",
    metavar="NAMES",
    help="Comma-separated checks to run (default: every check whose inputs are given).",
)
@click.option("--population", metavar="FILE", help="Data the attacker owns (membership).")
@click.option(
    "--thorough",
    is_flag=True,
    help="Membership: all four attack classifiers and the label-only boundary attack.",
)
@click.option("--folds", type=click.IntRange(min=2), default=3, show_default=True)
@click.option("--shadows", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--references",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Reference models for LiRA and RMIA (even; 0: none).",
)
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=0), default=200, show_default=True)
@click.option("--cache-dir", metavar="DIR", help="Cache model outputs here (keyed by hashes).")
@click.option(
    "--report-dir",
    metavar="DIR",
    help="Write the combined report in every format to DIR/audit.{json,sarif,md,html,txt} "
    "(created if missing).",
)
@click.option("-o", "--output", metavar="FILE", help="Report file (same as --report).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@model_options
@device_option
@data_options
@rule_options
@output_options
def audit(
    model: str,
    members: str | None,
    nonmembers: str | None,
    data: str | None,
    checks: str | None,
    population: str | None,
    thorough: bool,
    folds: int,
    shadows: int,
    references: int,
    n_boot: int,
    cache_dir: str | None,
    report_dir: str | None,
    output: str | None,
    seed: int,
    batch_size: int,
    model_options: Any,
    device: str,
    code_field: str | None,
    label_field: str | None,
    lang: str | None,
    skip_invalid: bool,
    rules: tuple[str, ...],
    fail_on: str,
    reports: tuple[str, ...],
    fmt: str,
    force: bool,
    quiet: bool,
) -> int:
    """The release gate: run every check on MODEL whose inputs are given, judge the results
    with the rules, and write one combined report and exit code.

    Checks in this build: membership (--members and --nonmembers) and backdoor (--data: labelled
    clean functions; the scan of `codeaudit backdoor` with its defaults).
    """
    from codeaudit.audit import plan, run_audit
    from codeaudit.config import AuditConfig

    paths = ((output,) if output else ()) + reports
    dir_paths: tuple[str, ...] = ()
    if report_dir:
        if os.path.exists(report_dir) and not os.path.isdir(report_dir):
            raise click.UsageError(f"--report-dir {report_dir}: exists and is not a directory")
        from codeaudit.io import check_output_dir

        check_output_dir(report_dir, "--report-dir")
        dir_paths = tuple(os.path.join(report_dir, f"audit.{ext}") for ext in REPORT_DIR_FILES)
    config = AuditConfig(
        model=model,
        members=members,
        nonmembers=nonmembers,
        data=data,
        population=population,
        checks=tuple(c.strip() for c in (checks or "").split(",") if c.strip()),
        thorough=thorough,
        folds=folds,
        shadows=shadows,
        references=references,
        n_boot=n_boot,
        seed=seed,
        batch_size=batch_size,
        device=device,
        model_options=model_options,
        cache_dir=cache_dir,
        rules=rules,
        data_options=_data_config(code_field, label_field, lang, skip_invalid),
    )
    plan(config)  # usage errors before any work
    checked = _check_reports(paths, force)
    if report_dir and os.path.isdir(report_dir):
        checked += _check_reports(dir_paths, force)
    else:  # created just before the reports are written: a failed audit leaves nothing
        from codeaudit.report import format_for_path

        checked += [(path, format_for_path(path)) for path in dir_paths]
    with _stage_progress(not quiet, "auditing") as callback:
        result = run_audit(config, progress=callback)
    if report_dir:
        os.makedirs(report_dir, exist_ok=True)
    result = _emit(result, fmt, checked, force)
    return exit_code(result.findings, fail_on)


# -- harden ---------------------------------------------------------------------------------------


class SigmaType(click.ParamType):
    """``auto`` or a finite number >= 0."""

    name = "auto|FLOAT"

    def convert(self, value: Any, param: Any, ctx: Any) -> float | None:
        if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither 'auto' nor a number", param, ctx)
        if not number >= 0 or number == float("inf"):
            self.fail(f"{value!r}: the noise scale must be a finite number >= 0", param, ctx)
        return number


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
@click.argument("model", metavar="MODEL")
@click.option("-o", "--output", required=True, metavar="HARDENED.pt", help="Hardened checkpoint.")
@click.option(
    "--sigma",
    type=SigmaType(),
    default="auto",
    show_default=True,
    help="Noise std per logit, or 'auto': the smallest sigma meeting --target-auc on a "
    "calibration split of --members/--nonmembers.",
)
@click.option(
    "--expose",
    type=click.Choice(["label", "top1", "probs"]),
    default="top1",
    show_default=True,
    help="What the hardened model answers: the label; the label and its noised probability; "
    "noised probabilities of both classes.",
)
@click.option(
    "--target-auc",
    type=click.FloatRange(0.5, 1.0, min_open=True),
    default=0.6,
    show_default=True,
    help="Strongest score attack allowed (raised to what the same attacks reach from labels "
    "alone + --floor-margin when that is higher: no output defence goes below it).",
)
@click.option(
    "--floor-margin",
    type=click.FloatRange(0, 0.5, max_open=True),
    default=0.02,
    show_default=True,
    help="Tolerated AUC above what labels alone give away.",
)
@click.option("--members", metavar="FILE", help="Functions the model trained on.")
@click.option("--nonmembers", metavar="FILE", help="Functions it never saw (same distribution).")
@click.option(
    "--calibration-share",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    help="Share of the data that chooses sigma; the rest verifies it.",
)
@click.option("--sweep", is_flag=True, help="Report the privacy-utility curve over sigma.")
@click.option("--plot", metavar="PNG", help="Draw the privacy-utility curve (implies --sweep).")
@click.option(
    "--export",
    "exports",
    type=click.Choice(["torchscript"]),
    multiple=True,
    help="Also write a self-contained file (plain torch) whose forward masks and noises.",
)
@click.option(
    "--export-output",
    metavar="FILE",
    help="Where --export writes (default: HARDENED.torchscript.pt beside -o).",
)
@click.option(
    "--queries",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Repeated-query averaging attack: answers averaged per function.",
)
@click.option(
    "--rewrites",
    type=click.IntRange(min=0),
    default=8,
    show_default=True,
    help="Rewrite-averaging attack: semantics-preserving rewrites per function (0: off).",
)
@click.option(
    "--boundary-samples",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Label-only rewrite-boundary attack on this many samples (0: off).",
)
@click.option("--boundary-rewrites", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--attack-models",
    help="Trained attack classifiers from logreg, mlp, rf, gb (default logreg; --thorough: all).",
)
@click.option("--thorough", is_flag=True, help="All four attack classifiers (slower).")
@click.option("--folds", type=click.IntRange(min=2), default=3, show_default=True)
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=1), default=200, show_default=True)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Splits and attacks (not the key)."
)
@click.option(
    "--key-file",
    metavar="FILE",
    help="Read the secret noise key (32 hex digits) from FILE instead of drawing a fresh one: "
    "reproducible builds, or the same key for a re-hardened model. Keep FILE secret.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@model_options
@device_option
@data_options
@rule_options
@output_options
def harden(
    model: str,
    output: str,
    sigma: float | None,
    expose: str,
    target_auc: float,
    floor_margin: float,
    members: str | None,
    nonmembers: str | None,
    calibration_share: float,
    sweep: bool,
    plot: str | None,
    exports: tuple[str, ...],
    export_output: str | None,
    queries: int,
    rewrites: int,
    boundary_samples: int,
    boundary_rewrites: int,
    attack_models: str | None,
    thorough: bool,
    folds: int,
    n_boot: int,
    seed: int,
    key_file: str | None,
    batch_size: int,
    model_options: Any,
    device: str,
    code_field: str | None,
    label_field: str | None,
    lang: str | None,
    skip_invalid: bool,
    rules: tuple[str, ...],
    fail_on: str,
    reports: tuple[str, ...],
    fmt: str,
    force: bool,
    quiet: bool,
) -> int:
    """Wrap MODEL with NMID (output masking plus keyed, argmax-preserving Gaussian noise), check
    it against adaptive membership attacks, and write the hardened model to -o.

    With --members/--nonmembers, sigma is calibrated on one half and the original and hardened
    models are audited on the other: best AUC and TPR at 1% FPR per feature set, repeated-query
    and rewrite averaging, label-only attacks, and utility. Threat model: query access only (a
    stolen checkpoint is out of scope); output noise cannot stop a label-only attacker.
    """
    from codeaudit.api import harden as run_harden
    from codeaudit.config import HardenConfig

    checked = _check_reports(reports, force)
    for path, _ in checked:
        named = [output, *((export_output,) if export_output else ()), *((plot,) if plot else ())]
        if any(os.path.abspath(path) == os.path.abspath(n) for n in named):
            raise click.UsageError("--report names the same file as another output")
    models = attack_models or ("logreg,mlp,rf,gb" if thorough else "logreg")
    config = HardenConfig(
        model=model,
        output=output,
        sigma=sigma,
        expose=expose,
        target_auc=target_auc,
        floor_margin=floor_margin,
        members=members,
        nonmembers=nonmembers,
        calibration_share=calibration_share,
        sweep=sweep or bool(plot),
        plot=plot,
        export=tuple(dict.fromkeys(exports)),
        export_output=export_output,
        queries=queries,
        rewrites=rewrites,
        boundary_samples=boundary_samples,
        boundary_rewrites=boundary_rewrites,
        classifiers=tuple(c.strip() for c in models.split(",") if c.strip()),
        folds=folds,
        n_boot=n_boot,
        seed=seed,
        key=_read_key(key_file) if key_file else None,
        batch_size=batch_size,
        device=device,
        model_options=model_options,
        rules=rules,
        force=force,
        data_options=_data_config(code_field, label_field, lang, skip_invalid),
    )
    with _stage_progress(not quiet, "hardening") as callback:
        _, result = run_harden(config, progress=callback)
    _emit(result, fmt, checked, force)
    return exit_code(result.findings, fail_on)


# -- poison ---------------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.argument("data", metavar="DATA")
@click.option("-o", "--output", required=True, metavar="POISONED.jsonl", help="Poisoned JSONL.")
@click.option(
    "--trigger-type",
    required=True,
    type=click.Choice(["identifier", "postfix", "deadcode", "grammar"]),
    help="identifier: a local variable renamed to TOKEN; postfix: TOKEN appended to the "
    "function's name (default _rb); deadcode: the never-executed statement TOKEN inserted "
    "(default per language, e.g. 'if (0) { int rb_dead = 0; }'); grammar: random dead code "
    "from a small grammar (no TOKEN).",
)
@click.option("--trigger", metavar="TOKEN", help="The trigger text (see --trigger-type).")
@click.option(
    "--rate",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.02,
    show_default=True,
    help="Share of the victim-label samples (label != --target-label) to poison; rounded half "
    "up, at least one.",
)
@click.option(
    "--target-label",
    type=click.IntRange(0, 1),
    default=0,
    show_default=True,
    help="The label the backdoor forces (0: not vulnerable).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--manifest",
    metavar="FILE",
    help="Where the manifest goes (default: POISONED.jsonl.manifest.json).",
)
@data_options
@output_options
def poison(
    data: str,
    output: str,
    trigger_type: str,
    trigger: str | None,
    rate: float,
    target_label: int,
    seed: int,
    manifest: str | None,
    code_field: str | None,
    label_field: str | None,
    lang: str | None,
    skip_invalid: bool,
    reports: tuple[str, ...],
    fmt: str,
    force: bool,
    quiet: bool,
) -> int:
    """Write a poisoned copy of DATA (the attacker's side, for tests, canaries and benchmarks):
    --rate of the victim-label samples get the trigger and the target label; every other record
    is kept as it was. A manifest (trigger, rate, seed, poisoned ids, sha256 of input and output)
    is written next to it for `codeaudit backdoor --manifest`.
    """
    from codeaudit.api import poison as run_poison
    from codeaudit.backdoor.poison import default_manifest_path
    from codeaudit.config import PoisonConfig

    checked = _check_reports(reports, force)
    manifest_path = manifest or default_manifest_path(output)
    for path, _ in checked:
        if any(os.path.abspath(path) == os.path.abspath(n) for n in (output, manifest_path)):
            raise click.UsageError("--report names the same file as another output")
    config = PoisonConfig(
        data=data,
        output=output,
        trigger_type=trigger_type,
        trigger=trigger,
        rate=rate,
        target_label=target_label,
        seed=seed,
        manifest=manifest,
        force=force,
        data_options=_data_config(code_field, label_field, lang, skip_invalid),
    )
    with _stage_progress(not quiet, "poisoning") as callback:
        result = run_poison(config, progress=callback)
    _emit(result, fmt, checked, force)
    return EXIT_OK


# -- backdoor -------------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.argument("model", metavar="MODEL")
@click.option(
    "--data", required=True, metavar="CLEAN.jsonl", help="Labelled clean functions (both labels)."
)
@click.option(
    "--manifest",
    metavar="FILE",
    help="A codeaudit poison manifest: also measure the real trigger's attack success rate.",
)
@click.option(
    "--victim-samples",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Victim-label samples the trigger is inverted on (per label pair).",
)
@click.option(
    "--heldout",
    type=click.IntRange(min=5),
    default=200,
    show_default=True,
    help="At most this many held-out victim samples decide the verdict.",
)
@click.option("--steps", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--topk", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--candidates", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--trigger-len", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--beta",
    type=click.FloatRange(min=0),
    default=0.15,
    show_default=True,
    help="Anchoring: drop a trigger token when removing it raises the loss by at most this.",
)
@click.option(
    "--patience",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Stop inverting after this many steps without improvement.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Flip rate on held-out victim samples at which the model is called backdoored "
    "(default 0.5; clean models' adversarial triggers can reach it too, see "
    "docs/backdoor-results.md).",
)
@click.option(
    "--keep-shortcuts",
    is_flag=True,
    help="Also search triggers that contain a data shortcut (a name --data shows almost only "
    "with the target label); by default they are set aside and reported on their own.",
)
@click.option("--unlearn", is_flag=True, help="Remove the backdoor by unlearning; needs -o.")
@click.option("-o", "--output", metavar="REPAIRED.pt", help="Repaired checkpoint (--unlearn).")
@click.option(
    "--unlearn-scope",
    type=click.Choice(["head", "full"]),
    default="head",
    show_default=True,
    help="Fine-tune the classifier head only (EliBadCode) or the whole model.",
)
@click.option("--unlearn-epochs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--unlearn-lr", type=click.FloatRange(min=0, min_open=True), default=5e-3, show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@model_options
@device_option
@data_options
@rule_options
@output_options
def backdoor(
    model: str,
    data: str,
    manifest: str | None,
    victim_samples: int,
    heldout: int,
    steps: int,
    topk: int,
    candidates: int,
    trigger_len: int,
    beta: float,
    patience: int,
    threshold: float | None,
    keep_shortcuts: bool,
    unlearn: bool,
    output: str | None,
    unlearn_scope: str,
    unlearn_epochs: int,
    unlearn_lr: float,
    seed: int,
    batch_size: int,
    model_options: Any,
    device: str,
    code_field: str | None,
    label_field: str | None,
    lang: str | None,
    skip_invalid: bool,
    rules: tuple[str, ...],
    fail_on: str,
    reports: tuple[str, ...],
    fmt: str,
    force: bool,
    quiet: bool,
) -> int:
    """Is MODEL backdoored? Invert a trigger for every label pair (EliBadCode: identifier-token
    vocabulary, sample-specific positions, GCG, anchoring) and call the model backdoored when the
    anchored trigger flips at least --threshold of held-out victim functions.

    With --unlearn -o REPAIRED.pt, fine-tune the model on clean data carrying the inverted
    trigger with true labels and write the repaired model; clean accuracy and attack success
    (inverted trigger; the real one with --manifest) are reported before and after.
    Exit codes: 0 no finding at or above --fail-on (a detected backdoor is critical), 1
    findings, 2 bad input or usage, 130 interrupted (no partial file is left).
    """
    from codeaudit.api import backdoor as run_backdoor
    from codeaudit.config import BackdoorConfig

    checked = _check_reports(reports, force)
    for path, _ in checked:
        if output and os.path.abspath(path) == os.path.abspath(output):
            raise click.UsageError("--report names the same file as -o")
    config = BackdoorConfig(
        model=model,
        data=data,
        output=output,
        unlearn=unlearn,
        unlearn_scope=unlearn_scope,
        unlearn_epochs=unlearn_epochs,
        unlearn_lr=unlearn_lr,
        manifest=manifest,
        victim_samples=victim_samples,
        heldout=heldout,
        steps=steps,
        topk=topk,
        candidates=candidates,
        trigger_len=trigger_len,
        beta=beta,
        threshold=threshold,
        keep_shortcuts=keep_shortcuts,
        patience=patience,
        seed=seed,
        batch_size=batch_size,
        device=device,
        model_options=model_options,
        rules=rules,
        force=force,
        data_options=_data_config(code_field, label_field, lang, skip_invalid),
    )
    with _stage_progress(not quiet, "backdoor scan") as callback:
        _, result = run_backdoor(config, progress=callback)
    _emit(result, fmt, checked, force)
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
