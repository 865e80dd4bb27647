"""``harden --export torch.export``: the .pt2 ExportedProgram, loaded with plain torch in a fresh
Python that cannot import codeaudit, gives the wrapper's released outputs for every architecture
the project trains, at batch sizes and lengths other than the export example; a file that does
not match is never written; and the export registry, paths and metadata of both formats."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import codeaudit
from codeaudit.cli import cli
from codeaudit.config import HardenConfig
from codeaudit.data.loader import load_dataset
from codeaudit.defense import load_hardened
from codeaudit.defense.export import (
    EXPORT_FORMATS,
    compare_with_wrapper,
    default_export_path,
    export_metadata,
    load_export_metadata,
)
from codeaudit.defense.export_torchscript import DEPRECATION
from codeaudit.defense.exporters import EXPORTERS
from codeaudit.models import noise
from codeaudit.models.base import Batch
from codeaudit.models.nmid import NMID
from codeaudit.params import ParameterError, params

KEY_HEX = "00112233445566778899aabbccddeeff"
CASES = (("lstm", "probs"), ("bigru", "top1"), ("transformer", "top1"))

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
    program = torch.export.load(job["path"], extra_files=extra)
    model = program.module()
    results[name] = {
        "outputs": [model(ids, mask) for ids, mask in job["batches"]],
        "meta": extra["codeaudit.json"],
    }
    try:
        too_long = torch.ones(1, job["max_len"] + 1, dtype=torch.long)
        model(too_long, too_long)
        results[name]["too_long"] = "accepted"
    except Exception as exc:
        results[name]["too_long"] = type(exc).__name__
assert not any(m == "codeaudit" or m.startswith("codeaudit.") for m in sys.modules)
torch.save(results, sys.argv[2])
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def harden(model: Path, out: Path, expose: str, *formats: str) -> dict:
    key = out.parent / "nmid.key"
    key.write_text(KEY_HEX)
    exports = [a for f in formats for a in ("--export", f)]
    code, stdout, err = run(
        "harden", str(model), "-o", str(out), "--sigma", "2", "--expose", expose,
        "--key-file", str(key), *exports, "--format", "json", "-q",
    )  # fmt: skip
    assert code == 1, err  # unverified (no members), everything written
    return json.loads(stdout)


def no_machine_paths(data: bytes) -> None:
    """No absolute path of this machine's codeaudit or torch in any record."""
    roots = {str(Path(codeaudit.__file__).parent.parent), str(Path(torch.__file__).parent)}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            assert not name.endswith(".debug_pkl"), name
            record = archive.read(name)
            for root in roots:
                assert root.encode() not in record, (name, root)


@pytest.mark.parametrize(("arch", "expose"), CASES)
def test_harden_exports_a_pt2_that_plain_torch_runs_like_the_wrapper(
    trained: dict, planted_files: dict[str, Path], tmp_path: Path, arch: str, expose: str
) -> None:
    samples = list(load_dataset(str(planted_files["test"])).samples)
    jobs, expected = {}, {}
    out = tmp_path / arch / "hardened.pt"
    out.parent.mkdir()
    report = harden(trained[arch][0], out, expose, "torch.export")
    path = out.with_suffix(".pt2")  # the default: HARDENED.pt2 beside -o
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "hardened.pt",
        "hardened.pt2",
        "nmid.key",
    ]
    assert report["export-torch.export"]["path"] == str(path)
    (info,) = report["exports"]
    assert info["format"] == "torch.export" and info["max_abs_diff"] == 0.0
    assert not any("TorchScript" in w for w in report["warnings"])
    data = path.read_bytes()
    no_machine_paths(data)
    meta = load_export_metadata(path)
    assert meta["format"] == "codeaudit-nmid-torch.export" and meta["arch"] == arch
    assert meta["load"] == "torch.export.load(path).module()(input_ids, attention_mask)"
    assert meta["defense"]["expose"] == expose and KEY_HEX not in json.dumps(meta)
    # the key is a buffer of the program (as in the TorchScript file), not in the metadata
    program = torch.export.load(io.BytesIO(data))
    assert torch.equal(program.state_dict["head.key"], noise.key_words(KEY_HEX))

    wrapper = load_hardened(str(out))
    encodings = wrapper.encode(samples)
    max_len = wrapper.max_len
    batches = []
    for rows, pad in (
        (list(range(len(samples))), 0),
        ([5, 1], 3),
        ([7], 0),
        ([7], 2),
        (list(range(20, 9, -1)), 5),
    ):
        batch = wrapper.collate([encodings[i] for i in rows])
        pad = min(pad, max_len - batch.input_ids.shape[1])
        fill = torch.full((len(rows), pad), wrapper.tokenizer.pad_id, dtype=torch.long)
        ids = torch.cat([batch.input_ids, fill], dim=1)
        mask = torch.cat([batch.attention_mask, torch.zeros_like(fill)], dim=1)
        batches.append((ids, mask))
        with torch.inference_mode():
            ours = noise.release(wrapper.margin(Batch(ids, mask, batch.lengths)), expose)
            clean = torch.softmax(wrapper.base.forward(batch).logits.double(), dim=1)
        # the noise is there: matching the wrapper means noising
        if expose == "probs":
            assert (ours["probs"].double() - clean).abs().max() > 1e-3
        else:
            assert (ours["confidence"].double() - clean.max(dim=1).values).abs().max() > 1e-3
        expected.setdefault(arch, []).append(ours)
    jobs[arch] = {"path": str(path), "batches": batches, "max_len": max_len}
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
    assert json.loads(results[arch]["meta"])["arch"] == arch
    assert results[arch]["too_long"] != "accepted"  # the program checks its input length
    for ours, theirs in zip(expected[arch], results[arch]["outputs"], strict=True):
        assert sorted(ours) == sorted(theirs)
        for key in ours:
            assert torch.equal(ours[key], theirs[key]), (arch, key)


