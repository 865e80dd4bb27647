"""Round two of the hostile-input corpus: data, text, settings and outputs (issue 16).

Outputs that are inputs (or each other) however they are named (the same path, a symlink, ``..``,
a hard link), outputs whose names the filesystem cannot hold, a ``--plot`` that would be a
Markdown report's figure, rule files and directories holding FIFOs, devices or huge files, rule
messages with format specs, and data whose ids and code carry terminal escape sequences. Every
refusal comes before any work: exit 2, one stderr line, nothing written, the inputs unchanged.
Registered at the end of :mod:`tests.reliability.corpus`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.reliability.corpus import OK, Case, Expect, _write, error, jsonl
from tests.reliability.harness import World

# -- outputs that are inputs ----------------------------------------------------------------------


def _data_copy(d: Path, w: World, name: str = "data.jsonl") -> str:
    return str(shutil.copy(w.inputs["data"], d / name))


def _as_json_array(d: Path, w: World, name: str = "data.json") -> str:
    records = [json.loads(line) for line in Path(w.inputs["data"]).read_text().splitlines()]
    return _write(d / name, json.dumps(records))


def _alias(kind: str, make=_data_copy, slot: str = "data"):  # type: ignore[no-untyped-def]
    """The input (copied into the case's directory) and another name for it: the same path,
    a symlink, a path through ``..``, or a hard link."""

    def build(d: Path, w: World) -> dict[str, str]:
        original = make(d, w)
        name = Path(original).name
        if kind == "same":
            alias = original
        elif kind == "symlink":
            alias = str(d / f"link-{name}")
            os.symlink(original, alias)
        elif kind == "dotdot":
            (d / "sub").mkdir()
            alias = str(d / "sub" / ".." / name)
        else:
            alias = str(d / f"hard-{name}")
            os.link(original, alias)
        return {slot: original, "alias": alias}

    return build


OVERWRITE_INPUT = r"would overwrite the input .*refused before any work"

CASES: list[Case] = []
for kind in ("same", "symlink", "dotdot", "hardlink"):
    CASES += [
        Case(
            f"train-output-is-its-data-{kind}",
            _alias(kind),
            error(r"model file would overwrite the input data data .*data\.jsonl"),
            slot="none",
            commands=("train",),
            extra=("-o", "{alias}", "--force"),
        ),
        Case(
            f"predict-report-is-its-data-{kind}",
            _alias(kind, _as_json_array),
            error(OVERWRITE_INPUT),
            slot="none",
            commands=("predict",),
            extra=("-o", "{alias}", "--force"),
        ),
    ]
CASES += [
    Case(
        "membership-report-is-its-members-file-via-symlink",
        _alias("symlink", _as_json_array, slot="members"),
        error(r"report would overwrite the input members data"),
        slot="none",
        commands=("membership", "audit"),
        extra=("--report", "{alias}", "--force"),
    ),
    Case(
        "poison-output-is-a-hard-link-to-its-data",
        _alias("hardlink"),
        error(r"would overwrite|same file|output file"),
        slot="none",
        commands=("poison",),
        extra=("-o", "{alias}", "--force"),
    ),
    Case(
        "harden-report-is-its-key-file",
        lambda d, w: {
            "key": str(shutil.copy(w.inputs["key"], d / "k.json")),
            "alias": str(d / "k.json"),
        },
        error(r"report would overwrite the input key file"),
        slot="none",
        commands=("harden",),
        extra=("--report", "{alias}", "--force"),
    ),
]


# -- outputs that are each other ------------------------------------------------------------------


def _two_names(d: Path, w: World) -> dict[str, str]:
    first = _write(d / "a.json", b"{}")
    os.link(first, d / "b.json")
    return {"a": first, "b": str(d / "b.json")}


CASES += [
    Case(
        "two-reports-are-hard-links-to-one-file",
        _two_names,
        error(r"b\.json: report is the same file as the report .*a\.json"),
        slot="none",
        commands=("predict", "membership", "audit"),
        extra=("--report", "{a}", "--report", "{b}", "--force"),
    ),
    Case(
        "membership-plot-is-the-markdown-reports-figure",
        lambda d, w: {"md": str(d / "r.md"), "png": str(d / "r.membership-roc.png")},
        error(r"r\.membership-roc\.png: plot file would clash with the figures of the Markdown"),
        slot="none",
        commands=("membership",),
        extra=("--report", "{md}", "--plot", "{png}"),
    ),
    Case(
        "harden-plot-is-the-markdown-reports-figure",
        lambda d, w: {"md": str(d / "x[1].md"), "png": str(d / "x[1].harden-curve.png")},
        error(r"harden-curve\.png: plot file would clash with the figures of the Markdown"),
        slot="none",
        commands=("harden",),
        extra=("--report", "{md}", "--plot", "{png}"),
    ),
    Case(
        "plot-is-the-report",
        lambda d, w: str(d / "same.png"),
        error(r"same\.png"),
        slot="none",
        commands=("membership",),
        extra=("--plot", "{path}", "--report", "{path}"),
    ),
]


# -- names the filesystem cannot hold -------------------------------------------------------------

CASES += [
    Case(
        "model-output-name-too-long",
        lambda d, w: str(d / ("m" * 245 + ".pt")),
        error(r"file name too long \(248 bytes; this filesystem holds \d+ at most"),
        slot="none",
        commands=("train", "harden", "backdoor"),
        extra=("-o", "{path}"),
    ),
    Case(
        "model-output-name-too-long-only-for-the-temporary-file",
        lambda d, w: str(d / ("m" * 250 + ".pt")),  # 253 bytes: fits, its temp file does not
        error(r"file name too long \(253 bytes"),
        slot="none",
        commands=("train",),
        extra=("-o", "{path}"),
    ),
    Case(
        "report-name-too-long",
        lambda d, w: str(d / ("r" * 250 + ".json")),
        error(r"file name too long"),
        slot="none",
        extra=("--report", "{path}"),
    ),
    Case(
        "markdown-report-whose-figure-name-is-too-long",
        lambda d, w: str(d / ("r" * 225 + ".md")),  # the .md fits; NAME.membership-roc.png not
        error(r"file name too long"),
        slot="none",
        commands=("membership", "harden"),
        extra=("--report", "{path}"),
    ),
    Case(
        "output-path-too-long",
        lambda d, w: str(d / "/".join(["d" * 200] * 25) / "model.pt"),
        error(r"path too long"),
        slot="none",
        commands=("train",),
        extra=("-o", "{path}"),
    ),
]


# -- rule files and directories -------------------------------------------------------------------


def _rules_dir(entry: str):  # type: ignore[no-untyped-def]
    def build(d: Path, w: World) -> str:
        rules = d / "rules"
        rules.mkdir()
        (rules / "a.toml").write_text("")
        target = rules / "b.toml"
        if entry == "fifo":
            os.mkfifo(target)
        elif entry == "dev-zero":
            os.symlink("/dev/zero", target)
        elif entry == "directory":
            target.mkdir()
        elif entry == "huge":
            target.write_text("# padding\n" * 200_000)  # 2 MB
        return str(rules if entry != "dev-zero-file" else "/dev/zero")

    return build


RULE_COMMANDS = ("predict", "membership", "audit")
CASES += [
    Case(
        "rules-dir-holds-a-fifo",
        _rules_dir("fifo"),
        error(r"b\.toml: not a regular file \(a device, FIFO or socket\), expected a rule file"),
        slot="none",
        commands=RULE_COMMANDS,
        extra=("--rules", "{path}"),
    ),
    Case(
        "rules-dir-holds-a-symlink-to-dev-zero",
        _rules_dir("dev-zero"),
        error(r"b\.toml: not a regular file"),
        slot="none",
        commands=RULE_COMMANDS,
        extra=("--rules", "{path}"),
    ),
    Case(
        "rules-dir-holds-a-directory-named-toml",
        _rules_dir("directory"),
        error(r"b\.toml: not a regular file \(a directory\)"),
        slot="none",
        commands=RULE_COMMANDS,
        extra=("--rules", "{path}"),
    ),
    Case(
        "rules-file-larger-than-the-limit",
        _rules_dir("huge"),
        error(r"b\.toml: rule file of 2000000 bytes is larger than 1048576 bytes"),
        slot="none",
        commands=RULE_COMMANDS,
        extra=("--rules", "{path}"),
    ),
    Case(
        "rules-file-is-dev-zero",
        lambda d, w: "/dev/zero",
        error(r"/dev/zero: not a regular file"),
        slot="none",
        commands=RULE_COMMANDS,
        extra=("--rules", "{path}"),
    ),
]


# -- rule message templates (refused at load: issue 16 round one) --------------------------------


def _rule(message: str):  # type: ignore[no-untyped-def]
    body = (
        '[[rule]]\nid = "ORG-1"\ntitle = "t"\nseverity = "high"\ncommands = ["predict"]\n'
        f'metric = "metrics.accuracy"\nop = ">="\nthreshold = 0\nmessage = {json.dumps(message)}\n'
    )
    return lambda d, w: _write(d / "rules.toml", body)


for name, message in (
    ("format-spec", "{value:.3f}"),
    ("conversion", "{target!r}"),
    ("huge-width", "{value:>999999999}"),
):
    CASES.append(
        Case(
            f"rule-message-with-a-{name}",
            _rule(message),
            error(r"rules\.toml: rule ORG-1: field 'message'.*no format spec or conversion"),
            slot="none",
            commands=("predict",),
            extra=("--rules", "{path}"),
        )
    )


# -- terminal escapes in data: kept exact in JSON, shown visibly elsewhere ------------------------

ESCAPES = "\x1b[2J\x1b[H all checks passed \x1b]8;;https://evil.example\x07x\x1b]8;;\x07"
CLIPBOARD = "\x1b]52;c;ZXZpbA==\x07\u202eevil\x9b31m"


def _ids_kept_exact(report: dict) -> None:
    text = json.dumps(report)
    assert "\\u001b" not in text or "\\u001b[2J" in text  # JSON escapes, never raw


CASES += [
    Case(
        "escape-sequences-in-ids-and-code",
        jsonl(
            {"id": ESCAPES, "func": f"int f(void) {{ /* {CLIPBOARD} */ return 0; }}", "target": 1},
            {"id": CLIPBOARD, "func": "int g(void) { return 1; }", "target": 0},
        ),
        Expect(OK, report=_ids_kept_exact),
        commands=("train", "predict", "membership", "audit", "poison"),
    ),
]
