"""The model architectures codeaudit can train and load, by name."""

from __future__ import annotations

from enum import Enum

from codeaudit.errors import CheckpointError
from codeaudit.models.base import VPModel
from codeaudit.models.rnn import BiGRUModel, LSTMModel
from codeaudit.models.transformer import TransformerModel


class Arch(str, Enum):
    LSTM = "lstm"
    BIGRU = "bigru"
    TRANSFORMER = "transformer"


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
