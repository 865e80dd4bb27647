"""DP-SGD training through Opacus (``codeaudit train --dp``).

What changes against the plain loop (:func:`codeaudit.train.trainer.fit`):

- batches are Poisson-sampled as Opacus samples them (its ``UniformWithReplacementSampler``:
  every training function joins each step's batch with probability ``q = batch size / n``,
  ``1 / q`` steps an epoch), from a generator seeded by ``--seed``;
- the model is trained as a copy whose ``nn.GRU``/``nn.LSTM`` layers are Opacus's ``DPGRU`` /
  ``DPLSTM`` (the replacements ``opacus.validators.ModuleValidator.fix`` makes, with the same
  weights and the same state-dict keys), wrapped in a ``GradSampleModule`` for per-sample
  gradients; the trained weights are loaded back into the ordinary module, so the checkpoint is
  an ordinary codeaudit checkpoint that every command reads;
- each step clips every sample's gradient to ``--dp-max-grad-norm``, adds Gaussian noise of
  ``noise multiplier x max grad norm`` (Opacus's ``DPOptimizer`` around the same AdamW, its
  noise drawn from a generator seeded by ``--seed``: the same seed gives the same weights), and
  the accountant records the step; an empty batch still takes a noised step, as the mechanism
  the accountant assumes does.

The noise multiplier is either given or, with ``--dp-epsilon``, the smallest Opacus's
``get_noise_multiplier`` finds for the planned steps; epsilon is read from the accountant after
the last step taken (early stopping can end training before the plan). Choosing the epoch to
keep by validation loss reads only the validation data, so the guarantee for the training data
holds for the kept weights. Not covered: the vocabulary, built from the training data's tokens
as in every codeaudit model (see docs/dp-training.md).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from codeaudit.errors import TrainingError, UsageError

#: Added to ``--seed`` for the generators of the Poisson sampler and of the noise (two streams,
#: neither shared with initialisation or dropout).
_SAMPLER_STREAM = 0x5A17
_NOISE_STREAM = 0x0D15E


def default_delta(n: int) -> float:
    """The largest power of ten strictly below ``1 / n``."""
    return 10.0 ** -(math.floor(math.log10(max(1, n))) + 1)


@dataclass(frozen=True)
class PrivacyPlan:
    """The DP-SGD settings for one training run, fixed before the first step."""

    noise_multiplier: float
    max_grad_norm: float
    delta: float
    sample_rate: float
    steps_per_epoch: int
    accountant: str
    target_epsilon: float | None


def _opacus() -> Any:
    try:
        import opacus
    except ImportError:
        raise UsageError(
            "--dp needs Opacus, which is not installed: pip install 'codeaudit[dp]'"
        ) from None
    return opacus


def plan(config: Any, n_train: int, batch_size: int, epochs: int) -> PrivacyPlan:
    """The noise multiplier, delta and sample rate for ``epochs`` over ``n_train`` functions."""
    _opacus()
    from opacus.accountants.utils import get_noise_multiplier

    sample_rate = min(1.0, batch_size / n_train)
    steps_per_epoch = int(1 / sample_rate)
    delta = config.dp_delta if config.dp_delta is not None else default_delta(n_train)
    if config.dp_noise_multiplier is not None:
        sigma = float(config.dp_noise_multiplier)
        from opacus.accountants import create_accountant

        check = create_accountant(mechanism=config.dp_accountant)
        check.history = [(sigma, sample_rate, epochs * steps_per_epoch)]
        epsilon_of(check, delta, sigma)  # fails now, not after training
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # RDP's "optimal order is the largest alpha"
                sigma = float(
                    get_noise_multiplier(
                        target_epsilon=config.dp_epsilon,
                        target_delta=delta,
                        sample_rate=sample_rate,
                        steps=epochs * steps_per_epoch,
                        accountant=config.dp_accountant,
                    )
                )
        except ValueError as exc:  # "The privacy budget is too low."
            raise TrainingError(
                f"--dp-epsilon {config.dp_epsilon:g}: no noise multiplier reaches it over "
                f"{epochs * steps_per_epoch} steps at sample rate {sample_rate:.4g} ({exc}); "
                "raise it or train fewer epochs"
            ) from None
        except (MemoryError, OverflowError, FloatingPointError, RuntimeError) as exc:
            raise TrainingError(
                f"--dp-epsilon {config.dp_epsilon:g}: the {config.dp_accountant} accountant "
                f"cannot search the noise for it ({type(exc).__name__}); use --dp-accountant "
                "rdp or a smaller epsilon"
            ) from None
    return PrivacyPlan(
        noise_multiplier=sigma,
        max_grad_norm=float(config.dp_max_grad_norm),
        delta=float(delta),
        sample_rate=sample_rate,
        steps_per_epoch=steps_per_epoch,
        accountant=config.dp_accountant,
        target_epsilon=config.dp_epsilon,
    )


def epsilon_of(accountant: Any, delta: float, sigma: float) -> float:
    """The epsilon an accountant gives for its history (at least 0; see :meth:`finish`), or a
    one-line error: PRV's discretisation needs memory that grows without bound as the noise
    falls (1.4 TiB at noise multiplier 0.001)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # RDP's "optimal order is the largest alpha"
            epsilon = float(accountant.get_epsilon(delta=delta))
    except (MemoryError, ValueError, OverflowError, FloatingPointError, RuntimeError) as exc:
        raise TrainingError(
            f"--dp: the {accountant.mechanism()} accountant cannot compute epsilon at noise "
            f"multiplier {sigma:.4g} ({type(exc).__name__}); use --dp-accountant rdp or more noise"
        ) from None
    if not math.isfinite(epsilon):
        raise TrainingError(
            f"--dp: the {accountant.mechanism()} accountant gives no finite epsilon at noise "
            f"multiplier {sigma:.4g}; raise the noise"
        )
    # PRV's upper bound can dip below 0 for very large noise (its discretisation), and RDP's
    # improved conversion too; (e, delta)-DP with e < 0 implies (0, delta)-DP.
    return max(0.0, epsilon)


