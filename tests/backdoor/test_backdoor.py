"""codeaudit backdoor: a tiny backdoored model is detected and repaired, a clean one is not
flagged; every stage on constructed cases; bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from codeaudit.backdoor.anchor import anchor
from codeaudit.backdoor.gcg import TriggerObjective, gcg
from codeaudit.backdoor.positions import Placed, batched_logits, select_positions
from codeaudit.cli import cli
from codeaudit.config import BackdoorConfig
from codeaudit.data.loader import dataset_from_records
from codeaudit.data.samples import Sample
from codeaudit.models.base import Batch, ModelOutput
from codeaudit.models.checkpoint import load_model
from codeaudit.models.tokenizer import VocabTokenizer
from tests.backdoor.helpers import clean_records, poison, train_tiny, with_trigger
from tests.conftest import write_jsonl

FAST = ["--victim-samples", "15", "--steps", "25", "--topk", "16", "--candidates", "24"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("backdoor")
    return {
        "backdoored": train_tiny(root, "bd", poison(clean_records(400, 1), 0.12)),
        "clean": train_tiny(root, "clean", clean_records(400, 1)),
        "data": write_jsonl(root / "test.jsonl", clean_records(240, 7)),
        "root": root,
    }


def _real_asr(path: Path, records: list[dict]) -> float:
    model = load_model(path).model
    victims = [r for r in records if r["target"] == 1]
    rows = [list(model.encode_code(with_trigger(r)["func"], "c").ids) for r in victims]
    return float((batched_logits(model, rows).argmax(1) == 0).mean())


def test_backdoored_model_is_detected_and_repaired(world: dict[str, Path]) -> None:
    out = world["root"] / "repaired.pt"
    report = world["root"] / "repaired.json"
    records = clean_records(120, 9)
    assert _real_asr(world["backdoored"], records) > 0.9  # the planted backdoor works
    code, _, err = run(
        "backdoor",
        str(world["backdoored"]),
        "--data",
        str(world["data"]),
        *FAST,
        "--unlearn",
        "--unlearn-scope",
        "full",
        "--unlearn-epochs",
        "10",  # a tiny data set: few optimisation steps per epoch
        "-o",
        str(out),
        "--report",
        str(report),
        "-q",
        "--format",
        "json",
    )
    assert code == 1, err  # CA-B001 fires
    doc = json.loads(report.read_text())
    assert doc["backdoored"] is True and doc["best_pair"] == "1->0"
    pair = next(p for p in doc["pairs"] if p["victim_label"] == 1)
    assert pair["flip_rate"] >= 0.9 and pair["backdoored"]
    assert any("trig" in t for t in pair["anchored_tokens"])  # the real trigger's piece
    assert len(pair["anchored_tokens"]) <= len(pair["trigger_tokens"])
    other = next(p for p in doc["pairs"] if p["victim_label"] == 0)
    assert other["flip_rate"] < 0.5
    assert doc["vocab"]["size_after"] < doc["vocab"]["size_before"]
    assert "CA-B001" in {f["rule_id"] for f in doc["findings"]}
    u = doc["unlearning"]
    assert u["before"]["asr_inverted"] > 0.9 and u["after"]["asr_inverted"] < 0.1
    assert u["accuracy_drop"] <= 0.01
    # the repaired model no longer obeys the real trigger
    assert _real_asr(out, records) < 0.1
    repaired = load_model(out)
    parent = hashlib.sha256(world["backdoored"].read_bytes()).hexdigest()
    assert repaired.metadata["repaired"]["parent_sha256"] == parent
    assert doc["unlearning"]["parent_sha256"] == parent


def test_clean_model_is_not_flagged(world: dict[str, Path]) -> None:
    code, stdout, err = run(
        "backdoor",
        str(world["clean"]),
        "--data",
        str(world["data"]),
        *FAST,
        "-q",
        "--format",
        "json",
    )
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["backdoored"] is False and doc["findings"] == []
    assert all(p["flip_rate"] < doc["threshold"] for p in doc["pairs"])


def test_repair_is_deterministic_and_never_overwrites(world: dict[str, Path]) -> None:
    paths = [world["root"] / f"det{i}.pt" for i in range(2)]
    for path in paths:
        code, _, err = run(
            "backdoor",
            str(world["backdoored"]),
            "--data",
            str(world["data"]),
            "--victim-samples",
            "10",
            "--steps",
            "5",
            "--unlearn",
            "-o",
            str(path),
            "-q",
            "--fail-on",
            "never",
            "--seed",
            "3",
        )
        assert code == 0, err
    digest = [hashlib.sha256(load_model(p).path.encode()).hexdigest() for p in paths]
    assert digest[0] != digest[1]
    states = [torch.load(p, weights_only=True)["state_dict"] for p in paths]
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    before = paths[0].read_bytes()
    code, _, err = run(
        "backdoor", str(world["backdoored"]), "--data", str(world["data"]), "--unlearn", "-o",
        str(paths[0]), "-q",
    )  # fmt: skip
    assert code == 2 and "exists" in err and err.count("\n") == 1
    assert paths[0].read_bytes() == before


# -- bad input ----------------------------------------------------------------------------------


def test_no_victim_label_samples(world: dict[str, Path], tmp_path: Path) -> None:
    only0 = write_jsonl(
        tmp_path / "only0.jsonl", [r for r in clean_records(60, 3) if not r["target"]]
    )
    out = tmp_path / "r.pt"
    code, stdout, err = run(
        "backdoor",
        str(world["backdoored"]),
        "--data",
        str(only0),
        "--unlearn",
        "-o",
        str(out),
        "-q",
    )
    assert code == 2 and err.count("\n") == 1 and "no samples with label 1" in err
    assert not out.exists() and stdout == ""


def test_too_few_samples(world: dict[str, Path], tmp_path: Path) -> None:
    few = write_jsonl(tmp_path / "few.jsonl", clean_records(20, 3))
    code, _, err = run("backdoor", str(world["backdoored"]), "--data", str(few), "-q")
    assert code == 2 and err.count("\n") == 1 and "classified correctly" in err


@pytest.mark.parametrize(
    ("correct", "needle", "hint"),
    [
        (0, "none of the 40 samples with label 1 (vulnerable) is classified correctly", False),
        (4, "only 4 of the 40 samples", False),  # fewer inversion samples cannot help
        (12, "12 of the 40 samples", True),
    ],
)
def test_too_few_victims_says_what_helps(correct: int, needle: str, hint: bool) -> None:
    from codeaudit.backdoor.scanner import TooFewVictims

    text = str(TooFewVictims(1, "vulnerable", correct, 40, 30))
    assert needle in text
    assert ("--victim-samples of codeaudit backdoor" in text) is hint


def test_every_pair_is_checked_before_any_inversion(world: dict[str, Path]) -> None:
    """Label 0 has too few samples: the scan stops before inverting the 1->0 pair."""
    from codeaudit.backdoor.scanner import BackdoorScanner, TooFewVictims

    records = clean_records(120, 5)
    kept = [r for r in records if r["target"] == 1] + [r for r in records if r["target"] == 0][:3]
    samples = list(dataset_from_records(kept, name="few0").samples)
    stages: list[str] = []
    scanner = BackdoorScanner(
        victim_samples=15, steps=5, progress=lambda stage, done, total: stages.append(stage)
    )
    with pytest.raises(TooFewVictims) as info:
        scanner.fit(load_model(world["clean"]).model, samples)
    assert info.value.label == 0 and info.value.correct <= 3
    assert not any(s.startswith(("inverting", "positions", "trigger vocabulary")) for s in stages)


def test_usage_errors(world: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = run("backdoor", str(world["clean"]), "--data", str(world["data"]), "-o", "x.pt")
    assert code == 2 and "--unlearn" in err
    code, _, err = run("backdoor", str(world["clean"]), "--data", str(world["data"]), "--unlearn")
    assert code == 2 and "-o" in err
    code, _, err = run(
        "backdoor", str(world["clean"]), "--data", str(world["data"]), "--unlearn", "-o",
        str(world["clean"]), "--force",
    )  # fmt: skip
    assert code == 2 and "replace the input model" in err


def test_hardened_model_is_refused(world: dict[str, Path], tmp_path: Path) -> None:
    hardened = tmp_path / "h.pt"
    code, _, err = run("harden", str(world["clean"]), "-o", str(hardened), "--sigma", "0.5", "-q")
    assert code in (0, 1), err
    code, _, err = run("backdoor", str(hardened), "--data", str(world["data"]), "-q")
    assert code == 2 and err.count("\n") == 1 and "hardened" in err


# -- stages on constructed cases ----------------------------------------------------------------


class _KeyModel:
    """Logits [0, 4 * (number of `key` ids)]: only the name `key` matters."""

    def __init__(self) -> None:
        self.tokenizer = VocabTokenizer(
            ["<pad>", "<unk>", "int", "f", "(", ")", "{", "}", "a", "key", "b", "=", ";", "return"]
        )
        self.max_len = 64
        self.default_lang = "c"
        self.device = torch.device("cpu")
        self.key = self.tokenizer.stoi["key"]
        self.table = torch.nn.Embedding(self.tokenizer.vocab_size, 1)
        with torch.no_grad():
            self.table.weight.zero_()
            self.table.weight[self.key] = 1.0

    def lang_of(self, sample: Sample) -> str:
        return "c"

    def input_embeddings(self) -> torch.nn.Embedding:
        return self.table

    def forward_embeds(self, embeds: torch.Tensor, mask: torch.Tensor) -> ModelOutput:
        count = (embeds[..., 0] * mask).sum(1)
        logits = torch.stack([torch.zeros_like(count), 4 * count], dim=1)
        return ModelOutput(logits, logits)

    def forward(self, batch: Batch) -> ModelOutput:
        return self.forward_embeds(self.table(batch.input_ids), batch.attention_mask)


def test_position_selection_picks_the_identifier_that_matters() -> None:
    model = _KeyModel()
    code = "int f(int a, int key) { int b = a; b = key; return b; }"
    [placed] = select_positions(model, [Sample("x", code, 1, "c")], room=5)
    assert placed.name == "key"
    enc = model.tokenizer.encode(code, "c", 64)
    first_key = enc.ids.index(model.key)
    assert placed.position == first_key  # an id index, the first occurrence
    assert placed.context[placed.position] == model.key and placed.delta > 0.5


def test_anchoring_drops_useless_tokens() -> None:
    def losses(triggers: np.ndarray) -> np.ndarray:
        return np.asarray([0.05 if 7 in t else 2.0 for t in triggers]) + 0.01 * triggers.shape[1]

    anchored = anchor([3, 7, 4, 5, 6], losses, beta=0.15)
    assert anchored.trigger == (7,)
    assert anchored.removed == (0, 2, 3, 4)


def key_objective() -> tuple[_KeyModel, TriggerObjective]:
    """The key model and the objective toward label 1 on six functions without `key`."""
    model = _KeyModel()
    samples = [
        Sample(f"s{i}", f"int f(int a) {{ int b = a; return b + {i}; }}", 0) for i in range(6)
    ]
    placed = select_positions(model, samples, room=3)
    vocab = np.arange(2, model.tokenizer.vocab_size)
    return model, TriggerObjective(model, placed, 1, vocab, cache=False)


def test_gcg_finds_the_planted_token_and_is_seeded() -> None:
    model, objective = key_objective()
    runs = [gcg(objective, length=3, steps=20, topk=8, candidates=8, seed=5) for _ in range(2)]
    assert runs[0].trigger == runs[1].trigger and runs[0].loss == runs[1].loss
    assert model.key in runs[0].trigger and runs[0].loss < 0.05


@pytest.mark.parametrize("arch", ["lstm", "bigru"])
def test_rnn_prefix_cache_equals_uncached_forward(arch: str, world: dict[str, Path]) -> None:
    from codeaudit.models.registry import adapter_class

    base = load_model(world["clean"]).model
    torch.manual_seed(0)
    model = adapter_class(arch).from_parts(
        {"embed_dim": 12, "hidden_dim": 10}, base.tokenizer, None, max_len=64,
        default_lang="c", labels=base.labels,
    )  # fmt: skip
    model.eval()
    samples = dataset_from_records(clean_records(8, 4)).samples
    placed = select_positions(model, samples, room=4)
    placed.append(Placed("edge", 0, placed[0].context, 0, None, 0.0))  # empty prefix
    vocab = np.arange(2, model.tokenizer.vocab_size)
    triggers = np.random.default_rng(0).choice(vocab, size=(7, 4))
    cached = TriggerObjective(model, placed, 0, vocab, cache=True)
    plain = TriggerObjective(model, placed, 0, vocab, cache=False)
    assert cached.cache is not None and plain.cache is None
    np.testing.assert_allclose(cached.logits(triggers), plain.logits(triggers), atol=1e-5)
    # and both equal the adapter's own forward on the inserted ids
    rows = [
        list(p.context[: p.position]) + list(triggers[2]) + list(p.context[p.position :])
        for p in placed
    ]
    np.testing.assert_allclose(
        cached.logits(triggers[2:3])[0], batched_logits(model, rows), atol=1e-5
    )


def test_library_config_defaults_follow_elibadcode() -> None:
    config = BackdoorConfig(model="m", data="d")
    assert (config.victim_samples, config.steps, config.topk, config.candidates) == (
        30,
        100,
        64,
        64,
    )
    assert (config.trigger_len, config.beta, config.unlearn_lr, config.trigger_share) == (
        5,
        0.15,
        5e-3,
        0.2,
    )
