from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from codeaudit.data.samples import Sample
from codeaudit.errors import CheckpointError, OutputError
from codeaudit.lang import lex
from codeaudit.models import infer, load_model, save_checkpoint
from codeaudit.models.checkpoint import checkpoint_payload
from codeaudit.models.tokenizer import HFTokenizer, joined_text

CODES = [
    "int f(char *s) { char b[8]; strcpy(b, s); return 0; }",
    "int g(int n) { if (n < 0) return -1; return n * 2; }",
]


def logits_of(model, codes=CODES) -> np.ndarray:  # type: ignore[no-untyped-def]
    encodings = model.encode([Sample(str(i), c) for i, c in enumerate(codes)])
    return infer(model, encodings).logits


@pytest.mark.parametrize("arch", ["lstm", "bigru", "transformer"])
def test_round_trip_gives_identical_outputs(trained: dict, tmp_path: Path, arch: str) -> None:
    path, model, _ = trained[arch]
    loaded = load_model(path, device="cpu")
    assert loaded.source == "codeaudit" and not loaded.trusted_pickle
    assert loaded.model.arch == arch
    assert loaded.model.tokenizer.vocabulary() == model.tokenizer.vocabulary()
    np.testing.assert_array_equal(logits_of(loaded.model), logits_of(model))
    assert loaded.metadata["seed"] == 0 and loaded.metadata["n_train"] == 80
    assert len(loaded.sha256) == 64
    # the file is readable by plain torch with weights_only=True
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "codeaudit-checkpoint" and raw["arch"] == arch


def test_saving_never_overwrites_without_force(trained: dict, tmp_path: Path) -> None:
    _, model, _ = trained["bigru"]
    target = tmp_path / "m.pt"
    target.write_bytes(b"user data")
    with pytest.raises(OutputError):
        save_checkpoint(model, target)
    assert target.read_bytes() == b"user data"
    save_checkpoint(model, target, force=True)
    assert load_model(target).model.arch == "bigru"


class _Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_pickle_payload_is_refused_and_never_runs(trained: dict, tmp_path: Path) -> None:
    _, model, _ = trained["lstm"]
    marker = tmp_path / "payload-ran"
    payload = checkpoint_payload(model)
    payload["metadata"]["note"] = _Payload(marker)
    evil = tmp_path / "evil.pt"
    torch.save(payload, evil)
    with pytest.raises(CheckpointError, match=r"refused.*could run code.*--trust-checkpoint"):
        load_model(evil)
    assert not marker.exists()
    # The user can explicitly trust it: then (and only then) it is unpickled.
    loaded = load_model(evil, trust=True)
    assert marker.exists() and loaded.trusted_pickle


def test_needs_trust_for_numpy_objects(trained: dict, tmp_path: Path) -> None:
    _, model, _ = trained["lstm"]
    payload = checkpoint_payload(model, {"accuracy": np.float64(0.9)})
    path = tmp_path / "np.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="numpy"):
        load_model(path)
    assert load_model(path, trust=True).model.arch == "lstm"


