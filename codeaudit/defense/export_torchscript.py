"""The TorchScript export (``--export torchscript``): deprecated by torch, kept while it ships.

The file runs with plain ``torch`` (no codeaudit)::

    m = torch.jit.load("hardened.torchscript.pt")
    out = m(input_ids, attention_mask)   # int64 [B, T] each; 1 marks a real token
    out["label"], out["confidence"]      # top1; "probs" with --expose probs

Its forward is the model (traced from token ids, so any batch size and length work) followed
by the same scripted keyed-noise and masking code the codeaudit wrapper runs; nothing else
(logits, embeddings) can be asked of it. The metadata is the extra file ``codeaudit.json``
(``torch.jit.load(path, _extra_files=...)``).

torch deprecates TorchScript (``torch.jit.trace/script/save/load`` warn from torch 2.13 on):
``--export torch.export`` (:mod:`codeaudit.defense.export_pt2`) is its successor. The
deprecation warnings of codeaudit's own calls are silenced here, locally, and harden states the
deprecation in its result instead.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from codeaudit.defense.exportable import HardenedExport, Logits, check_exportable, examples, head_of
from codeaudit.models.nmid import HardenedModel

NAME = "torchscript"
FORMAT = "codeaudit-nmid-torchscript"
LOAD = "torch.jit.load(path)(input_ids, attention_mask)"
DEPRECATION = (
    "--export torchscript: TorchScript is deprecated by PyTorch (torch >= 2.13 warns on every "
    "torch.jit call) and may be removed; prefer --export torch.export"
)
META_FILE = "codeaudit.json"


@contextmanager
def quiet_jit() -> Iterator[None]:
    """Silence torch's TorchScript deprecation and tracer warnings for codeaudit's own calls
    (locally: the caller's warning filters are restored on exit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def build_torchscript(model: HardenedModel) -> torch.jit.ScriptModule:
    """Trace the parent model from token ids and script the defence around it (on CPU)."""
    check_exportable(model)
    device = model.device
    model.to("cpu")
    try:
        example = examples(model.base)
        with quiet_jit():  # tracer warnings: the file is checked against the wrapper
            traced = torch.jit.trace(
                Logits(model.base).eval(),
                (example.input_ids, example.attention_mask),
                check_trace=False,
            )
            scripted = torch.jit.script(HardenedExport(traced, head_of(model)).eval())
    finally:
        model.to(device)
    return scripted


def torchscript_bytes(module: torch.jit.ScriptModule, meta: dict[str, Any]) -> bytes:
    """The saved module, without its debug records (see :func:`without_debug_records`)."""
    buffer = io.BytesIO()
    with quiet_jit():
        torch.jit.save(module, buffer, _extra_files={META_FILE: json.dumps(meta, sort_keys=True)})
    return without_debug_records(buffer.getvalue())


# Records the archive writer adds itself.
_WRITER_RECORDS = frozenset({"byteorder", ".data/version", ".data/serialization_id"})


def without_debug_records(data: bytes) -> bytes:
    """The TorchScript archive ``data`` without its ``*.debug_pkl`` records.

    ``torch.jit.save`` stores, beside each code file, the source ranges it was compiled from:
    absolute paths of this machine's codeaudit, torch and transformers files and the call
    stacks of the trace. torch offers no per-call switch to leave them out (only process-wide
    flags), so the archive is rewritten record by record with torch's own archive reader and
    writer; ``torch.jit.load`` needs none of them (errors then quote no source lines). The
    result is loaded afresh and checked against the wrapper like any export.
    """
    if not all(hasattr(torch._C, n) for n in ("PyTorchFileReader", "PyTorchFileWriter")):
        return data  # a torch without them: written as torch.jit.save writes it
    reader = torch._C.PyTorchFileReader(io.BytesIO(data))
    buffer = io.BytesIO()
    writer = torch._C.PyTorchFileWriter(buffer)
    for name in reader.get_all_records():
        if name.endswith(".debug_pkl") or name in _WRITER_RECORDS:
            continue
        record = reader.get_record(name)
        writer.write_record(name, record, len(record))
    writer.write_end_of_file()
    return buffer.getvalue()


def load_torchscript(data: bytes) -> Callable[..., dict[str, torch.Tensor]]:
    """The exported bytes loaded afresh, as plain torch would."""
    with quiet_jit():
        return torch.jit.load(io.BytesIO(data), map_location="cpu")  # type: ignore[no-any-return]


def read_torchscript_metadata(path: str | Path) -> dict[str, Any]:
    extra = {META_FILE: ""}
    with quiet_jit():
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[META_FILE])  # type: ignore[no-any-return]


class TorchScriptExporter:
    """``--export torchscript``: a traced and scripted module, ``HARDENED.torchscript.pt``."""

    name = NAME
    format = FORMAT
    load_hint = LOAD
    deprecation: str | None = DEPRECATION

    def refusal(self, model: Any) -> str | None:
        return None  # every architecture traces

    def default_path(self, output: str) -> str:
        p = Path(output)
        return str(p.with_name(f"{p.stem}.{NAME}{p.suffix or '.pt'}"))

    def input_note(self, model: HardenedModel) -> str:
        return "any batch size and length"

    def to_bytes(self, model: HardenedModel, meta: dict[str, Any]) -> bytes:
        return torchscript_bytes(build_torchscript(model), meta)

    def load(self, data: bytes) -> Callable[..., dict[str, torch.Tensor]]:
        return load_torchscript(data)

    def read_metadata(self, path: str | Path) -> dict[str, Any]:
        return read_torchscript_metadata(path)
