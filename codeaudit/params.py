"""Each setting declared once: a configuration field with a :class:`Param` spec.

A config field made with :func:`param` carries everything about the setting: its default, its
help, its bounds or choices, and how the command line spells it. The config checks every value
when it is built (:func:`check_params`, a :class:`ParameterError` that names the setting), and
the command line builds its options from the same specs (``codeaudit.cli.config_options``), so
a bound, a default or a help text cannot drift between the two. Plain Python: building a config
imports no torch, so a usage error costs milliseconds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from codeaudit.errors import UsageError


class ParameterError(UsageError):
    """A setting with a value it cannot take. ``parameter`` is the field name; the command line
    names the flag instead (``--folds 1: must be at least 2``)."""

    def __init__(self, parameter: str, problem: str, owner: type | None = None) -> None:
        self.parameter = parameter
        self.problem = " ".join(str(problem).split())
        self.owner = owner
        super().__init__(f"{parameter.replace('_', ' ')} {self.problem}")


@dataclass(frozen=True)
class Param:
    """How a setting is checked and offered on the command line."""

    help: str = ""
    flags: tuple[str, ...] = ()  # default: --field-name
    metavar: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_open: bool = False  # minimum itself excluded
    max_open: bool = False
    choices: tuple[str, ...] = ()
    comma: bool = False  # a tuple given as one comma-separated value
    multiple: bool = False  # a tuple given by repeating the option
    argument: bool = False  # positional (MODEL, DATA)
    required: bool = False
    cli: bool = True  # False: a library setting the command line does not offer
    cli_type: str | None = None  # a named command-line type (e.g. "sigma": auto or a number)
    kind: type | None = None  # int, float, str, bool (default: from the default value)
    show_default: bool = True

    def flag(self, name: str) -> str:
        return (self.flags or (f"--{name.replace('_', '-')}",))[-1]


def param(default: Any = dataclasses.MISSING, **spec: Any) -> Any:
    """A config field with a :class:`Param` spec (``factory=`` for mutable defaults)."""
    factory = spec.pop("factory", dataclasses.MISSING)
    metadata = {"param": Param(**spec)}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def params(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Param]]:
    """The fields of a config class that carry a spec, in declaration order."""
    for item in dataclasses.fields(cls):
        spec = item.metadata.get("param")
        if spec is not None:
            yield item, spec


def _range_text(spec: Param) -> str:
    low = "" if spec.minimum is None else ("> " if spec.min_open else ">= ") + f"{spec.minimum:g}"
    high = "" if spec.maximum is None else ("< " if spec.max_open else "<= ") + f"{spec.maximum:g}"
    return " and ".join(p for p in (low, high) if p)


def _check_number(name: str, value: Any, spec: Param, kind: type, owner: type) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(name, f"{value!r}: must be a number", owner)
    if kind is int and not isinstance(value, int):
        raise ParameterError(name, f"{value!r}: must be a whole number", owner)
    if not math.isfinite(value):
        raise ParameterError(name, f"{value!r}: must be finite", owner)
    low, high = spec.minimum, spec.maximum
    below = low is not None and (value <= low if spec.min_open else value < low)
    above = high is not None and (value >= high if spec.max_open else value > high)
    if below or above:
        raise ParameterError(name, f"{value!r}: must be {_range_text(spec)}", owner)


def kind_of(item: dataclasses.Field[Any], spec: Param) -> type | None:
    if spec.kind is not None:
        return spec.kind
    default = item.default
    if default is dataclasses.MISSING or default is None:
        return None
    return type(default)


def check_params(config: Any) -> None:
    """Check every value of a config against its field's spec (called by the configs)."""
    owner = type(config)
    for item, spec in params(owner):
        value = getattr(config, item.name)
        if value is None:
            continue
        values = value if isinstance(value, tuple) else (value,)
        kind = kind_of(item, spec)
        for single in values:
            if spec.choices and single not in spec.choices:
                choices = ", ".join(spec.choices)
                raise ParameterError(item.name, f"{single!r}: use one of {choices}", owner)
            if kind in (int, float) and not isinstance(value, tuple):
                _check_number(item.name, single, spec, kind, owner)


def resolve(config: Any, **values: Any) -> None:
    """Set fields of a frozen config from ``__post_init__`` (defaults that depend on others)."""
    for name, value in values.items():
        object.__setattr__(config, name, value)
