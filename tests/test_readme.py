"""The README tells the truth about set-up and options: its two commands are what CI runs, the
torch line says what it installs, and every option its command tables name exists."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from codeaudit.cli import cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_the_two_set_up_commands_come_first_and_ci_runs_the_second() -> None:
    first, second = _blocks()[:2]
    assert first.strip().endswith("pip install torch==2.13.0 -e . && examples/quickstart.sh")
    assert second.strip().endswith("pip install torch==2.13.0 -e '.[test]' && pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"pip install torch==2\.13\.0 -e '\.\[test[^']*\]' && pytest", ci)


def test_the_torch_line_says_what_it_installs_and_offers_the_cpu_index() -> None:
    setup = README.split("## Commands")[0]
    assert "CUDA" in setup and "pypi.org" in setup
    assert "--index-url https://download.pytorch.org/whl/cpu" in setup
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    torch = next(d for d in project["dependencies"] if re.match(r"torch\b", d))
    assert "==" not in torch and ">=" in torch  # a range: the pin is the README's, not ours


def test_every_option_in_a_command_table_exists() -> None:
    sections = re.split(r"^### `codeaudit ([\w-]+)[^`]*`$", README, flags=re.M)
    checked = 0
    for name, body in zip(sections[1::2], sections[2::2], strict=True):
        body = body.split("\n## ")[0]
        command = cli.commands[name]
        ctx = click.Context(command)
        flags = {opt for p in command.get_params(ctx) for opt in (*p.opts, *p.secondary_opts)}
        for row in re.findall(r"^\| (.*?) \|", body, flags=re.M):
            for flag in re.findall(r"`(--[a-z][a-z0-9-]*)", row):
                assert flag in flags, f"README: codeaudit {name} has no {flag}"
                checked += 1
    assert checked >= 15  # the option tables of train and poison
