"""``codeaudit membership --risk-scores`` end to end on a tiny memorising model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from codeaudit import api
from codeaudit.cli import cli
from codeaudit.config import MembershipConfig
from tests.conftest import planted_records, write_jsonl

TINY = ["--embed-dim", "16", "--hidden-dim", "16", "--max-len", "96"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def memorised(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny BiGRU overfit on 60 learnable functions (the strcpy/strncpy pattern), two of them
    mislabelled (a strncpy function labelled vulnerable), so that it must memorise them; the
    non-members are 60 other functions plus four copies (a comment added: not the same text) of
    each mislabelled member with its label. A k-NN on the model's representation gets those
    copies right only through the member: Feldman's long tail, what SHAPr measures."""
    root = tmp_path_factory.mktemp("risk")
    members = planted_records(60, seed=5)
    nonmembers = [{**r, "id": f"n{r['id']}"} for r in planted_records(60, seed=105)]
    odd = [r for r in members if r["target"] == 0][:2]
    for record in odd:
        record["target"] = 1
    nonmembers += [
        {**r, "id": f"copy{j}-{r['id']}", "func": r["func"] + f"\n/* copy {j} */\n"}
        for r in odd
        for j in range(4)
    ]
    files: dict[str, Any] = {
        "root": root,
        "members": write_jsonl(root / "members.jsonl", members),
        "nonmembers": write_jsonl(root / "nonmembers.jsonl", nonmembers),
        "model": root / "model.pt",
        "ids": [r["id"] for r in members],
        "memorised": [r["id"] for r in odd],
    }
    args = ["train", str(files["members"]), "-o", str(files["model"]), "--val-split", "0"]
    code, _, err = run(*args, "--epochs", "25", "--lr", "0.01", "-q", *TINY)
    assert code == 0, err
    return files


def _audit(files: dict[str, Any], out: Path, *extra: str) -> tuple[int, str, str]:
    return run(
        "membership",
        str(files["model"]),
        "--members",
        str(files["members"]),
        "--nonmembers",
        str(files["nonmembers"]),
        "--risk-scores",
        str(out),
        "--threads",
        "1",
        "-q",
        *extra,
    )


def _read(path: Path) -> tuple[dict, list[dict]]:
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return lines[0], lines[1:]


def test_one_line_per_member_with_the_stated_fields(memorised: dict[str, Any]) -> None:
    out = memorised["root"] / "risk.jsonl"
    report = memorised["root"] / "report.json"
    code, _, err = _audit(memorised, out, "--shapr-k", "1", "-o", str(report))
    assert code in (0, 1), err  # 1: findings (the model leaks)
    header, members = _read(out)
    n = len(memorised["ids"])
    assert header["n_members"] == n and header["shapr_k"] == 1
    assert set(header["methods"]) == {"attack", "lira", "shapr"}
    for method in header["methods"].values():
        assert method["method"] and method["detail"] and method["high_risk"] and "cut" in method
    assert header["methods"]["lira"]["available"] is False  # no --references
    assert "k = 1" in header["methods"]["shapr"]["detail"]
    assert [m["id"] for m in members] == memorised["ids"]
    for name in ("attack", "shapr"):
        assert sorted(m[name]["rank"] for m in members) == list(range(1, n + 1))
        for m in members:
            assert set(m[name]) == {"score", "rank", "percentile", "high"}
            assert 0 <= m[name]["percentile"] <= 100
        top = min(members, key=lambda m, key=name: m[key]["rank"])
        assert top[name]["score"] == max(m[name]["score"] for m in members)
        assert top[name]["percentile"] == 100
    assert all(m["lira"] is None for m in members)
    document = json.loads(report.read_text(encoding="utf-8"))
    summary = document["risk_scores"]
    assert summary["n_members"] == n and summary["shapr_k"] == 1
    assert [m["name"] for m in summary["methods"]] == ["attack", "lira", "shapr"]
    assert [m["high_risk"] for m in summary["methods"]] == [
        sum(m[name]["high"] for m in members) if name != "lira" else None
        for name in ("attack", "lira", "shapr")
    ]
    assert {(c["a"], c["b"]) for c in summary["correlations"]} == {("attack", "shapr")}
    assert document["risk-scores"]["path"] == str(out)  # listed among the audited files
    assert "risk_scores" in document["timings"]
    # SHAPr's values share out the k-NN accuracy on the non-members
    total = sum(m["shapr"]["score"] for m in members)
    assert total == pytest.approx(summary["shapr_utility"], abs=1e-4)


