"""The Python API: one function per command, each running its check through the runner
(:mod:`codeaudit.runner`; ``gate``: a :class:`~codeaudit.gate.ReleaseGate` to judge the result
by) and writing the files the check made. They return result objects and
never print; the command line calls them too::

    from codeaudit import api
    from codeaudit.config import MembershipConfig, TrainConfig
    model, result = api.train(TrainConfig(data="train.jsonl", output="model.pt"))
    report = api.membership(MembershipConfig(model="model.pt", members=..., nonmembers=...))

To run a check on a model in memory, without files: ``codeaudit.runner.run(Check(), config,
loaded=LoadedModel.in_memory(model))``.
"""

from __future__ import annotations

from typing import Any

from codeaudit.check import Progress
from codeaudit.config import PredictConfig, TrainConfig


def train(
    config: TrainConfig,
    *,
    progress: Progress | None = None,
    write: bool = True,
    gate: Any = None,
) -> tuple[Any, Any]:
    """Train a model as configured and (with ``write``) save it to ``config.output``.

    Returns ``(model, TrainResult)``.
    """
    from codeaudit.runner import run, write_outputs
    from codeaudit.train.check import TrainCheck

    result, outcome = run(TrainCheck(write=write), config, progress=progress, gate=gate)
    if write:
        write_outputs(outcome.outputs, force=config.force)
    return outcome.model, result


def predict(config: PredictConfig, *, progress: Progress | None = None, gate: Any = None) -> Any:
    """Predictions of a model on a data file; returns a PredictResult."""
    from codeaudit.predict.check import PredictCheck
    from codeaudit.runner import run

    return run(PredictCheck(), config, progress=progress, gate=gate)[0]


def membership(config: Any, *, progress: Progress | None = None, gate: Any = None) -> Any:
    """A membership-inference audit (a :class:`~codeaudit.config.MembershipConfig`); writes the
    ROC plot when asked and returns the MembershipResult."""
    from codeaudit.membership.check import MembershipCheck
    from codeaudit.runner import run, write_outputs

    result, outcome = run(MembershipCheck(), config, progress=progress, gate=gate)
    write_outputs(outcome.outputs, force=config.force)
    return result


def backdoor(config: Any, *, progress: Progress | None = None, gate: Any = None) -> tuple[Any, Any]:
    """Scan a model for a backdoor (a :class:`~codeaudit.config.BackdoorConfig`); with
    ``unlearn`` repair it and write the repaired checkpoint. Returns ``(model, BackdoorResult)``
    (the model repaired in place when unlearning ran)."""
    from codeaudit.backdoor.check import BackdoorCheck
    from codeaudit.runner import run, write_outputs

    result, outcome = run(BackdoorCheck(), config, progress=progress, gate=gate)
    write_outputs(outcome.outputs, force=config.force)
    return outcome.model, result


def backdoor_calibrate(config: Any, *, progress: Progress | None = None, gate: Any = None) -> Any:
    """Calibrate the backdoor verdict for a model's recipe with shadow models (a
    :class:`~codeaudit.config.BackdoorCalibrateConfig`) and write the calibration file; returns
    the CalibrationResult."""
    from codeaudit.backdoor.calibrate import BackdoorCalibrateCheck
    from codeaudit.runner import run, write_outputs

    result, outcome = run(BackdoorCalibrateCheck(), config, progress=progress, gate=gate)
    write_outputs(outcome.outputs, force=config.force)
    return result


def poison(config: Any, *, progress: Progress | None = None, gate: Any = None) -> Any:
    """Write a poisoned copy of a data set and its manifest (a
    :class:`~codeaudit.config.PoisonConfig`), both or neither; returns the PoisonResult."""
    from codeaudit.backdoor.poison import PoisonCheck
    from codeaudit.runner import run, write_outputs

    result, outcome = run(PoisonCheck(), config, progress=progress, gate=gate)
    write_outputs(outcome.outputs, force=config.force)
    return result


def poison_scan(config: Any, *, progress: Progress | None = None, gate: Any = None) -> Any:
    """Scan a training set for planted triggers without a model (a
    :class:`~codeaudit.config.PoisonScanConfig`); with ``output`` write the flagged samples as
    JSONL. Returns the PoisonScanResult."""
    from codeaudit.backdoor.poison_scan import PoisonScanCheck
    from codeaudit.runner import run, write_outputs

    result, outcome = run(PoisonScanCheck(), config, progress=progress, gate=gate)
    write_outputs(outcome.outputs, force=config.force)
    return result


def harden(config: Any, *, progress: Progress | None = None, gate: Any = None) -> Any:
    """Harden a model with NMID as configured (a :class:`~codeaudit.config.HardenConfig`) and
    write it; returns ``(HardenedModel, HardenResult)``. Load a hardened model later with
    ``codeaudit.defense.load_hardened(path)`` (or ``codeaudit.models.load_model``)."""
    from codeaudit.defense.check import HardenCheck
    from codeaudit.runner import run, write_outputs

    result, outcome = run(HardenCheck(), config, progress=progress, gate=gate)
    write_outputs(outcome.outputs, force=config.force)
    return outcome.model, result
