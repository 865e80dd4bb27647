"""The checks that bound what loading an untrusted model costs (codeaudit.models.safety)."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from codeaudit.errors import CheckpointError
from codeaudit.models.rnn import RNNClassifier
from codeaudit.models.safety import (
    check_layer_counts,
    check_state,
    check_zip_records,
    describes_more_than_held,
    meta_build,
)

ROOT = Path(__file__).resolve().parents[2]


def _saved(tmp_path: Path, compress: bool) -> Path:
    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(100)}, buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    path = tmp_path / "m.pt"
    with zipfile.ZipFile(path, "w") as out:
        for info in source.infolist():
            data = source.read(info.filename)
            entry = zipfile.ZipInfo(info.filename)
            entry.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            out.writestr(entry, data)
    return path


def test_only_stored_zip_records_are_read(tmp_path: Path) -> None:
    check_zip_records(_saved(tmp_path, compress=False))
    with pytest.raises(CheckpointError, match="is compressed"):
        check_zip_records(_saved(tmp_path, compress=True))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        check_zip_records(broken)


def test_layer_counts_are_bounded_by_the_tensors() -> None:
    check_layer_counts({"num_hidden_layers": 12, "layer_norm_eps": 1e-5, "hidden": 10**9}, 200, "x")
    for bad in (201, -1):
        with pytest.raises(CheckpointError, match=f"num_hidden_layers={bad} does not fit"):
            check_layer_counts({"num_hidden_layers": bad}, 200, "x")


def test_meta_build_allocates_nothing_and_reports_bad_configs() -> None:
    module = meta_build(
        lambda: RNNClassifier(
            1000,
            cell="gru",
            bidirectional=True,
            embed_dim=10**6,  # 4 GB if it were allocated
            hidden_dim=8,
            num_layers=1,
            dropout=0.1,
            pad_id=0,
            initialise=False,
        ),
        "m",
    )
    assert module.embedding.weight.device.type == "meta"
    with pytest.raises(CheckpointError, match=r"weight 'embedding\.weight' has shape"):
        check_state(module.state_dict(), {k: torch.zeros(1) for k in module.state_dict()}, "bigru")
    with pytest.raises(CheckpointError, match="m: invalid model configuration"):
        meta_build(lambda: torch.nn.Embedding(10, -3), "m")


def test_meta_build_does_not_import_dynamo() -> None:
    """Random normal initialisation of meta tensors imports torch._dynamo (70 MB and about a
    second on every command): the RNN shape check builds without initialising."""
    probe = (
        "import sys\n"
        "from codeaudit.models.safety import meta_build\n"
        "from codeaudit.models.rnn import RNNClassifier\n"
        "meta_build(lambda: RNNClassifier(50, cell='lstm', bidirectional=False, embed_dim=4,"
        " hidden_dim=4, num_layers=2, dropout=0.0, pad_id=0, initialise=False), 'x')\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "False"


def test_meta_build_leaves_torch_initialisers_alone() -> None:
    """Replacing torch.nn.init functions during a meta build once left transformers 5 (which
    copies them when first imported) unable to initialise anything for the rest of the process:
    the build must not touch them, and a model built afterwards must be initialised."""
    from torch.nn import init

    before = {name: getattr(init, name) for name in dir(init) if name.endswith("_")}
    seen: dict[str, object] = {}

    def build() -> torch.nn.Module:
        seen.update({name: getattr(init, name) for name in before})
        return torch.nn.Linear(4, 4)

    meta_build(build, "x")
    assert seen == before
    assert {name: getattr(init, name) for name in before} == before
    torch.manual_seed(0)
    assert torch.nn.Linear(64, 64).weight.abs().sum() > 0


def test_a_head_is_allowed_a_larger_model_is_not() -> None:
    assert not describes_more_than_held(125_000_000 + 600_000, 125_000_000)  # RoBERTa + head
    assert not describes_more_than_held(7_000_000_000 + 16_000_000, 7_000_000_000)
    assert describes_more_than_held(10**12, 340_000)
    assert describes_more_than_held(40_000_000, 10_000_000)