class PrivateTraining:
    """A model switched to DP-SGD for one :func:`~codeaudit.train.trainer.fit`: it trains a
    per-sample-gradient copy of the model's module and gives the weights back on :meth:`finish`.
    """

    def __init__(self, model: Any, plan: PrivacyPlan, n_train: int, seed: int) -> None:
        _opacus()
        from opacus import GradSampleModule
        from opacus.accountants import create_accountant
        from opacus.utils.uniform_sampler import UniformWithReplacementSampler
        from opacus.validators import ModuleValidator

        self.model = model
        self.plan = plan
        self.n_train = n_train
        self.original: nn.Module = model.module
        device = next(self.original.parameters()).device
        fixed = ModuleValidator.fix(self.original)  # a copy: DPGRU/DPLSTM for GRU/LSTM
        fixed.train()
        errors = ModuleValidator.validate(fixed, strict=False)
        if errors:
            raise TrainingError(f"--dp: Opacus cannot train this model ({errors[0]})")
        # The replacements carry the weights under the ordinary keys too (nested, their state
        # dicts also list each weight under its cell's own name): keep the ordinary ones.
        self.keys = tuple(self.original.state_dict())
        missing = set(self.keys) - set(fixed.state_dict())
        if missing:
            raise TrainingError(f"--dp: Opacus's layers lack weights {sorted(missing)[:3]}")
        self.inner = fixed.to(device)
        try:
            self.wrapped = GradSampleModule(self.inner, batch_first=True, loss_reduction="mean")
        except (NotImplementedError, ValueError) as exc:
            raise TrainingError(f"--dp: Opacus cannot train this model ({exc})") from None
        self.sampler = UniformWithReplacementSampler(
            num_samples=n_train,
            sample_rate=plan.sample_rate,
            generator=torch.Generator().manual_seed(seed + _SAMPLER_STREAM),
        )
        self.noise = torch.Generator(device=device).manual_seed(seed + _NOISE_STREAM)
        self.accountant = create_accountant(mechanism=plan.accountant)
        self.steps = 0
        model.module = self.wrapped

    @staticmethod
    @contextlib.contextmanager
    def quiet() -> Iterator[None]:
        """A block in which Opacus's per-sample hooks do not warn: torch's full backward hooks
        say, on every run, that the first layer's inputs (token ids) need no gradient."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            yield

    def optimizer(self, optimizer: torch.optim.Optimizer) -> Any:
        """``optimizer`` (over this copy's parameters) as Opacus's clipping, noising one."""
        from opacus.optimizers import DPOptimizer

        self.dp_optimizer = DPOptimizer(
            optimizer,
            noise_multiplier=self.plan.noise_multiplier,
            max_grad_norm=self.plan.max_grad_norm,
            expected_batch_size=max(1, round(self.plan.sample_rate * self.n_train)),
            loss_reduction="mean",
            generator=self.noise,
        )
        return self.dp_optimizer

    def batches(self) -> Iterator[list[int]]:
        """One epoch of Poisson-sampled batches (some may be empty)."""
        return iter(self.sampler)

    def empty_step(self) -> None:
        """A step on an empty batch: noise alone, as the sampled Gaussian mechanism has it."""
        for p in self.wrapped.parameters():
            if p.requires_grad:
                p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
        self.dp_optimizer.step()

    def stepped(self) -> None:
        """Record one noised step with the accountant."""
        self.accountant.step(
            noise_multiplier=self.plan.noise_multiplier, sample_rate=self.plan.sample_rate
        )
        self.steps += 1

    def state(self) -> dict[str, torch.Tensor]:
        """The copy's weights under the ordinary module's keys."""
        state = self.inner.state_dict()
        return {k: state[k].detach().clone() for k in self.keys}

    def finish(self, state: dict[str, torch.Tensor] | None) -> dict[str, Any]:
        """Load ``state`` (default: the last weights) into the ordinary module, put it back in
        the model and return the guarantee as the checkpoint records it."""
        self.wrapped.remove_hooks()  # the copy is dropped; no hook outlives the training
        self.original.load_state_dict(state if state is not None else self.state(), strict=True)
        self.model.module = self.original
        epsilon = 0.0
        if self.steps:
            epsilon = epsilon_of(self.accountant, self.plan.delta, self.plan.noise_multiplier)
        return {
            "mechanism": "dp-sgd",
            "library": f"opacus {_opacus().__version__}",
            "epsilon": epsilon,
            "delta": self.plan.delta,
            "target_epsilon": self.plan.target_epsilon,
            "noise_multiplier": self.plan.noise_multiplier,
            "max_grad_norm": self.plan.max_grad_norm,
            "accountant": self.plan.accountant,
            "sample_rate": self.plan.sample_rate,
            "steps": self.steps,
            "sampling": "poisson",
            "covers": "weights",  # the caller adds the vocabulary when --vocab keeps it apart
        }
