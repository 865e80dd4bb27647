"""The harden result in the document formats (Markdown, HTML, SARIF): verdict, tables, plot."""

from __future__ import annotations

import dataclasses
import json

from codeaudit.defense.result import ComparisonRow, CurvePoint
from codeaudit.report import render, render_file
from tests.defense.rule_cases import clean_harden_result


def _result():  # type: ignore[no-untyped-def]
    result = clean_harden_result()
    row = ComparisonRow(
        group="feature set",
        name="loss+confidence",
        before_auc=0.93,
        before_tpr_at_1=0.41,
        after_auc=0.57,
        after_tpr_at_1=0.02,
        after_attack="trained-logreg",
    )
    sweep = tuple(
        CurvePoint(s, 0.9 - 0.05 * i, "threshold-loss", 0.1, None, None, 0.8, 0.7 - 0.01 * i)
        for i, s in enumerate((0.0, 1.0, 2.0, 4.0))
    )
    verification = dataclasses.replace(result.verification, rows=(row,))
    return dataclasses.replace(result, verification=verification, sweep=sweep)


def test_markdown_and_html_carry_the_verdict_tables_and_plot(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = _result()
    markdown = render(result, "markdown")
    assert "Hardening: the defence holds" in markdown
    assert "loss+confidence" in markdown and "0.930" in markdown and "0.570" in markdown
    assert "Privacy-utility curve" in markdown
    files = dict(render_file(result, "markdown", str(tmp_path / "r.md")))
    pngs = [data for path, data in files.items() if path.endswith(".png")]
    assert pngs and pngs[0][:8] == b"\x89PNG\r\n\x1a\n"
    html = render(result, "html")
    assert "data:image/png;base64," in html and "loss+confidence" in html
    assert "<script" not in html.lower()


def test_sarif_of_a_partial_defence_names_the_rule() -> None:
    result = _result()
    from codeaudit.report.model import Finding, Severity

    finding = Finding("CA-H001", "t", Severity.HIGH, "residual leakage", "models/h.pt")
    sarif = json.loads(render(dataclasses.replace(result, findings=(finding,)), "sarif"))
    (run,) = sarif["runs"]
    assert [r["ruleId"] for r in run["results"]] == ["CA-H001"]
    assert run["results"][0]["level"] == "error"


def test_each_target_says_its_value_why_and_whether_it_was_met() -> None:
    from codeaudit.report.rich import render_rich

    base = clean_harden_result()
    raised = dataclasses.replace(
        base.verification,
        labels_only_auc=0.58,
        rewrite_labels_only_auc=0.603,
        target=0.6,
        rewrite_target=0.623,
        rewrite_averaging_auc=0.587,
        label_only_auc=0.68,
        target_auc=0.6,
        floor_margin=0.02,
    )
    lines = raised.target_lines()
    assert lines[0] == (
        "Target for score attacks: AUC at most 0.600 (--target-auc 0.6); reached 0.550: met."
    )
    assert lines[1] == (
        "Target for answers averaged over rewrites: AUC at most 0.623 (raised from --target-auc "
        "0.6 because the labels of rewritten functions reach 0.603 (+ margin 0.02)); reached "
        "0.587: met."
    )
    assert lines[2].startswith("Label-only attacks reach 0.680, above the target")
    text = render_rich(dataclasses.replace(base, verification=raised), width=2000)
    summary = next(line for line in text.splitlines() if line.startswith("Hardening: the"))
    assert all(line in summary for line in lines)  # why it holds, on the first screen
    missed = dataclasses.replace(raised, rewrite_averaging_auc=0.65, target_met=False)
    assert missed.target_lines()[1].endswith("reached 0.650: NOT met.")
    plain = dataclasses.replace(base.verification, label_only_auc=0.55)
    assert len(plain.target_lines()) == 2 and "raised" not in " ".join(plain.target_lines())


def test_the_plot_draws_both_targets_when_they_differ() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from codeaudit.defense.plot import _levels

    result = clean_harden_result()
    for rewrite_target, expected in ((0.623, 2), (0.6, 1)):
        verification = dataclasses.replace(result.verification, rewrite_target=rewrite_target)
        fig, ax = plt.subplots()
        _levels(ax, verification, result.defense)
        labels = [line.get_label() for line in ax.get_lines()]
        plt.close(fig)
        assert sum(label.startswith("target ") for label in labels) == expected, labels


def test_an_unreached_calibration_is_told_apart_from_the_verdict() -> None:
    from codeaudit.defense.verify import verdict

    result = clean_harden_result()
    unreached = dataclasses.replace(result.calibration, reached=False)
    status, text = verdict(result.defense, result.verification, unreached)
    assert status == "holds" and text.count("holds") == 1
    assert "no sigma tried met the targets with the 0.01 AUC safety margin" in text
    assert text.endswith("on the verification split it meets them all the same.")
    missed = dataclasses.replace(result.verification, target_met=False)
    status, text = verdict(result.defense, missed, unreached)
    assert status == "partial" and text.endswith(
        "does not meet them on the verification split either."
    )
    _, text = verdict(result.defense, result.verification, result.calibration)
    assert "calibration split" not in text
