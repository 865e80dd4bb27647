"""docs/reliability.md's "Budgets per input" table names constants that exist, with their values:
a budget changed in code and not in the table (or the other way round) fails here."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "reliability.md"


def _rows() -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(budget, value cell, [(constant, module)]) per row of the table."""
    text = DOC.read_text(encoding="utf-8")
    table = text.split("| budget | value | constant |", 1)[1].split("\n\n", 1)[0]
    rows = []
    module = ""
    for line in table.strip().splitlines()[1:]:
        budget, value, names = (cell.strip() for cell in line.strip().strip("|").split("|"))
        found: list[tuple[str, str]] = []
        # "`A`, `B` (`pkg/mod.py`)": the module in parentheses names the constants before it;
        # a row without one continues the module of the row above
        for group, where in re.findall(r"((?:`\w+`(?:, )?)+)(?: \(`([\w/]+)\.py`\))?", names):
            pending = re.findall(r"`(\w+)`", group)
            if where:
                module = "codeaudit." + where.replace("/", ".")
            found.extend((name, module) for name in pending)
        rows.append((budget, value, found))
    return rows


ROWS = _rows()


def _spellings(value: object) -> set[str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return set()
    spelled = {str(value), f"{value:,}"}
    if isinstance(value, float) and value.is_integer():
        spelled |= {str(int(value)), f"{int(value):,}", f"10^{len(str(int(value))) - 1}"}
    if value == 0.5:
        spelled.add("half")
    if isinstance(value, int):
        for unit, shift in (("KiB", 10), ("MiB", 20), ("GiB", 30)):
            if value >= 1 << shift and value % (1 << shift) == 0:
                spelled.add(f"{value >> shift} {unit}")
    return spelled


def test_the_table_is_read() -> None:
    names = [name for _, _, found in ROWS for name, _ in found]
    assert len(ROWS) >= 12 and "MAX_REWRITE_NODES" in names and "MAX_LEN_CAP" in names


@pytest.mark.parametrize("budget,value,found", ROWS, ids=[row[0][:40] for row in ROWS])
def test_every_constant_exists_and_its_value_is_the_documented_one(
    budget: str, value: str, found: list[tuple[str, str]]
) -> None:
    assert found, f"no constant named for {budget!r}"
    row = f"{budget} | {value}"
    for name, module in found:
        constant = getattr(importlib.import_module(module), name)  # AttributeError: gone
        spellings = _spellings(constant)
        if spellings:  # a number: the row says it (a function, like lex_budget, is described)
            alone = [rf"(?<![\w.])(?<!\d,){re.escape(s)}(?!\w|,\d|\.\d)" for s in spellings]
            assert any(re.search(pattern, row) for pattern in alone), (
                f"{name} = {constant!r} is not what the row says: {row!r}"
            )
