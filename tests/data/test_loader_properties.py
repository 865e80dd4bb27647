"""Property-based tests of the data loader: valid records round-trip through every format, and
no input (any bytes, any JSON values) raises anything but DataError."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeaudit.data.loader import load_dataset
from codeaudit.errors import DataError
from codeaudit.lang.languages import LANGUAGES

FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Text a data file can hold: any Unicode scalar value (no lone surrogates), some non-whitespace.
TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=60)
CODE = TEXT.filter(lambda s: s.strip() != "")
ALIASES = sorted({a for spec in LANGUAGES.values() for a in (spec.name, *spec.aliases)})
LABEL_SPELLINGS = {
    0: [0, False, "0", "false", "0.0", " FALSE "],
    1: [1, True, "1", "true", "1.0", "True"],
}


@st.composite
def records(draw: st.DrawFn) -> tuple[list[dict], list[tuple]]:
    """Valid records, and (id, code, label, lang, cwe, pair) as they must load."""
    n = draw(st.integers(1, 8))
    ids = draw(st.lists(TEXT.filter(lambda s: s.strip() == s), min_size=n, max_size=n, unique=True))
    out, expected = [], []
    for sample_id in ids:
        label = draw(st.integers(0, 1))
        spelled = draw(st.sampled_from(LABEL_SPELLINGS[label]))
        lang = draw(st.none() | st.sampled_from(ALIASES))
        cwe = draw(st.none() | TEXT)
        record = {"id": sample_id, "func": draw(CODE), "target": spelled}
        if lang is not None:
            record["lang"] = lang
        if cwe is not None:
            record["cwe"] = cwe
        out.append(record)
        canonical = next(
            (s.name for s in LANGUAGES.values() if lang and lang.lower() in (s.name, *s.aliases)),
            None,
        )
        expected.append((sample_id, record["func"], label, canonical, cwe))
    return out, expected


def _as_csv(rows: list[dict]) -> str:
    fields = ["id", "func", "target", "lang", "cwe"]
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(fields)
    for r in rows:
        writer.writerow(["" if r.get(f) is None else str(r[f]) for f in fields])
    return out.getvalue()


def _csv_friendly(rows: list[dict]) -> bool:
    # A raw NUL byte makes a file binary (refused on purpose: JSON escapes it, CSV cannot).
    return all("\x00" not in str(v) for r in rows for v in r.values())


def _load(tmp: Path, name: str, content: str | bytes) -> list[tuple]:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    dataset = load_dataset(path)
    return [(s.id, s.code, s.label, s.lang, s.cwe) for s in dataset]


@FAST
@given(data=records(), bom=st.booleans())
def test_valid_records_round_trip_through_every_format(
    data: tuple[list[dict], list[tuple]], bom: bool
) -> None:
    rows, expected = data
    prefix = "\ufeff" if bom else ""
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        jsonl = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        assert _load(tmp, "d.jsonl", prefix + jsonl) == expected
        assert _load(tmp, "d.json", prefix + json.dumps(rows, indent=1)) == expected
        if _csv_friendly(rows):
            assert _load(tmp, "d.csv", prefix + _as_csv(rows)) == expected


SUFFIXES = [".jsonl", ".json", ".csv", ".tsv", ".txt", ""]


@settings(max_examples=150, deadline=None)
@given(
    content=st.binary(max_size=400),
    suffix=st.sampled_from(SUFFIXES),
    skip=st.booleans(),
    labels=st.booleans(),
)
def test_arbitrary_bytes_raise_nothing_but_data_error(
    content: bytes, suffix: str, skip: bool, labels: bool
) -> None:
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / f"d{suffix}"
        path.write_bytes(content)
        try:
            dataset = load_dataset(path, skip_invalid=skip, require_labels=labels)
        except DataError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(str(path))
        else:
            assert len(dataset) >= 1
            assert all(s.code.strip() for s in dataset)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
FIELDS = st.sampled_from(["func", "code", "target", "label", "id", "lang", "cwe", "pair", "x"])


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.dictionaries(FIELDS, JSON_VALUES, max_size=6) | JSON_VALUES, max_size=5),
    as_array=st.booleans(),
    skip=st.booleans(),
)
def test_arbitrary_json_values_raise_nothing_but_data_error(
    values: list, as_array: bool, skip: bool
) -> None:
    with tempfile.TemporaryDirectory() as name:
        if as_array:
            path = Path(name) / "d.json"
            path.write_text(json.dumps(values), encoding="utf-8")
        else:
            path = Path(name) / "d.jsonl"
            path.write_text("".join(json.dumps(v) + "\n" for v in values), encoding="utf-8")
        try:
            load_dataset(path, skip_invalid=skip)
        except DataError as exc:
            assert "\n" not in str(exc)
