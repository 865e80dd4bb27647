"""Markdown and HTML reports: verdict on top, findings, then each check's tables and plots."""

from __future__ import annotations

import base64
import dataclasses
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from codeaudit.gate import GateSettings, apply_gate
from codeaudit.report import EXTENSIONS, FORMATS, format_for_path, render, render_file
from codeaudit.report.document import build_document
from codeaudit.report.model import Header
from tests.report.crafted import (
    clean_membership_result,
    membership_result,
    predict_result,
    train_result,
)

ROOT = Path(__file__).resolve().parents[2]
PNG = b"\x89PNG\r\n\x1a\n"


def gated(result, fail_on: str = "high"):  # type: ignore[no-untyped-def]
    return apply_gate(result, GateSettings(fail_on=fail_on))


def _result_types() -> dict[str, type]:
    """Every result class in the package: a dataclass named *Result with header and findings."""
    import dataclasses as dc
    import importlib
    import pkgutil

    import codeaudit

    found = {}
    for module in pkgutil.walk_packages(codeaudit.__path__, "codeaudit."):
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if (
                isinstance(value, type)
                and dc.is_dataclass(value)
                and name.endswith("Result")
                and {"header", "findings"} <= {f.name for f in dc.fields(value)}
            ):
                found[name] = value
    return found


def test_every_result_type_describes_itself() -> None:
    """Every result builds its own report sections (which every format draws): no registry, no
    renderer that knows result types."""
    types = _result_types()
    expected = {"TrainResult", "PredictResult", "MembershipResult", "AuditResult"}
    expected |= {"HardenResult", "BackdoorResult", "PoisonResult"}
    assert expected <= set(types)
    missing = sorted(
        name for name, cls in types.items() if not callable(getattr(cls, "describe", None))
    )
    assert not missing, f"give {missing} a describe(figures) method"
    assert set(FORMATS) == {"rich", "json", "sarif", "markdown", "html"}
    assert set(EXTENSIONS.values()) == set(FORMATS)


def test_result_types_import_without_torch() -> None:
    """A report can be read, checked and rendered without torch: no result module imports it."""
    modules = [
        "codeaudit.predict.result",
        "codeaudit.train.result",
        "codeaudit.membership.result",
        "codeaudit.defense.result",
        "codeaudit.backdoor.result",
        "codeaudit.audit",
    ]
    probe = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + ("print(sorted(m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules))\n")
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"


def test_terminal_draws_the_document(tmp_path: Path) -> None:
    """The terminal renderer draws the same sections, tables and findings as Markdown."""
    from codeaudit.report.rich import MAX_ROWS, render_rich

    result = gated(membership_result())
    text = render_rich(result, width=120)
    document = build_document(result, figures=False)
    for section in document.sections:
        assert section.title in text and section.summary[:40] in text
    for finding in result.findings:
        assert finding.rule_id in text
    assert "FAIL (fail on high)" in text
    assert "figure: ROC curves" in text  # a figure is named, not drawn
    rows = [b for s in document.sections for b in s.blocks if hasattr(b, "rows")]
    long = [t for t in rows if len(t.rows) > MAX_ROWS]
    for table in long:
        assert f"{len(table.rows) - MAX_ROWS} more rows" in text


@pytest.mark.parametrize(
    ("path", "fmt"),
    [
        ("r.json", "json"),
        ("r.sarif", "sarif"),
        ("r.sarif.json", "sarif"),
        ("R.MD", "markdown"),
        ("r.html", "html"),
        ("r.txt", "rich"),
    ],
)
def test_format_from_extension(path: str, fmt: str) -> None:
    assert format_for_path(path) == fmt


def test_verdict_is_plain_language_and_comes_first() -> None:
    document = build_document(gated(membership_result()), figures=False)
    assert document.status == "FAIL" and document.passed is False
    text = document.verdict
    assert text.startswith("codeaudit membership checked the model models/model.pt")
    assert "Privacy: HIGH risk" in text and "which functions it was trained on" in text
    assert "4 problems (2 high, 2 medium)" in text and "Release gate: FAIL" in text
    assert len(re.findall(r"\n", text)) == 0  # one paragraph
    clean = build_document(gated(clean_membership_result()), figures=False)
    assert clean.status == "PASS" and "no measurable risk" in clean.verdict
    assert "None of its 7 rules found a problem" in clean.verdict
    off = build_document(gated(membership_result(), "never"), figures=False)
    assert "gate is off" in off.verdict and off.status == "FINDINGS" and off.passed is None
    ungated = build_document(train_result(), figures=False)
    assert ungated.passed is None and "trained on 80 functions" in ungated.verdict


