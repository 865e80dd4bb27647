"""Command-line options made from the configurations (:mod:`codeaudit.params`): every setting
is declared once, as a config field, and offered here with its flag, type, bounds, default and
help; plus the options that are the command line's own (reports, rules, ``--force``)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import click

from codeaudit.params import Param, ParameterError, kind_of, params
from codeaudit.report.model import FAIL_ON_CHOICES
from codeaudit.settings import STDOUT_FORMATS

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


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


class ThreadsType(click.ParamType):
    """``auto`` or a whole number >= 1."""

    name = "auto|N"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | None:
        from codeaudit.errors import UsageError
        from codeaudit.threads import parse_threads

        try:
            return parse_threads(value, "")
        except UsageError:
            self.fail(f"{value!r}: use 'auto' or a whole number >= 1", param, ctx)


CLI_TYPES: dict[str, tuple[click.ParamType, str]] = {
    "sigma": (SigmaType(), "auto"),
    "threads": (ThreadsType(), "auto"),
}


def flag_of(owner: type | None, parameter: str) -> str:
    """The flag that sets a config field (``--folds``), or the field's name."""
    if owner is not None and dataclasses.is_dataclass(owner):
        for item, spec in params(owner):
            if item.name == parameter:
                return spec.flag(item.name)
    return f"--{parameter.replace('_', '-')}"


def parameter_message(exc: ParameterError) -> str:
    """A config's error about a setting, told with the flag that sets it."""
    return f"{flag_of(exc.owner, exc.parameter)} {exc.problem}"


def _number_type(kind: type, spec: Param) -> click.ParamType | type:
    if spec.minimum is None and spec.maximum is None:
        return kind
    make = click.IntRange if kind is int else click.FloatRange
    return make(
        spec.minimum, spec.maximum, min_open=spec.min_open, max_open=spec.max_open, clamp=False
    )


def option_for(item: dataclasses.Field[Any], spec: Param) -> Decorator:
    """The click argument or option for one config field."""
    name = item.name
    if spec.argument:
        return click.argument(name, metavar=spec.metavar or name.upper())
    decls = [*(spec.flags or (f"--{name.replace('_', '-')}",)), name]
    kind = kind_of(item, spec)
    default = None if item.default is dataclasses.MISSING else item.default
    kw: dict[str, Any] = {"help": spec.help or None, "required": spec.required}
    if spec.metavar:
        kw["metavar"] = spec.metavar
    if kind is bool:
        return click.option(*decls, is_flag=True, default=bool(default), help=kw["help"])
    if spec.cli_type:
        kw["type"], kw["default"] = CLI_TYPES[spec.cli_type]
        kw["show_default"] = spec.show_default
    elif spec.choices and not spec.comma:
        kw["type"] = click.Choice(list(spec.choices))
    elif kind in (int, float) and not spec.comma:
        kw["type"] = _number_type(kind, spec)
    if spec.multiple:
        kw["multiple"] = True
    elif default is not None and not spec.comma and not spec.cli_type:
        kw["default"], kw["show_default"] = default, spec.show_default
    return click.option(*decls, **kw)


def config_options(cls: type, *, skip: tuple[str, ...] = ()) -> Decorator:
    """Every command-line setting of a config class, as options (in declaration order)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for item, spec in reversed(list(params(cls))):
            if spec.cli and item.name not in skip:
                fn = option_for(item, spec)(fn)
        return fn

    return decorate


def build(cls: type, values: dict[str, Any], **extra: Any) -> Any:
    """A config from the command's option values (taken out of ``values``) and ``extra``; a
    setting the command line left at its default that ``[tool.codeaudit]`` sets (``threads``)
    comes from there."""
    if values.get("threads", 0) is None:
        from codeaudit.cli.emit import project_settings

        values["threads"] = project_settings(click.get_current_context()).threads
    kwargs: dict[str, Any] = {}
    for item, spec in params(cls):
        if not spec.cli or item.name not in values:
            continue
        value = values.pop(item.name)
        if spec.comma and isinstance(value, str):
            value = tuple(v.strip() for v in value.split(",") if v.strip()) or None
        elif spec.multiple:
            value = tuple(value)
        if value is not None:
            kwargs[item.name] = value
    return cls(**kwargs, **extra)


def _nested(cls: type, keyword: str) -> Decorator:
    """Options for a nested settings class (how models load, how data files read), passed to
    the command as one object named ``keyword``."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        names = [item.name for item, spec in params(cls) if spec.cli]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in names}
            kwargs[keyword] = build(cls, values)
            return fn(*args, **kwargs)

        return config_options(cls)(wrapper)

    return decorate


def model_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--base, --input-format, --max-len, --trust-checkpoint, as ``model_options``."""
    from codeaudit.models.options import LoadOptions

    return _nested(LoadOptions, "model_options")(fn)


def data_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--code-field, --label-field, --lang, --skip-invalid, as ``data_options``."""
    from codeaudit.data.options import DataConfig

    return _nested(DataConfig, "data_options")(fn)


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--report (repeatable), --format, --force, -q, --no-config.

    The command receives ``reports, fmt, force, quiet``; ``fmt`` is already resolved (the flag,
    else ``format`` from [tool.codeaudit], else rich). ``--no-config`` is consumed here."""
    from codeaudit.cli.emit import project_settings

    @functools.wraps(fn)
    def wrapper(*args: Any, no_config: bool, **kwargs: Any) -> Any:
        if kwargs.get("fmt") is None:
            kwargs["fmt"] = project_settings(click.get_current_context()).format or "rich"
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
            "--no-config", is_flag=True, help="Ignore [tool.codeaudit] in pyproject.toml."
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def split(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip() for value in values for v in value.split(",") if v.strip())


def rule_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--rules, --select, --ignore, --fail-on, --baseline.

    The command receives ``rules`` and ``fail_on`` only, both resolved (flags win over
    [tool.codeaudit], then the defaults). The rule files and selectors are validated here, before
    the command does any work (exit 2). The command hands the gate to the runner, which judges
    the result by it; the command's exit code is the gate's."""
    from codeaudit.cli.emit import GATE, project_settings, reported

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        select: tuple[str, ...],
        ignore: tuple[str, ...],
        baseline: str | None,
        **kwargs: Any,
    ) -> Any:
        from codeaudit.gate import GateSettings, open_gate
        from codeaudit.report.model import utc_now

        ctx = click.get_current_context()
        project = project_settings(ctx)
        rules = tuple(kwargs["rules"]) or project.rules or ()
        fail_on = kwargs["fail_on"] or project.fail_on or "low"
        chosen, sources = {}, {}
        for name, flag in (("select", select), ("ignore", ignore)):
            chosen[name] = split(flag) or getattr(project, name) or ()
            sources[name] = (
                f"--{name}" if split(flag) else f"{project.path}: [tool.codeaudit] {name}"
            )
        settings = GateSettings(
            fail_on=fail_on,
            rule_files=rules,
            select=chosen["select"],
            ignore=chosen["ignore"],
            baseline=baseline,
            config_file=project.path,
            started=utc_now(),
        )
        ctx.meta[GATE] = open_gate(settings, sources=sources)
        kwargs["rules"], kwargs["fail_on"] = rules, fail_on
        code = fn(*args, **kwargs)
        gate = getattr(getattr(reported(ctx), "header", None), "gate", None)
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


def report_file_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """-o/--output for a command whose product is its report."""
    return click.option(
        "-o", "--output", "report_output", metavar="FILE", help="Report file (same as --report)."
    )(fn)
