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