def _broken(tmp_path: Path, trained: dict) -> dict[str, Path]:
    path = trained["bigru"][0]
    data = path.read_bytes()
    files = {
        "truncated": data[: len(data) // 2],
        "corrupted": data[:200] + bytes(len(data) - 400) + data[-200:],
        "text": b'{"not": "a checkpoint"}',
        "empty": b"",
    }
    out = {}
    for name, content in files.items():
        (tmp_path / f"{name}.pt").write_bytes(content)
        out[name] = tmp_path / f"{name}.pt"
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(2)}, buffer)
    (tmp_path / "bare.pt").write_bytes(buffer.getvalue())
    out["bare"] = tmp_path / "bare.pt"
    buffer = io.BytesIO()
    torch.save([1, 2, 3], buffer)
    (tmp_path / "list.pt").write_bytes(buffer.getvalue())
    out["list"] = tmp_path / "list.pt"
    return out


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("truncated", "truncated or corrupted"),
        ("corrupted", "corrupted"),
        ("text", "not a PyTorch checkpoint"),
        ("empty", "empty file"),
        ("bare", "bare state dict"),
        ("list", "not a codeaudit checkpoint"),
    ],
)
def test_broken_checkpoints_fail_with_one_line(
    trained: dict, tmp_path: Path, name: str, message: str
) -> None:
    path = _broken(tmp_path, trained)[name]
    with pytest.raises(CheckpointError, match=message) as info:
        load_model(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_mismatched_tokenizer_and_weights(trained: dict, tmp_path: Path) -> None:
    _, model, _ = trained["bigru"]
    payload = checkpoint_payload(model)
    payload["tokenizer"]["itos"] = payload["tokenizer"]["itos"][:-3]
    path = tmp_path / "mismatch.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="tokenizer and model do not match"):
        load_model(path)


def test_newer_format_version_is_refused(trained: dict, tmp_path: Path) -> None:
    payload = checkpoint_payload(trained["lstm"][1])
    payload["format_version"] = 99
    path = tmp_path / "future.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="newer"):
        load_model(path)


def test_checkpoint_pickles_only_tensors_and_plain_containers(trained: dict) -> None:
    import pickletools

    for arch in ("bigru", "transformer"):
        with zipfile.ZipFile(trained[arch][0]) as archive:
            pickled = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            blob = archive.read(pickled)
        globals_used = {str(arg) for op, arg, _ in pickletools.genops(blob) if op.name == "GLOBAL"}
        assert globals_used, "expected tensor rebuild globals"
        allowed = ("torch ", "torch._utils ", "collections OrderedDict")
        assert all(g.startswith(allowed) for g in globals_used), globals_used


def _hf_directory(root: Path, *, slow_tokenizer_files: bool = False) -> Path:
    from transformers import RobertaConfig, RobertaForSequenceClassification

    streams = [lex(c, "c").tokens for c in CODES * 20]
    tokenizer = HFTokenizer.train_bpe((joined_text(s)[0] for s in streams), vocab_size=300)
    config = RobertaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_id,
        num_labels=2,
    )
    torch.manual_seed(0)
    RobertaForSequenceClassification(config).save_pretrained(root)
    if slow_tokenizer_files:  # what a downloaded CodeBERT holds: vocab.json + merges.txt
        tokenizer.tok.backend_tokenizer.model.save(str(root))
    else:
        tokenizer.tok.save_pretrained(root)
    return root


@pytest.mark.parametrize("slow_files", [False, True])
def test_hugging_face_directory_loads_and_predicts(tmp_path: Path, slow_files: bool) -> None:
    from transformers import AutoModelForSequenceClassification

    directory = _hf_directory(tmp_path / "hf", slow_tokenizer_files=slow_files)
    loaded = load_model(directory)
    assert loaded.source == "huggingface" and loaded.model.arch == "transformer"
    assert loaded.model.max_len == 128
    logits = logits_of(loaded.model)
    # the same numbers as running the Hugging Face model directly
    reference = AutoModelForSequenceClassification.from_pretrained(directory).eval()
    enc = loaded.model.encode([Sample("0", CODES[0])])[0]
    with torch.no_grad():
        direct = reference(input_ids=torch.tensor([enc.ids])).logits.numpy()
    np.testing.assert_allclose(logits[0], direct[0], rtol=1e-5, atol=1e-5)


def test_hugging_face_directory_problems(tmp_path: Path) -> None:
    directory = _hf_directory(tmp_path / "hf")
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    for item in directory.iterdir():
        if "safetensors" not in item.name:
            (no_weights / item.name).write_bytes(item.read_bytes())
    with pytest.raises(CheckpointError, match="no model weights"):
        load_model(no_weights)
    no_tok = tmp_path / "no_tok"
    no_tok.mkdir()
    for item in directory.iterdir():
        if item.name in {"config.json", "model.safetensors"}:
            (no_tok / item.name).write_bytes(item.read_bytes())
    with pytest.raises(CheckpointError, match="tokenizer"):
        load_model(no_tok)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        load_model(empty)


def test_base_encoder_without_head_is_refused(tmp_path: Path) -> None:
    from transformers import RobertaConfig, RobertaModel

    directory = _hf_directory(tmp_path / "hf")
    config = RobertaConfig.from_pretrained(directory)
    RobertaModel(config).save_pretrained(directory)  # overwrite: an encoder, no classifier
    with pytest.raises(CheckpointError, match="classification head"):
        load_model(directory)


def test_missing_model_file() -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_model(os.path.join("no", "such", "model.pt"))
