"""Slow: harden a BiGRU that memorised real Big-Vul functions (../shared/data)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from codeaudit import api
from codeaudit.config import HardenConfig, TrainConfig
from codeaudit.data.loader import load_dataset


@pytest.mark.slow
def test_harden_a_leaky_model_on_real_functions(shared_data: Path, tmp_path: Path) -> None:
    rng = random.Random(0)
    pairs: dict[str, list] = {}
    for sample in load_dataset(str(shared_data / "bigvul.jsonl")):
        pairs.setdefault(sample.pair or sample.id, []).append(sample)
    groups = sorted(pairs.values(), key=lambda g: g[0].pair or g[0].id)
    rng.shuffle(groups)
    one = [rng.choice(g) for g in groups]

    def write(name: str, samples: list) -> Path:
        path = tmp_path / name
        path.write_text(
            "".join(
                json.dumps({"id": s.id, "func": s.code, "target": s.label, "lang": s.lang}) + "\n"
                for s in samples
            )
        )
        return path

    members, nonmembers = write("m.jsonl", one[:200]), write("n.jsonl", one[200:600])
    model = tmp_path / "bigru.pt"
    api.train(
        TrainConfig(
            data=str(members), output=str(model), arch="bigru", val_split=0.0, max_len=256,
            device="cpu",
        )
    )  # fmt: skip
    hardened, result = api.harden(
        HardenConfig(
            model=str(model), output=str(tmp_path / "h.pt"), members=str(members),
            nonmembers=str(nonmembers), rewrites=4, boundary_samples=100,
            export=("torchscript",), device="cpu",
        )
    )  # fmt: skip
    v = result.verification
    assert v is not None and result.calibration is not None
    assert v.labels_changed == 0 and v.averaging_gain == 0.0
    assert v.best_auc_before > 0.85  # memorised: the unprotected model leaks
    assert v.best_score_auc_after is not None
    assert v.best_score_auc_after < v.best_auc_before - 0.1
    assert v.best_score_auc_after >= v.label_only_floor - 0.05  # nothing goes far below it
    assert result.exports[0].max_abs_diff == 0.0
    assert hardened.query(["int f(int a) { return a; }"]).label.shape == (1,)
