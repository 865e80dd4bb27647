"""The modules an export traces: the model from token ids, then the keyed noise and masking.

Both export formats (:mod:`codeaudit.defense.export_torchscript`,
:mod:`codeaudit.defense.export_pt2`) trace these, so the two files compute the same thing as
the codeaudit wrapper: the parent model's logits, then :class:`~codeaudit.models.nmid.NMIDHead`
(or :class:`~codeaudit.models.nmid.BandedHead`)
(the keyed hash of the token ids, the Gaussian draw, the reflected margin and the release).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from codeaudit.errors import HardenError
from codeaudit.models.base import Batch, VPModel
from codeaudit.models.nmid import HardenedModel


class Logits(nn.Module):
    """The adapter's forward from token ids, logits only (what gets traced)."""

    def __init__(self, adapter: VPModel) -> None:
        super().__init__()
        self.adapter = adapter
        self.inner = adapter.module  # registers the weights

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        batch = Batch(input_ids, attention_mask, attention_mask.sum(dim=1))
        return self.adapter.forward(batch).logits


class PaddedLogits(nn.Module):
    """:class:`Logits` on the batch right-padded to ``length`` positions (padding ids, mask 0).

    For recurrent models under ``torch.export``: its LSTM/GRU decomposition fixes the number of
    time steps, so the program always runs ``length`` (``max_len``) steps. Padding reaches no
    real position (the forward direction reads it after them, the backward one is reversed
    within each row's length, pooling is masked), so the logits are the unpadded ones.
    """

    def __init__(self, adapter: VPModel, length: int) -> None:
        super().__init__()
        self.logits = Logits(adapter)
        self.length = int(length)
        self.pad_id = int(adapter.tokenizer.pad_id)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        extra = self.length - input_ids.shape[1]
        ids = functional.pad(input_ids, (0, extra), value=self.pad_id)
        mask = functional.pad(attention_mask, (0, extra), value=0)
        return self.logits(ids, mask)


class HardenedExport(nn.Module):
    """Model, then keyed noise and masking: the only thing the exported file can compute."""

    def __init__(self, base: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.base = base
        self.head = head

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        with torch.no_grad():  # answers only: no autograd graph (and the inference kernels)
            logits = self.base(input_ids, attention_mask)
            return self.head(logits, input_ids, attention_mask)


def check_exportable(model: HardenedModel) -> None:
    if not model.defense.keyed:
        raise HardenError("only keyed NMID can be exported")


def head_of(model: HardenedModel) -> nn.Module:
    """A fresh head holding the defence's key, exposure and noise: :class:`NMIDHead` (sigma)
    or :class:`~codeaudit.models.nmid.BandedHead` (band edges)."""
    return model.defense.new_head()


def examples(model: VPModel) -> Batch:
    """A padded two-row batch of real encodings to trace with (unequal lengths, so the trace
    records the masked path)."""
    long = "\n".join(
        ["int trace_example(int n, char *buf) {", "  int total = 0;"]
        + [f"  if (n > {i}) {{ total += buf[{i}] * {i + 1}; }}" for i in range(12)]
        + ["  return total;", "}"]
    )
    short = "int f(int a) { return a + 1; }"
    encodings = [model.encode_code(long), model.encode_code(short)]
    if min(len(e.ids) for e in encodings) < 1 or len(encodings[0]) == len(encodings[1]):
        raise HardenError("cannot build a tracing example for this tokenizer")
    return model.collate(encodings)
