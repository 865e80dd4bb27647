"""Bare state dicts of published fine-tuning code (CodeXGLUE, EliBadCode, transformers), their
base models, and every way a user can get them wrong: one line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from codeaudit.cli import cli
from codeaudit.data.samples import Sample
from codeaudit.errors import CheckpointError, UsageError
from codeaudit.models import infer, load_model
from codeaudit.models.foreign import LAYOUTS, detect_layout, strip_data_parallel
from codeaudit.models.options import LoadOptions
from tests.models import foreign_models as fm

pytestmark = pytest.mark.loading  # also run on the oldest transformers (scripts/test-oldest.sh)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fm.make_base(tmp_path_factory.mktemp("foreign") / "base")


def _state(module: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in module.state_dict().items()}


def _logits(model, records) -> np.ndarray:  # type: ignore[no-untyped-def]
    encodings = model.encode([Sample(str(i), r["func"]) for i, r in enumerate(records)])
    return infer(model, encodings).logits


def test_every_layout_is_recognised_from_its_keys(base: Path) -> None:
    inner = fm.classifier(base, 1)
    codexglue = _state(inner, "encoder.")
    elibadcode = _state(fm.EliBadCodeModel(inner.roberta, 32))
    plain = _state(inner)
    found = {
        detect_layout(strip_data_parallel(state), "m")[0].name
        for state in (codexglue, elibadcode, plain)
    }
    assert found == set(LAYOUTS)  # one state dict of each kind: the mapping is complete
    parallel = {"module." + k: v for k, v in codexglue.items()}
    assert detect_layout(strip_data_parallel(parallel), "m")[0].name == "codexglue"
    with pytest.raises(CheckpointError, match=r"fit no known layout; tried: CodeXGLUE"):
        detect_layout({"embedding.weight": torch.zeros(2, 2)}, "m")


@pytest.mark.parametrize("layout", ["codexglue", "hf-state-dict", "data-parallel"])
def test_a_state_dict_gives_the_classifier_it_came_from(
    base: Path, tmp_path: Path, layout: str
) -> None:
    inner = fm.classifier(base, 2, seed=4)
    prefix = {"codexglue": "encoder.", "hf-state-dict": "", "data-parallel": "module.encoder."}
    path = tmp_path / "model.bin"
    torch.save(_state(inner, prefix[layout]), path)
    loaded = load_model(path, base=str(base), max_len=64)
    assert loaded.source == ("hf-state-dict" if layout == "hf-state-dict" else "codexglue")
    assert loaded.model.n_outputs == 2 and loaded.model.max_len == 64
    assert loaded.base == str(base) and len(loaded.base_sha256 or "") == 64
    records = fm.corpus(6)
    tokenizer = fm.load_base_tokenizer(base)
    with torch.no_grad():
        direct = np.stack(
            [
                inner(
                    input_ids=torch.tensor(
                        [
                            tokenizer(fm.collapse(r["func"]), truncation=True, max_length=64)[
                                "input_ids"
                            ]
                        ]
                    )
                )
                .logits[0]
                .numpy()
                for r in records
            ]
        )
    np.testing.assert_allclose(_logits(loaded.model, records), direct, atol=1e-5)


def test_elibadcode_pooler_is_dropped_and_its_head_maps_exactly(base: Path, tmp_path: Path) -> None:
    path, _ = fm.make_elibadcode_bin(tmp_path / "model.bin", base)
    assert any(k.startswith("encoder.pooler.") for k in torch.load(path, weights_only=True))
    loaded = load_model(path, base=str(base))
    assert loaded.source == "elibadcode" and loaded.model.n_outputs == 1
    assert loaded.model.tokenizer.input_format == "tokens" and loaded.model.max_len == 128
    logits = _logits(loaded.model, fm.corpus(4))
    assert np.all(logits[:, 0] == 0)  # one logit, read as [0, z]


def _bin(tmp_path: Path, module: torch.nn.Module, prefix: str = "encoder.") -> Path:
    path = tmp_path / "model.bin"
    torch.save(_state(module, prefix), path)
    return path


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _data(tmp_path: Path) -> str:
    return str(fm.write_data(tmp_path / "data.jsonl", fm.corpus(4)))


def test_model_bin_without_base_says_what_to_pass(base: Path, tmp_path: Path) -> None:
    path = _bin(tmp_path, fm.classifier(base, 1))
    code, out, err = _cli(
        "predict", str(path), _data(tmp_path), "-q", "-o", str(tmp_path / "r.json")
    )
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "CodeXGLUE defect detection layout" in err and "pass --base DIR" in err
    assert not (tmp_path / "r.json").exists()


def test_base_whose_sizes_do_not_fit(base: Path, tmp_path: Path) -> None:
    other = fm.make_base(tmp_path / "wider", hidden=48)
    path = _bin(tmp_path, fm.classifier(base, 1))
    code, _, err = _cli("predict", str(path), _data(tmp_path), "--base", str(other), "-q")
    assert code == 2 and err.count("\n") == 1
    assert "has shape" in err and "is --base the model it was fine-tuned from?" in err


def test_head_width_that_fits_no_layout(base: Path, tmp_path: Path) -> None:
    path = _bin(tmp_path, fm.classifier(base, 3))
    code, _, err = _cli("predict", str(path), _data(tmp_path), "--base", str(base), "-q")
    assert code == 2 and err.count("\n") == 1
    assert "classification head has 3 outputs" in err and "fits no known layout" in err


def test_tokenizer_that_does_not_fit_the_embedding(base: Path, tmp_path: Path) -> None:
    from transformers import RobertaConfig

    small = tmp_path / "small"
    small.mkdir()
    for item in base.iterdir():
        (small / item.name).write_bytes(item.read_bytes())
    config = RobertaConfig.from_pretrained(str(base))
    config.vocab_size = 50
    config.save_pretrained(small)
    path = _bin(tmp_path, fm.classifier(small, 1))
    code, _, err = _cli("predict", str(path), _data(tmp_path), "--base", str(small), "-q")
    assert code == 2 and err.count("\n") == 1
    assert "tokenizer has" in err and "embedding only 50" in err


def test_base_that_is_neither_a_directory_nor_a_cached_id(base: Path, tmp_path: Path) -> None:
    path = _bin(tmp_path, fm.classifier(base, 1))
    data = _data(tmp_path)
    code, _, err = _cli("predict", str(path), data, "--base", str(tmp_path / "no/such/dir"), "-q")
    assert code == 2 and "directory not found" in err
    code, _, err = _cli("predict", str(path), data, "--base", str(path), "-q")
    assert code == 2 and "not a directory" in err


def test_base_is_refused_where_it_has_no_meaning(trained: dict, base: Path, tmp_path: Path) -> None:
    model_path = trained["bigru"][0]
    code, _, err = _cli("predict", str(model_path), _data(tmp_path), "--base", str(base), "-q")
    assert code == 2 and "is a codeaudit checkpoint" in err


def test_recorded_input_format_cannot_be_overridden(trained: dict, tmp_path: Path) -> None:
    path = trained["transformer"][0]
    assert load_model(path).model.tokenizer.input_format == "tokens"
    with pytest.raises(UsageError, match=r"records that its model reads 'tokens' text"):
        load_model(path, input_format="raw")
    assert load_model(path, input_format="tokens").model.tokenizer.input_format == "tokens"


def test_rnn_models_read_code_tokens_only(trained: dict, base: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"records that its model reads 'tokens' text"):
        load_model(trained["lstm"][0], input_format="raw")


def test_max_len_is_honoured_and_bounded_by_the_positions(trained: dict) -> None:
    path = trained["transformer"][0]
    assert load_model(path, max_len=20).model.max_len == 20
    limit = load_model(path).model.max_positions
    with pytest.raises(UsageError, match=rf"reads at most {limit} ids"):
        load_model(path, max_len=limit + 1)
    assert load_model(trained["bigru"][0], max_len=1000).model.max_len == 1000


def test_load_options_check_their_values() -> None:
    with pytest.raises(UsageError, match=r"input format 'bytes': use one of raw, tokens"):
        LoadOptions(input_format="bytes")
    with pytest.raises(UsageError, match="max len 0: must be >= 1"):
        LoadOptions(max_len=0)
    assert LoadOptions(base="microsoft/codebert-base").base == "microsoft/codebert-base"


def test_a_raw_checkpoint_is_written_as_format_2_and_reloads_raw(
    base: Path, tmp_path: Path
) -> None:
    from codeaudit.models import save_checkpoint

    path = _bin(tmp_path, fm.classifier(base, 1))
    loaded = load_model(path, base=str(base), max_len=64)
    saved = save_checkpoint(loaded.model, tmp_path / "model.pt")
    payload = torch.load(saved, weights_only=True)
    assert payload["format_version"] == 2
    assert payload["tokenizer"]["input_format"] == "raw"
    again = load_model(saved)
    assert again.model.tokenizer.input_format == "raw" and again.model.n_outputs == 1
    records = fm.corpus(5)
    np.testing.assert_array_equal(_logits(again.model, records), _logits(loaded.model, records))
    assert len(json.loads(payload["model_config"]["hf_config"])["id2label"]) == 1


def test_one_logit_losses_are_the_sigmoid_model_losses(base: Path, tmp_path: Path) -> None:
    """GCG and unlearning use cross-entropy on the adapter's logits; for a one-logit model that
    is exactly the binary cross-entropy of its logit, gradients included."""
    import torch.nn.functional as F

    path = _bin(tmp_path, fm.classifier(base, 1))
    model = load_model(path, base=str(base), max_len=64).model
    batch = model.collate(
        model.encode([Sample(str(i), r["func"]) for i, r in enumerate(fm.corpus(6))])
    )
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    model.train(False)
    logits = model.forward(batch).logits
    z = model.module(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, 0]
    ce = F.cross_entropy(logits, labels)
    bce = F.binary_cross_entropy_with_logits(z, labels.double().float())
    torch.testing.assert_close(ce, bce)
    head = model.head_parameters()[-1]
    grad_ce = torch.autograd.grad(ce, head)[0]
    grad_bce = torch.autograd.grad(bce, head)[0]
    torch.testing.assert_close(grad_ce, grad_bce)


def test_directory_saved_without_its_tokenizer_takes_the_base_one(
    base: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "finetuned"
    fm.classifier(base, 2).save_pretrained(directory)
    assert not (directory / "tokenizer.json").exists()
    with pytest.raises(CheckpointError, match="no tokenizer files"):
        load_model(directory)
    loaded = load_model(directory, base=str(base))
    assert loaded.source == "huggingface" and loaded.base == str(base)
    assert loaded.model.tokenizer.vocab_size == fm.load_base_tokenizer(base).vocab_size
    with_own = fm.make_hf_dir(
        tmp_path / "own", safetensors=True, num_labels=2, vocab_files_only=False
    )
    with pytest.raises(UsageError, match="its own tokenizer"):
        load_model(with_own, base=str(base))
