"""The ``torch.export`` export (``--export torch.export``): an ExportedProgram ``.pt2``.

The file runs with plain ``torch`` (no codeaudit)::

    m = torch.export.load("hardened.pt2").module()
    out = m(input_ids, attention_mask)   # int64 [B, T] each, T <= max_len; 1 marks a real token
    out["label"], out["confidence"]      # top1; "probs" with --expose probs

The program is the model from token ids followed by the keyed noise and masking of
:class:`~codeaudit.models.nmid.NMIDHead`, exported with a dynamic batch and length (``Dim``), so
the key is a buffer of the program and the noise is computed in its graph. Recurrent models
(LSTM, BiGRU) are exported on the input right-padded to ``max_len``: ``torch.export``'s RNN
decomposition fixes the number of time steps, and padding changes no real position (see
:class:`~codeaudit.defense.exportable.PaddedLogits`). The program checks its input shapes: a
length above ``max_len`` is refused. The metadata is the extra file ``codeaudit.json``
(``torch.export.load(path, extra_files={"codeaudit.json": ""})``).

Nothing of the machine that exported it is kept: the source locations (absolute paths and call
stacks) torch records on every graph node are dropped from this program before it is saved.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codeaudit.defense.exportable import (
    HardenedExport,
    Logits,
    PaddedLogits,
    check_exportable,
    examples,
    head_of,
)
from codeaudit.models.nmid import HardenedModel

NAME = "torch.export"
FORMAT = "codeaudit-nmid-torch.export"
LOAD = "torch.export.load(path).module()(input_ids, attention_mask)"
META_FILE = "codeaudit.json"


def recurrent(model: HardenedModel) -> bool:
    """Whether the model runs a torch RNN (exported at a fixed number of time steps)."""
    return any(isinstance(m, nn.RNNBase) for m in model.base.module.modules())


def _forget_sources(program: torch.export.ExportedProgram) -> None:
    """Drop the stack traces (absolute paths of this machine's files) from every node."""
    for module in program.graph_module.modules():
        if isinstance(module, torch.fx.GraphModule):
            for node in module.graph.nodes:
                node.meta.pop("stack_trace", None)


def build_program(model: HardenedModel) -> torch.export.ExportedProgram:
    """Export the parent model from token ids with the defence after it (on CPU)."""
    check_exportable(model)
    device = model.device
    model.to("cpu")
    try:
        example = examples(model.base)
        base: nn.Module = (
            PaddedLogits(model.base, model.max_len) if recurrent(model) else Logits(model.base)
        )
        module = HardenedExport(base.eval(), head_of(model)).eval()
        batch = torch.export.Dim("batch", min=1)
        length = torch.export.Dim("length", min=1, max=model.max_len)
        shapes = ({0: batch, 1: length}, {0: batch, 1: length})
        with warnings.catch_warnings():  # tracing notes: the file is checked against the wrapper
            warnings.simplefilter("ignore")
            program = torch.export.export(
                module, (example.input_ids, example.attention_mask), dynamic_shapes=shapes
            )
    finally:
        model.to(device)
    _forget_sources(program)
    return program


def program_bytes(program: torch.export.ExportedProgram, meta: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.export.save(
            program, buffer, extra_files={META_FILE: json.dumps(meta, sort_keys=True)}
        )
    return buffer.getvalue()


def load_program(data: bytes) -> Callable[..., dict[str, torch.Tensor]]:
    """The exported bytes loaded afresh, as plain torch would: the program's module."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.export.load(io.BytesIO(data)).module()  # type: ignore[no-any-return]


def read_program_metadata(path: str | Path) -> dict[str, Any]:
    extra = {META_FILE: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with open(path, "rb") as handle:  # any file name (torch logs about names not .pt2)
            torch.export.load(handle, extra_files=extra)
    return json.loads(extra[META_FILE])  # type: ignore[no-any-return]


class TorchExportExporter:
    """``--export torch.export``: an ExportedProgram, ``HARDENED.pt2``."""

    name = NAME
    format = FORMAT
    load_hint = LOAD
    deprecation: str | None = None

    def refusal(self, model: Any) -> str | None:
        if not all(hasattr(torch.export, f) for f in ("export", "save", "load", "Dim")):
            return f"torch {torch.__version__} has no usable torch.export; use --export torchscript"
        return None

    def default_path(self, output: str) -> str:
        return str(Path(output).with_suffix(".pt2"))

    def input_note(self, model: HardenedModel) -> str:
        note = f"any batch size, length 1 to {model.max_len} (longer input is refused)"
        if recurrent(model):
            note += f"; the recurrent model always runs {model.max_len} steps (padded)"
        return note

    def to_bytes(self, model: HardenedModel, meta: dict[str, Any]) -> bytes:
        return program_bytes(build_program(model), meta)

    def load(self, data: bytes) -> Callable[..., dict[str, torch.Tensor]]:
        return load_program(data)

    def read_metadata(self, path: str | Path) -> dict[str, Any]:
        return read_program_metadata(path)
