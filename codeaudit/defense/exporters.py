"""The export formats of ``codeaudit harden --export``: one exporter object per format name.

An exporter turns a hardened model into the bytes of a file that runs with plain ``torch``
(``to_bytes``, given the ``codeaudit.json`` metadata), loads such bytes afresh for the check
against the wrapper (``load``), reads the metadata back from a file (``read_metadata``), and
says where it writes by default, how its file is loaded, whether torch deprecates it and which
models it cannot export (``refusal``, asked before any work).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

from codeaudit.defense.export_pt2 import TorchExportExporter
from codeaudit.defense.export_torchscript import TorchScriptExporter
from codeaudit.errors import HardenError


class Exporter(Protocol):
    name: str  # the --export choice
    format: str  # codeaudit.json "format"
    load_hint: str  # how plain torch runs the file
    deprecation: str | None  # said in harden's warnings when the format is chosen

    def refusal(self, model: Any) -> str | None: ...

    def default_path(self, output: str) -> str: ...

    def input_note(self, model: Any) -> str: ...

    def to_bytes(self, model: Any, meta: dict[str, Any]) -> bytes: ...

    def load(self, data: bytes) -> Callable[..., dict[str, torch.Tensor]]: ...

    def read_metadata(self, path: str | Path) -> dict[str, Any]: ...


EXPORTERS: dict[str, Exporter] = {e.name: e for e in (TorchExportExporter(), TorchScriptExporter())}


def exporter(name: str) -> Exporter:
    try:
        return EXPORTERS[name]
    except KeyError:
        raise HardenError(f"unknown export format {name!r} (use {', '.join(EXPORTERS)})") from None


def exporter_of_file(path: str | Path) -> Exporter:
    """The exporter whose file ``path`` is: a torch.export archive records its format in
    ``archive_format``; any other torch archive is read as TorchScript."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise HardenError(f"{path}: not an exported model ({exc})") from None
    if any(n == "archive_format" or n.endswith("/archive_format") for n in names):
        return EXPORTERS[TorchExportExporter.name]
    return EXPORTERS[TorchScriptExporter.name]