def test_both_formats_at_once(trained: dict, tmp_path: Path) -> None:
    out = tmp_path / "h.pt"
    report = harden(trained["bigru"][0], out, "probs", "torchscript", "torch.export")
    assert [e["format"] for e in report["exports"]] == ["torchscript", "torch.export"]
    assert all(e["max_abs_diff"] == 0.0 for e in report["exports"])
    assert DEPRECATION in report["warnings"]  # TorchScript stays, its deprecation said
    pt2, ts = tmp_path / "h.pt2", tmp_path / "h.torchscript.pt"
    metas = {p.name: load_export_metadata(p) for p in (pt2, ts)}
    assert metas["h.pt2"]["format"] == "codeaudit-nmid-torch.export"
    assert metas["h.torchscript.pt"]["format"] == "codeaudit-nmid-torchscript"
    assert "deprecated" in metas["h.torchscript.pt"] and "deprecated" not in metas["h.pt2"]
    no_machine_paths(ts.read_bytes())  # TorchScript without its .debug_pkl records
    ids = torch.tensor([[3, 4, 5, 6, 7], [8, 9, 10, 0, 0]])
    mask = (ids != 0).long()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = torch.jit.load(str(ts))(ids, mask)
    b = torch.export.load(str(pt2)).module()(ids, mask)
    assert sorted(a) == sorted(b) == ["label", "probs"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_mismatching_export_is_refused_and_nothing_written(
    trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = EXPORTERS["torch.export"]
    real = exporter.load

    def off_by_a_little(data: bytes):  # type: ignore[no-untyped-def]
        module = real(data)

        def answer(ids: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
            out = dict(module(ids, mask))
            out["probs"] = out["probs"] + 1e-4
            return out

        return answer

    monkeypatch.setattr(exporter, "load", off_by_a_little)
    out = tmp_path / "h.pt"
    code, _, err = run("harden", str(trained["lstm"][0]), "-o", str(out), "--sigma", "1",
                       "--expose", "probs", "--export", "torch.export", "-q")  # fmt: skip
    # -q: no progress lines (a loaded machine passes the 15 s after which they start)
    assert code == 2 and "differs from the wrapper by 1.00e-04" in err
    assert len(err.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_an_unexportable_model_is_refused_before_any_work(
    trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = EXPORTERS["torch.export"]
    monkeypatch.setattr(exporter, "refusal", lambda model: "this torch cannot")

    def never(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("exported after a refusal")

    monkeypatch.setattr(exporter, "to_bytes", never)
    out = tmp_path / "h.pt"
    code, _, err = run("harden", str(trained["lstm"][0]), "-o", str(out), "--sigma", "1",
                       "--export", "torch.export")  # fmt: skip
    assert code == 2 and err.strip().endswith("--export torch.export: this torch cannot")
    assert list(tmp_path.iterdir()) == []


def test_every_export_choice_has_an_exporter() -> None:
    choices = {
        c for item, spec in params(HardenConfig) if item.name == "export" for c in spec.choices
    }
    assert choices == set(EXPORTERS) == set(EXPORT_FORMATS) == {"torch.export", "torchscript"}
    for name, exporter in EXPORTERS.items():
        assert exporter.name == name and exporter.format.endswith(name)
        for method in ("refusal", "default_path", "input_note", "to_bytes", "load"):
            assert callable(getattr(exporter, method))
    assert default_export_path("out/h.pt", "torch.export") == str(Path("out/h.pt2"))
    assert default_export_path("out/h.pt", "torchscript") == str(Path("out/h.torchscript.pt"))
    assert EXPORTERS["torchscript"].deprecation and not EXPORTERS["torch.export"].deprecation


def test_one_export_output_for_two_formats_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="names one file but 2 formats"):
        HardenConfig(
            model="m.pt", output="h.pt", sigma=1.0, export=("torch.export", "torchscript"),
            export_output="x.pt2",
        )  # fmt: skip
    code, _, err = run("harden", str(tmp_path / "m.pt"), "-o", str(tmp_path / "h.pt"),
                       "--sigma", "1", "--export", "torch.export", "--export", "torchscript",
                       "--export-output", str(tmp_path / "x"))  # fmt: skip
    assert code == 2 and "--export-output names one file but 2 formats" in err
    assert list(tmp_path.iterdir()) == []
    HardenConfig(model="m.pt", output="h.pt", sigma=1.0, export=("torch.export",),
                 export_output="x.pt2")  # fmt: skip


def test_exporting_says_nothing_and_leaves_warning_filters_alone(trained: dict) -> None:
    _, base, _ = trained["lstm"]
    hardened = NMID(1.0, "top1", key=KEY_HEX).fit().transform(base)
    encodings = [base.encode_code("int f(int a) { return a; }")]
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, exporter in EXPORTERS.items():
            data = exporter.to_bytes(hardened, export_metadata(hardened, "e" * 64, name))
            compare_with_wrapper(data, hardened, encodings, load=exporter.load)
    assert [str(w.message) for w in caught] == []
    assert warnings.filters == filters
