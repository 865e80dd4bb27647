"""The TorchScript export: loaded in a fresh Python that cannot import codeaudit, it gives the
same answers as the codeaudit wrapper, for every architecture and any batch shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from codeaudit.data.loader import load_dataset
from codeaudit.defense.export import (
    build_torchscript,
    compare_with_wrapper,
    export_metadata,
    load_export_metadata,
    torchscript_bytes,
)
from codeaudit.errors import HardenError
from codeaudit.models import noise
from codeaudit.models.base import Batch
from codeaudit.models.nmid import NMID

KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

FRESH = r"""
import sys, importlib.abc

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "codeaudit" or name.startswith("codeaudit."):
            raise ImportError("codeaudit is not available here")
        return None

sys.meta_path.insert(0, Block())
import torch
torch.set_num_threads(1)
jobs = torch.load(sys.argv[1])
results = {}
for name, job in jobs.items():
    extra = {"codeaudit.json": ""}
    model = torch.jit.load(job["path"], _extra_files=extra)
    results[name] = {
        "outputs": [model(ids, mask) for ids, mask in job["batches"]],
        "meta": extra["codeaudit.json"],
    }
assert not any(m == "codeaudit" or m.startswith("codeaudit.") for m in sys.modules)
torch.save(results, sys.argv[2])
"""


def test_export_matches_the_wrapper_in_a_process_without_codeaudit(
    trained: dict, planted_files: dict[str, Path], tmp_path: Path
) -> None:
    samples = list(load_dataset(str(planted_files["test"])).samples)
    jobs, expected = {}, {}
    for arch, expose in (("lstm", "probs"), ("bigru", "top1"), ("transformer", "top1")):
        _, base, _ = trained[arch]
        hardened = NMID(2.0, expose, key=KEY).fit().transform(base, parent_sha256="c" * 64)
        module = build_torchscript(hardened)
        data = torchscript_bytes(module, export_metadata(hardened, "c" * 64))
        n, worst = compare_with_wrapper(data, hardened, base.encode(samples))
        assert n == len(samples) and worst == 0.0
        path = tmp_path / f"{arch}.torchscript.pt"
        path.write_bytes(data)
        encodings = base.encode(samples)
        # batches of other sizes, orders and paddings than anything traced
        batches = []
        for rows in (list(range(len(samples))), [5, 1], [7], list(range(20, 9, -1))):
            batch = hardened.collate([encodings[i] for i in rows])
            pad = torch.full((len(rows), 3), base.tokenizer.pad_id, dtype=torch.long)
            ids = torch.cat([batch.input_ids, pad], dim=1)
            mask = torch.cat([batch.attention_mask, torch.zeros_like(pad)], dim=1)
            batches.append((ids, mask))
            padded = Batch(ids, mask, batch.lengths)
            with torch.inference_mode():
                ours = noise.release(hardened.margin(padded), expose)
                unpadded = noise.release(hardened.margin(batch), expose)
            for key in ours:  # extra padding changes nothing beyond float rounding
                assert torch.allclose(ours[key].double(), unpadded[key].double(), atol=1e-5)
            expected.setdefault(arch, []).append(ours)
        jobs[arch] = {"path": str(path), "batches": batches}
        meta = load_export_metadata(path)
        assert meta["defense"]["expose"] == expose and meta["tokenizer"]["kind"]
        assert KEY not in json.dumps(meta)  # the key lives in the module, not the metadata
    torch.save(jobs, tmp_path / "jobs.pt")
    script = tmp_path / "fresh.py"
    script.write_text(FRESH)
    done = subprocess.run(
        [sys.executable, "-I", str(script), str(tmp_path / "jobs.pt"), str(tmp_path / "out.pt")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    results = torch.load(tmp_path / "out.pt")
    for arch, ours_list in expected.items():
        assert json.loads(results[arch]["meta"])["arch"] == arch
        for ours, theirs in zip(ours_list, results[arch]["outputs"], strict=True):
            assert sorted(ours) == sorted(theirs)
            for key in ours:
                assert torch.equal(ours[key], theirs[key]), (arch, key)


def test_export_refuses_unkeyed_noise(trained: dict) -> None:
    _, base, _ = trained["bigru"]
    with pytest.raises(HardenError, match="keyed"):
        build_torchscript(NMID(1.0, keyed=False).fit().transform(base))


def test_exported_forward_offers_nothing_but_the_release(trained: dict) -> None:
    _, base, _ = trained["bigru"]
    module = build_torchscript(NMID(1.0, "label", key=KEY).fit().transform(base))
    ids = torch.tensor([[3, 4, 5, 6]])
    out = module(ids, torch.ones_like(ids))
    assert sorted(out) == ["label"]
    assert np.isin(out["label"].numpy(), [0, 1]).all()


def test_export_of_a_one_logit_model_matches_the_wrapper(tmp_path: Path) -> None:
    """A CodeXGLUE model.bin (one logit) hardened and exported: the file noises the one logit
    exactly as the wrapper does, and says so in its metadata."""
    from codeaudit.models.checkpoint import load_model
    from tests.models import foreign_models as fm

    base = fm.make_base(tmp_path / "base")
    path = tmp_path / "model.bin"
    torch.save({"encoder." + k: v for k, v in fm.classifier(base, 1).state_dict().items()}, path)
    model = load_model(path, base=str(base), max_len=64).model
    hardened = NMID(3.0, "probs", key=KEY).fit(model).transform(model, parent_sha256="d" * 64)
    assert hardened.defense.outputs_ == 1
    data = torchscript_bytes(build_torchscript(hardened), export_metadata(hardened, "d" * 64))
    samples = [r["func"] for r in fm.corpus(12)]
    from codeaudit.data.samples import Sample

    encodings = model.encode([Sample(str(i), c) for i, c in enumerate(samples)])
    n, worst = compare_with_wrapper(data, hardened, encodings)
    assert n == 12 and worst == 0.0
    exported = tmp_path / "m.torchscript.pt"
    exported.write_bytes(data)
    meta = load_export_metadata(exported)
    assert meta["defense"]["outputs"] == 1 and meta["tokenizer"]["input_format"] == "raw"
