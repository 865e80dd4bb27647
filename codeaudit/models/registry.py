"""The model architectures codeaudit can train and load, by name."""

from __future__ import annotations

from codeaudit.errors import CheckpointError
from codeaudit.models.arch import Arch
from codeaudit.models.base import VPModel
from codeaudit.models.rnn import BiGRUModel, LSTMModel
from codeaudit.models.transformer import TransformerModel

__all__ = ["ARCHITECTURES", "Arch", "adapter_class"]

ARCHITECTURES: dict[Arch, type[VPModel]] = {
    Arch.LSTM: LSTMModel,
    Arch.BIGRU: BiGRUModel,
    Arch.TRANSFORMER: TransformerModel,
}


def adapter_class(arch: str) -> type[VPModel]:
    try:
        return ARCHITECTURES[Arch(arch)]
    except ValueError:
        names = ", ".join(a.value for a in Arch)
        raise CheckpointError(f"unknown architecture {arch!r} (known: {names})") from None