def test_shapr_is_the_knn_shapley_value_on_the_models_embedding(
    memorised: dict[str, Any],
) -> None:
    from codeaudit.data.loader import load_data
    from codeaudit.membership.features import extract_features
    from codeaudit.membership.risk import knn_shapley
    from codeaudit.models.checkpoint import load_with

    out = memorised["root"] / "risk-k3.jsonl"
    code, _, err = _audit(memorised, out, "--shapr-k", "3")
    assert code in (0, 1), err
    _, members = _read(out)
    config = MembershipConfig(
        model=str(memorised["model"]),
        members=str(memorised["members"]),
        nonmembers=str(memorised["nonmembers"]),
    )
    model = load_with(config.model, config.model_options, device="cpu").model
    f_m, f_n = (
        extract_features(model, load_data(str(path), config.data_options, require_labels=True))
        for path in (memorised["members"], memorised["nonmembers"])
    )
    expected = knn_shapley(f_m.embeddings, f_m.labels, f_n.embeddings, f_n.labels, 3)
    got = np.array([m["shapr"]["score"] for m in members])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-9)


def test_memorised_members_have_the_highest_shapr(memorised: dict[str, Any]) -> None:
    out = memorised["root"] / "risk-k1.jsonl"
    code, _, err = _audit(memorised, out, "--shapr-k", "1")
    assert code in (0, 1), err
    _, members = _read(out)
    by_id = {m["id"]: m["shapr"] for m in members}
    typical = np.median([m["shapr"]["score"] for m in members])
    for member in memorised["memorised"]:
        assert by_id[member]["percentile"] >= 90, by_id[member]
        assert by_id[member]["score"] > 2 * typical > 0
    assert sum(m["shapr"]["high"] for m in members) <= 6  # a few, not everyone


def test_refuses_to_overwrite_without_force(memorised: dict[str, Any]) -> None:
    out = memorised["root"] / "exists.jsonl"
    out.write_text("keep\n", encoding="utf-8")
    code, _, err = _audit(memorised, out)
    assert code == 2 and "pass --force" in err
    assert out.read_text(encoding="utf-8") == "keep\n"
    code, _, err = _audit(memorised, out, "--force")
    assert code in (0, 1), err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + len(memorised["ids"])  # the header, then one line per member


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_k_exits_2(memorised: dict[str, Any], value: str) -> None:
    out = memorised["root"] / "never.jsonl"
    code, _, err = _audit(memorised, out, "--shapr-k", value)
    assert code == 2 and "--shapr-k" in err
    assert not out.exists()


def test_bad_paths_exit_2(memorised: dict[str, Any]) -> None:
    root = memorised["root"]
    code, _, err = _audit(memorised, root / "no-such-dir" / "risk.jsonl")
    assert code == 2 and "does not exist" in err
    before = memorised["members"].read_bytes()
    code, _, err = _audit(memorised, memorised["members"], "--force")  # an input
    assert code == 2
    assert memorised["members"].read_bytes() == before
    code, _, err = _audit(memorised, root / "same.png", "--plot", str(root / "same.png"))
    assert code == 2
    code, _, err = _audit(memorised, root / "r.json", "-o", str(root / "r.json"))  # the report
    assert code == 2
    assert not (root / "same.png").exists() and not (root / "r.json").exists()


def test_lira_scores_with_references_through_the_api(memorised: dict[str, Any]) -> None:
    out = memorised["root"] / "risk-lira.jsonl"
    result = api.membership(
        MembershipConfig(
            model=str(memorised["model"]),
            members=str(memorised["members"]),
            nonmembers=str(memorised["nonmembers"]),
            references=2,
            risk_scores=str(out),
            threads=1,
        )
    )
    header, members = _read(out)
    assert header["methods"]["lira"]["available"] is True
    n = len(memorised["ids"])
    assert sorted(m["lira"]["rank"] for m in members) == list(range(1, n + 1))
    assert result.risk_scores is not None
    assert {(c.a, c.b) for c in result.risk_scores.correlations} == {
        ("attack", "lira"),
        ("attack", "shapr"),
        ("lira", "shapr"),
    }
    assert "risk_scores" in result.timings
