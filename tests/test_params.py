"""Every setting declared once: the configs check their values, the command line offers exactly
their fields, errors name the flag, and a usage error costs no heavy import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from codeaudit import config as configs
from codeaudit.cli import cli
from codeaudit.cli.options import flag_of
from codeaudit.params import ParameterError, params

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "train": configs.TrainConfig,
    "predict": configs.PredictConfig,
    "membership": configs.MembershipConfig,
    "audit": configs.AuditConfig,
    "harden": configs.HardenConfig,
    "poison": configs.PoisonConfig,
    "poison-scan": configs.PoisonScanConfig,
    "backdoor": configs.BackdoorConfig,
    "backdoor-calibrate": configs.BackdoorCalibrateConfig,
}
NESTED = {"model_options": configs.LoadOptions, "data_options": configs.DataConfig}


def _flags(command: click.Command) -> dict[str, click.Parameter]:
    return {p.name: p for p in command.params if p.name}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_command_offers_exactly_its_configs_settings(name: str) -> None:
    command = cli.commands[name]
    offered = _flags(command)
    config = COMMANDS[name]
    expected = {item.name: spec for item, spec in params(config) if spec.cli}
    for field_name in NESTED:
        if field_name in {f.name for f, _ in params(config)}:
            expected |= {i.name: s for i, s in params(NESTED[field_name]) if s.cli}
    for field_name, spec in expected.items():
        assert field_name in offered, f"{name}: {field_name} has no option"
        option = offered[field_name]
        if isinstance(option, click.Option):
            assert spec.flag(field_name) in option.opts + option.secondary_opts
            if spec.minimum is not None and isinstance(option.type, click.types._NumberRangeBase):
                assert option.type.min == spec.minimum
    assert set(COMMANDS) | {"audit"} >= set(cli.commands)


def test_choices_agree_with_the_code_that_uses_them() -> None:
    from codeaudit.backdoor.unlearn import SCOPES
    from codeaudit.defense.export import EXPORT_FORMATS
    from codeaudit.membership.attacks.trained import CLASSIFIERS
    from codeaudit.models.input_format import INPUT_FORMATS
    from codeaudit.models.registry import Arch

    def choices(cls: type, name: str) -> set[str]:
        return {c for item, spec in params(cls) if item.name == name for c in spec.choices}

    assert set(configs.CLASSIFIER_NAMES) == set(CLASSIFIERS)
    assert choices(configs.HardenConfig, "export") == set(EXPORT_FORMATS)
    assert choices(configs.BackdoorConfig, "unlearn_scope") == set(SCOPES)
    assert choices(configs.TrainConfig, "arch") == {a.value for a in Arch}
    assert choices(configs.LoadOptions, "input_format") == set(INPUT_FORMATS)


def test_values_are_checked_where_they_are_declared() -> None:
    with pytest.raises(ParameterError, match="n boot 0: must be >= 1") as info:
        configs.AuditConfig(model="m", n_boot=0)  # was allowed by audit, refused elsewhere
    assert flag_of(info.value.owner, info.value.parameter) == "--bootstrap"
    with pytest.raises(ParameterError, match="needs --population"):
        configs.MembershipConfig(model="m", members="a", nonmembers="b", shadows=2)
    thorough = configs.MembershipConfig(model="m", members="a", nonmembers="b", thorough=True)
    assert thorough.attack_classifiers == ("logreg", "mlp", "rf", "gb", "knn", "svm", "dt")
    assert thorough.boundary_count == 200  # --thorough is expanded in one place
    import dataclasses

    quick = dataclasses.replace(thorough, thorough=False)  # nothing was frozen in by --thorough
    assert quick.attack_classifiers == ("logreg",) and quick.boundary_count == 0
    with pytest.raises(ParameterError, match=r"'xgboost': use one of"):
        configs.HardenConfig(model="m", output="o", sigma=1.0, classifiers=("xgboost",))
    assert configs.HardenConfig(model="m", output="o", sigma=1, plot=None).sweep is False
    with pytest.raises(ParameterError, match="measure attacks"):
        configs.HardenConfig(model="m", output="o", sigma=1, plot="p.png")
    with pytest.raises(ParameterError):
        configs.PredictConfig(model="m", data="d", batch_size=True)  # a bool is not a number


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["membership", "m.pt", "--members", "a", "--nonmembers", "b", "--shadows", "2"],
         "--shadows needs --population"),
        (["harden", "m.pt", "-o", "h.pt"], "--sigma auto calibrates"),
        (["backdoor", "m.pt", "--data", "d.jsonl", "--unlearn"], "--unlearn writes the repaired"),
        (["train", "d.jsonl", "-o", "m.pt", "--pretrained", "x"], "--pretrained needs --arch"),
    ],
)  # fmt: skip
def test_a_usage_error_names_the_flag_and_imports_no_heavy_library(
    argv: list[str], message: str, tmp_path: Path
) -> None:
    probe = (
        "import sys\n"
        "from codeaudit.cli import cli\n"
        f"code = cli.main({argv!r}, standalone_mode=False)\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sklearn', 'numpy') "
        "if m in sys.modules)\n"
        "print(code, heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.stdout.strip() == "2 []", (done.stdout, done.stderr)
    assert done.stderr.startswith("codeaudit: error: ") and message in done.stderr
    assert done.stderr.count("\n") == 1