def test_markdown_layout_and_figure_beside_the_file(tmp_path: Path) -> None:
    result = gated(membership_result())
    files = render_file(result, "markdown", str(tmp_path / "audit.md"))
    assert [Path(p).name for p, _ in files] == ["audit.md", "audit.membership-roc.png"]
    text = files[0][1].decode()
    assert files[1][1].startswith(PNG)
    assert "![ROC curves" in text and "(audit.membership-roc.png)" in text
    order = [
        text.index("**FAIL.**"),
        text.index("## Findings"),
        text.index("| high | CA-M001 |"),
        text.index("## Membership inference (high risk)"),
        text.index("### Strongest attacks"),
        text.index("### By model output"),
        text.index("### Utility"),
        text.index("![ROC"),
        text.index("## Warnings"),
        text.index("## Audited files"),
        text.index("## Rules and release gate"),
    ]
    assert order == sorted(order)
    assert text.index("**FAIL.**") < 40  # the verdict right under the title
    # table rows have as many cells as the header
    for block in re.findall(r"((?:^\|.*\|\n)+)", text, flags=re.M):
        widths = {line.count(" | ") for line in block.splitlines()}
        assert len(widths) == 1, block
    # escaping: the crafted warning's markup shows as text
    assert r"\<b\>&\</b\>" in text
    stdout = render(result, "markdown")
    assert "write the report to a .md file" in stdout and "data:image" not in stdout


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        self.text.append(data)


def test_html_is_self_contained_and_escaped() -> None:
    html = render(gated(membership_result()), "html")
    parser = _Collector()
    parser.feed(html)
    assert "script" not in parser.tags and "link" not in parser.tags
    (image,) = parser.images
    assert image.startswith("data:image/png;base64,")
    assert base64.b64decode(image.split(",", 1)[1]).startswith(PNG)
    assert "<b>&</b>" not in html and "&lt;b&gt;&amp;&lt;/b&gt;" in html
    text = "".join(parser.text)
    assert text.index("FAIL") < text.index("Findings") < text.index("Strongest attacks")
    assert 'class="verdict fail"' in html


def test_other_results_render_in_every_format() -> None:
    for result in (train_result(), predict_result(trusted_pickle=True), clean_membership_result()):
        for fmt in FORMATS:
            assert render(result, fmt).strip()
    md = render(predict_result(trusted_pickle=True), "markdown")
    assert "CA-C001" in md and "### First 10 of 10 predictions" in md


def test_a_result_type_without_a_builder_still_renders() -> None:
    @dataclass(frozen=True)
    class FutureResult:  # what another subsystem would add, before registering its builder
        header: Header
        utility_change: float
        residual_auc: float
        warnings: tuple[str, ...] = ()
        findings: tuple = ()

    result = FutureResult(Header(command="predict"), -0.01, 0.55)
    for fmt in ("markdown", "html", "json", "sarif"):
        out = render(result, fmt)
        assert "0.55" in out or fmt == "sarif"


def test_a_new_result_type_describes_itself_in_every_format() -> None:
    from codeaudit.report.document import Section, Table
    from codeaudit.report.rich import render_rich

    @dataclass(frozen=True)
    class BackdoorLikeResult:
        header: Header
        asr: float
        findings: tuple = ()

        def describe(self, figures: bool = True) -> list[Section]:
            return [
                Section(
                    "Backdoor",
                    "The trigger works on 97% of inputs.",
                    (Table(("asr",), (("0.97",),)),),
                )
            ]

    result = BackdoorLikeResult(Header(command="backdoor"), 0.97)
    md = render(result, "markdown")
    assert "## Backdoor" in md and "trigger works on 97%" in md
    assert "trigger works on 97%" in render(result, "html")
    assert "trigger works on 97%" in render_rich(result)


def test_baseline_count_is_in_every_report(tmp_path: Path) -> None:
    before = tmp_path / "before.json"
    before.write_text(render(membership_result(), "json"))
    result = apply_gate(
        dataclasses.replace(membership_result()), GateSettings(baseline=str(before))
    )
    assert "4 further findings already in the baseline" in render(result, "markdown")
    assert "4 finding(s) suppressed" in render(result, "html")
    assert '"suppressed": 4' in render(result, "sarif")
    assert '"suppressed": 4' in render(result, "json")


CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_html_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text(render(gated(membership_result()), "html"))
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "render_html_report.py"),
            str(report),
            "--screenshot",
            str(shot),
            "--expect-status",
            "fail",
            "--expect-figure",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert shot.read_bytes().startswith(PNG)


def test_the_screenshot_checker_is_not_vacuous(tmp_path: Path) -> None:
    import importlib.util

    import matplotlib.image
    import numpy as np

    spec = importlib.util.spec_from_file_location(
        "render_html_report", ROOT / "scripts" / "render_html_report.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    blank = tmp_path / "blank.png"
    matplotlib.image.imsave(blank, np.ones((200, 300, 3)))
    stats = module.measure(blank)
    assert module.check(stats, "fail", True) == [
        "the screenshot is blank",
        "no fail verdict banner",
        "no plot drawn",
    ]


def test_the_verdict_box_is_never_green_over_a_finding() -> None:
    def box(result: object) -> str:
        found = re.search(r'<p class="verdict (\w+)"', render(result, "html"))
        assert found is not None
        return found.group(1)

    assert box(gated(membership_result(), "never")) == "fail"  # high findings, gate off
    medium_only = dataclasses.replace(
        membership_result(),
        findings=tuple(f for f in membership_result().findings if f.severity.value == "medium"),
    )
    assert medium_only.findings and box(gated(medium_only, "never")) == "warn"
    assert box(gated(clean_membership_result(), "never")) == "info"
    assert box(gated(clean_membership_result())) == "pass"
    assert box(gated(membership_result())) == "fail"
