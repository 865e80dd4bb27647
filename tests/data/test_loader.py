"""Tests for codeaudit.data.loader: reading JSONL / JSON arrays / CSV into validated samples."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeaudit.data.loader import dataset_from_records, load_dataset
from codeaudit.data.samples import Dataset
from codeaudit.errors import DataError

BOM = b"\xef\xbb\xbf"

RECORDS = [
    {
        "id": "a",
        "func": "int f(void) {\n  return 0;\n}\n",
        "target": 0,
        "cwe": "CWE-120",
        "lang": "c",
        "pair": "p1",
    },
    {
        "id": "b",
        "func": 'char *g(char *s) {\n  strcpy(buf, s); /* "quoted", comma\ttab */\n'
        "  return buf;\n}",
        "target": 1,
        "cwe": "",
        "lang": "",
        "pair": "p1",
    },
    {
        "id": "c",
        "func": 'void h() { puts("\u00e9\u4e2d"); }',
        "target": 1,
        "cwe": "CWE-476",
        "lang": "C++",
        "pair": "",
    },
]
# (id, code, label, lang, cwe, pair) that RECORDS must load as, whatever the format.
EXPECTED = [
    ("a", RECORDS[0]["func"], 0, "c", "CWE-120", "p1"),
    ("b", RECORDS[1]["func"], 1, None, None, "p1"),
    ("c", RECORDS[2]["func"], 1, "cpp", "CWE-476", None),
]


# ---------------------------------------------------------------- helpers


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def jsonl(records: list[dict], *, ensure_ascii: bool = True) -> str:
    return "".join(json.dumps(r, ensure_ascii=ensure_ascii) + "\n" for r in records)


def json_array(records: list[dict], *, ensure_ascii: bool = True) -> str:
    return json.dumps(records, indent=2, ensure_ascii=ensure_ascii) + "\n"


def csv_text(records: list[dict], *, delimiter: str = ",") -> str:
    fields = list(dict.fromkeys(k for r in records for k in r))
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(fields)
    for r in records:
        writer.writerow(["" if r.get(f) is None else str(r.get(f)) for f in fields])
    return out.getvalue()


def summary(ds: Dataset) -> list[tuple]:
    return [(s.id, s.code, s.label, s.lang, s.cwe, s.pair) for s in ds]


def load_error(path: Path, **kwargs: object) -> str:
    """The DataError message load_dataset gives for ``path``; checks it is a single line."""
    with pytest.raises(DataError) as info:
        load_dataset(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert message
    assert "\n" not in message and "\r" not in message
    return message


def assert_at(message: str, path: Path, line: int) -> None:
    assert message.startswith(f"{path}:{line}: "), message


GOOD = {"func": "int ok(void) { return 1; }", "target": 0}


def good(i: int, label: int = 0) -> dict:
    return {"id": f"g{i}", "func": f"int ok{i}(void) {{ return {i}; }}", "target": label}


# ---------------------------------------------------------------- the formats


def test_jsonl_loads_every_field(tmp_path: Path) -> None:
    path = write(tmp_path / "train.jsonl", jsonl(RECORDS))
    ds = load_dataset(path)
    assert summary(ds) == EXPECTED
    assert [s.line for s in ds] == [1, 2, 3]
    assert ds.format == "jsonl"
    assert ds.code_field == "func" and ds.label_field == "target"
    assert ds.path == str(path)
    assert ds.skipped == ()
    assert ds.has_labels
    assert ds.labels().tolist() == [0, 1, 1]


def test_json_array_pretty_printed_loads_the_same(tmp_path: Path) -> None:
    text = json_array(RECORDS)
    assert text.count("\n") > 10
    path = write(tmp_path / "train.json", text)
    ds = load_dataset(path)
    assert summary(ds) == EXPECTED
    assert ds.format == "json"
    # Each sample's line is where its object starts.
    lines = text.split("\n")
    assert [lines[s.line - 1].strip() for s in ds] == ["{", "{", "{"]
    assert [s.line for s in ds] == sorted({s.line for s in ds})


def test_csv_with_multiline_quoted_cells_loads_the_same(tmp_path: Path) -> None:
    text = csv_text(RECORDS)
    assert '"int f(void) {\n' in text  # a quoted, multi-line code cell
    path = write(tmp_path / "train.csv", text)
    ds = load_dataset(path)
    assert summary(ds) == EXPECTED
    assert ds.format == "csv"
    # Row 1 starts on line 2 and spans 4 lines (three newlines in the cell); row 2 then starts
    # on line 6 and spans 4 lines.
    assert [s.line for s in ds] == [2, 6, 10]


def test_tsv_file_uses_tabs(tmp_path: Path) -> None:
    path = write(tmp_path / "train.tsv", csv_text(RECORDS, delimiter="\t"))
    ds = load_dataset(path)
    assert summary(ds) == EXPECTED
    assert ds.format == "csv"


def test_csv_with_crlf_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "id,func,target\r\nx,int a;,1\r\ny,int b;,0\r\n")
    ds = load_dataset(path)
    assert [(s.id, s.code, s.label, s.line) for s in ds] == [
        ("x", "int a;", 1, 2),
        ("y", "int b;", 0, 3),
    ]


def test_jsonl_blank_and_crlf_lines(tmp_path: Path) -> None:
    text = json.dumps(good(1)) + "\r\n\r\n   \n" + json.dumps(good(2, 1)) + "\r\n"
    ds = load_dataset(write(tmp_path / "d.jsonl", text))
    assert [(s.id, s.line, s.label) for s in ds] == [("g1", 1, 0), ("g2", 4, 1)]


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("data.ndjson", jsonl([GOOD]), "jsonl"),
        ("data.json", jsonl([GOOD]), "jsonl"),  # a .json file holding JSONL
        ("data.txt", json_array([GOOD]), "json"),
        ("data", jsonl([GOOD]), "jsonl"),
        ("data.dat", "func,target\nint x;,1\n", "csv"),
    ],
)
def test_format_detection(tmp_path: Path, name: str, content: str, fmt: str) -> None:
    ds = load_dataset(write(tmp_path / name, content))
    assert ds.format == fmt
    assert len(ds) == 1


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_forced_format(tmp_path: Path, fmt: str) -> None:
    content = {"jsonl": jsonl(RECORDS), "json": json_array(RECORDS), "csv": csv_text(RECORDS)}
    path = write(tmp_path / "data.txt", content[fmt])
    ds = load_dataset(path, fmt=fmt)
    assert ds.format == fmt
    assert summary(ds) == EXPECTED


def test_forced_format_wrong_for_content(tmp_path: Path) -> None:
    path = write(tmp_path / "data.txt", jsonl(RECORDS))
    assert_at(load_error(path, fmt="json"), path, 1)


def test_sha256_is_of_the_bytes(tmp_path: Path) -> None:
    for name, content in [
        ("a.jsonl", jsonl(RECORDS)),
        ("a.json", json_array(RECORDS)),
        ("a.csv", csv_text(RECORDS)),
    ]:
        path = write(tmp_path / name, content)
        assert load_dataset(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    first = load_dataset(tmp_path / "a.jsonl").sha256
    write(tmp_path / "a.jsonl", jsonl(RECORDS) + "\n")
    assert load_dataset(tmp_path / "a.jsonl").sha256 != first


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bom.jsonl", jsonl(RECORDS)),
        ("bom.json", json_array(RECORDS)),
        ("bom.csv", csv_text(RECORDS)),
    ],
)
def test_utf8_bom_is_accepted(tmp_path: Path, name: str, content: str) -> None:
    path = write(tmp_path / name, BOM + content.encode("utf-8"))
    ds = load_dataset(path)
    assert summary(ds) == EXPECTED  # for CSV: the first column is "id", not "\ufeffid"
    assert ds.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_bom_does_not_change_format_detection(tmp_path: Path) -> None:
    plain = load_dataset(write(tmp_path / "plain.json", jsonl(RECORDS)))
    assert plain.format == "jsonl"
    with_bom = load_dataset(write(tmp_path / "bom.json", BOM + jsonl(RECORDS).encode()))
    assert with_bom.format == "jsonl"
    assert summary(with_bom) == summary(plain)


# ---------------------------------------------------------------- fields


@pytest.mark.parametrize(
    ("code_key", "label_key"),
    [("func", "target"), ("code", "label"), ("source", "vul"), ("code", "target")],
)
def test_field_auto_detection(tmp_path: Path, code_key: str, label_key: str) -> None:
    records = [{code_key: "int x;", label_key: 1}, {code_key: "int y;", label_key: 0}]
    ds = load_dataset(write(tmp_path / "d.jsonl", jsonl(records)))
    assert ds.code_field == code_key and ds.label_field == label_key
    assert [(s.code, s.label) for s in ds] == [("int x;", 1), ("int y;", 0)]


def test_field_detection_prefers_func_and_target(tmp_path: Path) -> None:
    records = [
        {"source": "S", "code": "C", "func": "F", "vul": 0, "label": 0, "target": 1},
    ]
    ds = load_dataset(write(tmp_path / "d.jsonl", jsonl(records)))
    assert (ds[0].code, ds[0].label) == ("F", 1)
    assert (ds.code_field, ds.label_field) == ("func", "target")


def test_field_overrides(tmp_path: Path) -> None:
    records = [
        {"body": "int x;", "is_bad": 1, "func": "ignored", "target": 0},
        {"body": "int y;", "is_bad": 0, "func": "ignored too", "target": 1},
    ]
    path = write(tmp_path / "d.jsonl", jsonl(records))
    ds = load_dataset(path, code_field="body", label_field="is_bad")
    assert [(s.code, s.label) for s in ds] == [("int x;", 1), ("int y;", 0)]
    assert (ds.code_field, ds.label_field) == ("body", "is_bad")
    # An override naming a field that is not there is reported, not ignored.
    message = load_error(path, code_field="nope")
    assert_at(message, path, 1)
    assert "'nope'" in message
    message = load_error(path, label_field="nope")
    assert_at(message, path, 1)
    assert "'nope'" in message


def test_csv_field_overrides(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "body , bad\nint x;,1\nint y;,0\n")
    ds = load_dataset(path, code_field="body", label_field="bad")  # header cells are stripped
    assert [(s.code, s.label) for s in ds] == [("int x;", 1), ("int y;", 0)]


def test_optional_fields(tmp_path: Path) -> None:
    records = [
        {"id": 7, "func": "a", "target": 0, "lang": "JAVA", "cwe": "CWE-89", "pair": 3},
        {"id": "x", "func": "b", "target": 1},
        {"id": "y", "func": "c", "target": 1, "lang": "py"},
    ]
    ds = load_dataset(write(tmp_path / "d.jsonl", jsonl(records)), default_lang="c++")
    assert summary(ds) == [
        ("7", "a", 0, "java", "CWE-89", "3"),
        ("x", "b", 1, "cpp", None, None),  # default_lang, normalised
        ("y", "c", 1, "python", None, None),  # the record's own lang wins
    ]
    ds = load_dataset(write(tmp_path / "d.jsonl", jsonl(records)))
    assert [s.lang for s in ds] == ["java", None, "python"]


def test_unsupported_default_lang(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", jsonl([GOOD]))
    message = load_error(path, default_lang="cobol")
    assert_at(message, path, 1)
    assert "cobol" in message


@pytest.mark.parametrize("field", ["id", "cwe", "pair", "lang"])
def test_optional_field_of_wrong_type(tmp_path: Path, field: str) -> None:
    path = write(tmp_path / "d.jsonl", jsonl([good(1), {**good(2), field: ["x"]}]))
    message = load_error(path)
    assert_at(message, path, 2)
    assert repr(field) in message


def test_ids_synthesised_from_file_name_and_line(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    text = json.dumps(GOOD) + "\n\n" + json.dumps({**GOOD, "id": ""}) + "\n"
    ds = load_dataset(write(sub / "train.jsonl", text))
    assert ds.ids == ["train.jsonl:1", "train.jsonl:3"]
    ds = load_dataset(write(sub / "train.csv", 'func,target\n"a\nb",1\nc,0\n'))
    assert ds.ids == ["train.csv:2", "train.csv:4"]


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1, 1),
        (True, 1),
        (False, 0),
        ("0", 0),
        ("1", 1),
        ("true", 1),
        ("False", 0),
        (" 1 ", 1),
        (0.0, 0),
        (1.0, 1),
        ("1.0", 1),
    ],
)
def test_accepted_label_spellings(tmp_path: Path, value: object, expected: int) -> None:
    path = write(tmp_path / "d.jsonl", jsonl([{"func": "x", "target": value}]))
    assert load_dataset(path)[0].label == expected


@pytest.mark.parametrize(("cell", "expected"), [("0", 0), ("1", 1), ("true", 1), ("0.0", 0)])
def test_accepted_csv_labels(tmp_path: Path, cell: str, expected: int) -> None:
    path = write(tmp_path / "d.csv", f"func,target\nint x;,{cell}\n")
    assert load_dataset(path)[0].label == expected


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (2, ["label 2", "not 0 or 1"]),
        (-1, ["label -1", "not 0 or 1"]),
        ("yes", ["'yes'", "not 0 or 1"]),
        (0.5, ["0.5", "not 0 or 1"]),
        (None, ["missing label"]),
        ("", ["missing label"]),
        ([1], ["not 0 or 1"]),
    ],
)
def test_bad_labels(tmp_path: Path, value: object, words: list[str]) -> None:
    path = write(tmp_path / "d.jsonl", jsonl([good(1), {"func": "x", "target": value}]))
    message = load_error(path)
    assert_at(message, path, 2)
    assert "'target'" in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("cell", ["2", "yes", "0.5", ""])
def test_bad_csv_labels(tmp_path: Path, cell: str) -> None:
    path = write(tmp_path / "d.csv", f"func,target\nint a;,1\nint x;,{cell}\n")
    assert_at(load_error(path), path, 3)


# ---------------------------------------------------------------- errors


def test_invalid_json_line_number(tmp_path: Path) -> None:
    text = json.dumps(good(1)) + "\n" + json.dumps(good(2)) + '\n{"func": "x", "target": 1\n'
    path = write(tmp_path / "d.jsonl", text)
    message = load_error(path)
    assert_at(message, path, 3)
    assert "invalid JSON" in message


def test_invalid_json_line_number_counts_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", json.dumps(good(1)) + "\n\n\n{oops}\n")
    assert_at(load_error(path), path, 4)


def test_missing_code_field_in_first_record(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", jsonl([{"text": "x", "target": 1}]))
    message = load_error(path)
    assert_at(message, path, 1)
    assert "no code field" in message and "text" in message


def test_missing_code_field_in_later_record(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", jsonl([good(1), good(2), {"id": "z", "target": 1}]))
    message = load_error(path)
    assert_at(message, path, 3)
    assert "'func'" in message


def test_missing_label_field(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", jsonl([{"func": "x"}]))
    message = load_error(path)
    assert_at(message, path, 1)
    assert "label" in message
    path = write(tmp_path / "e.jsonl", jsonl([good(1), {"id": "q", "func": "x"}]))
    message = load_error(path)
    assert_at(message, path, 2)
    assert "missing label" in message


@pytest.mark.parametrize("code", [5, None, ["int x;"], {"a": 1}, True])
def test_code_not_a_string(tmp_path: Path, code: object) -> None:
    path = write(tmp_path / "d.jsonl", jsonl([good(1), {"func": code, "target": 1}]))
    message = load_error(path)
    assert_at(message, path, 2)
    assert "'func'" in message and "string" in message


@pytest.mark.parametrize("code", ["", "   ", "\n\t \n"])
def test_empty_code(tmp_path: Path, code: str) -> None:
    path = write(tmp_path / "d.jsonl", jsonl([good(1), {"func": code, "target": 1}]))
    message = load_error(path)
    assert_at(message, path, 2)
    assert "empty" in message


def test_empty_code_in_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'id,func,target\na,int x;,1\nb," ",0\n')
    message = load_error(path)
    assert_at(message, path, 3)
    assert "empty" in message


@pytest.mark.parametrize("name", ["d.jsonl", "d.json", "d.csv", "d"])
@pytest.mark.parametrize("content", [b"", b"   \n\t\r\n  \n"])
def test_empty_and_whitespace_only_files(tmp_path: Path, name: str, content: bytes) -> None:
    path = write(tmp_path / name, content)
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    assert "empty" in message


def test_non_utf8_in_jsonl_names_the_line(tmp_path: Path) -> None:
    data = jsonl([good(1)]).encode() + b'{"func": "caf\xe9", "target": 1}\n'
    path = write(tmp_path / "d.jsonl", data)
    message = load_error(path)
    assert_at(message, path, 2)
    assert "UTF-8" in message


@pytest.mark.parametrize(
    ("name", "data", "line"),
    [
        ("d.csv", b'func,target\nint a;,1\n"int\n b\xff;",0\n', 4),
        ("d.json", b'[\n  {"func": "a", "target": 1},\n  {"func": "\xc3(", "target": 0}\n]\n', 3),
    ],
)
def test_non_utf8_in_csv_and_json(tmp_path: Path, name: str, data: bytes, line: int) -> None:
    path = write(tmp_path / name, data)
    message = load_error(path)
    assert_at(message, path, line)
    assert "UTF-8" in message


@pytest.mark.parametrize("name", ["d.jsonl", "d.csv", "d.bin"])
def test_binary_file(tmp_path: Path, name: str) -> None:
    path = write(tmp_path / name, b'{"func": "x", "target": 1}\n\x00\x01\x02\x03\xff\xfe')
    message = load_error(path)
    assert message.startswith(f"{path}: ")
    assert "binary" in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    message = load_error(path)
    assert str(path) in message and "not found" in message


def test_directory(tmp_path: Path) -> None:
    message = load_error(tmp_path)
    assert str(tmp_path) in message and "directory" in message


def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.jsonl", jsonl([GOOD]))
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running with privileges that can read a mode-000 file")
        message = load_error(path)
        assert str(path) in message and "permission denied" in message
    finally:
        path.chmod(0o600)


def test_duplicate_ids_name_the_first_line(tmp_path: Path) -> None:
    records = [{**good(1), "id": "a"}, {**good(2), "id": "b"}, {**good(3), "id": "a"}]
    path = write(tmp_path / "d.jsonl", jsonl(records))
    message = load_error(path)
    assert_at(message, path, 3)
    assert "duplicate id 'a'" in message and "line 1" in message


def test_duplicate_ids_int_and_string(tmp_path: Path) -> None:
    records = [{**good(1), "id": 5}, {**good(2), "id": "5"}]
    path = write(tmp_path / "d.jsonl", jsonl(records))
    assert_at(load_error(path), path, 2)


def test_unsupported_lang(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", jsonl([good(1), {**good(2), "lang": "cobol"}]))
    message = load_error(path)
    assert_at(message, path, 2)
    assert "cobol" in message


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        # unterminated: the array never closes
        ('[\n  {"func": "x", "target": 0},\n  {"func": "y", "target": 1}\n', (3, 4), "unterm"),
        # unterminated inside an element
        ('[\n  {"func": "x", "target": 0},\n  {"func": "y", ', (3,), "invalid JSON"),
        # trailing garbage
        ('[{"func": "x", "target": 0}] []', (1,), "extra data"),
        # elements that are not objects
        ('[\n  {"func": "x", "target": 0},\n  42\n]\n', (3,), "expected an object"),
        ('[\n  {"func": "x", "target": 0},\n  ["func"]\n]\n', (3,), "expected an object"),
        ('[\n  "just a string"\n]\n', (2,), "expected an object"),
        # bad JSON in an element
        ('[\n  {"func": "x", "target": 0},\n  {"func": "y" "target": 1}\n]', (3,), "invalid JSON"),
        ('[\n  {"func": "x", "target": 0},\n]\n', (3,), "invalid JSON"),
        ('[\n  {"func": "x", "target": 0}\n  {"func": "y", "target": 1}\n]', (3,), "invalid JSON"),
        ("[]\n", None, "no records"),
    ],
)
def test_bad_json_arrays(
    tmp_path: Path, text: str, line: tuple[int, ...] | None, words: str
) -> None:
    path = write(tmp_path / "d.json", text)
    message = load_error(path)
    if line is None:
        assert message.startswith(f"{path}: ")
    else:
        match = re.match(rf"{re.escape(str(path))}:(\d+): ", message)
        assert match, message
        assert int(match.group(1)) in line, message
    assert words in message


def test_json_array_trailing_garbage_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "d.json", '[\n  {"func": "x", "target": 0}\n]\n\ngarbage\n')
    message = load_error(path)
    assert "extra data" in message
    assert_at(message, path, 5)


def test_json_file_that_is_an_object(tmp_path: Path) -> None:
    path = write(tmp_path / "d.json", '{\n  "func": "x",\n  "target": 1\n}\n')
    assert_at(load_error(path), path, 1)


def test_csv_row_with_wrong_column_count(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'func,target\nint a;,1\n"int\nb;",0,extra\nint c;,1\n')
    message = load_error(path)
    assert_at(message, path, 3)
    assert "expected 2 columns, found 3" in message
    path = write(tmp_path / "e.csv", "func,target\nint a;,1\nint b;\n")
    message = load_error(path)
    assert_at(message, path, 3)
    assert "found 1" in message


def test_malformed_csv_quoting(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'func,target\nint a;,1\n"int b;"x,0\n')
    message = load_error(path)
    assert_at(message, path, 3)
    assert "CSV" in message


def test_csv_duplicate_header(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "func,target,func\na,1,b\n")
    assert_at(load_error(path), path, 1)


def test_csv_header_only(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "func,target\n")
    assert "no records" in load_error(path)


def test_unknown_forced_format(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", jsonl([GOOD]))
    message = load_error(path, fmt="xml")
    assert message.startswith(f"{path}: ")
    assert "'xml'" in message


@pytest.mark.parametrize("name", ["d.jsonl", "d.json"])
def test_deeply_nested_json(tmp_path: Path, name: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    text = deep + "\n" if name.endswith("jsonl") else "[\n" + deep + "\n]\n"
    path = write(tmp_path / name, text)
    message = load_error(path)
    assert "JSON" in message


@pytest.mark.parametrize(
    ("name", "head", "tail"),
    [("d.jsonl", json.dumps(good(1)) + "\n", "\n"), ("d.json", "[\n", "\n]\n")],
    ids=["jsonl", "json"],
)
def test_huge_integer_is_a_data_error(tmp_path: Path, name: str, head: str, tail: str) -> None:
    record = '{"func": "int x;", "target": ' + "1" * 5000 + "}"
    path = write(tmp_path / name, head + record + tail)
    message = load_error(path)
    assert_at(message, path, 2)


def test_messages_stay_on_one_line_with_odd_ids(tmp_path: Path) -> None:
    records = [{**good(1), "id": "a\nb"}, {**good(2), "id": "a\nb"}]
    path = write(tmp_path / "d.jsonl", jsonl(records))
    assert_at(load_error(path), path, 2)


# ---------------------------------------------------------------- skip_invalid


def test_skip_invalid_keeps_good_records_in_order(tmp_path: Path) -> None:
    lines = [
        json.dumps(good(1)),  # 1 ok
        "{not json",  # 2 invalid JSON
        json.dumps({**good(3), "target": 2}),  # 3 bad label
        json.dumps(good(4, 1)),  # 4 ok
        json.dumps({**good(5), "func": ""}),  # 5 empty code
        json.dumps(good(6)),  # 6 ok
        json.dumps({**good(7), "id": "g1"}),  # 7 duplicate id
        "",  # 8 blank: not a record
        json.dumps([1, 2]),  # 9 not an object
        json.dumps({**good(10), "lang": "cobol"}),  # 10 bad lang
        json.dumps({"id": "g11", "target": 1}),  # 11 missing code
        json.dumps(good(12, 1)),  # 12 ok
    ]
    data = "\n".join(lines).encode() + b'\n{"func": "\xff", "target": 1}\n'  # 13 bad UTF-8
    path = write(tmp_path / "d.jsonl", data)
    ds = load_dataset(path, skip_invalid=True)
    assert ds.ids == ["g1", "g4", "g6", "g12"]
    assert [s.line for s in ds] == [1, 4, 6, 12]
    assert [s.line for s in ds.skipped] == [2, 3, 5, 7, 9, 10, 11, 13]
    reasons = [s.reason for s in ds.skipped]
    for reason, word in zip(
        reasons,
        ["invalid JSON", "not 0 or 1", "empty", "duplicate", "object", "cobol", "'func'", "UTF-8"],
        strict=True,
    ):
        assert word in reason
        assert "\n" not in reason
    # Without skip_invalid the first bad record stops the load.
    assert_at(load_error(path), path, 2)


def test_skip_invalid_csv(tmp_path: Path) -> None:
    text = 'id,func,target\na,int a;,1\nb,int b;\nc,"int\nc;",7\nd,int d;,0\ne,"x"y,1\nf,int f;,1\n'
    path = write(tmp_path / "d.csv", text)
    ds = load_dataset(path, skip_invalid=True)
    assert ds.ids == ["a", "d", "f"]
    assert [s.line for s in ds] == [2, 6, 8]
    assert [s.line for s in ds.skipped] == [3, 4, 7]
    assert "columns" in ds.skipped[0].reason
    assert "not 0 or 1" in ds.skipped[1].reason


def test_skip_invalid_json_array_elements(tmp_path: Path) -> None:
    text = (
        '[\n  {"id": "a", "func": "x", "target": 0},\n  3,\n  {"id": "b", "func": "y", '
        '"target": "maybe"},\n  {"id": "c", "func": "z", "target": 1}\n]\n'
    )
    ds = load_dataset(write(tmp_path / "d.json", text), skip_invalid=True)
    assert ds.ids == ["a", "c"]
    assert [s.line for s in ds.skipped] == [3, 4]


def test_skip_invalid_everything_bad(tmp_path: Path) -> None:
    lines = [
        json.dumps({"func": "x", "target": 2}),
        "{broken",
        json.dumps({"func": "  ", "target": 1}),
    ]
    path = write(tmp_path / "d.jsonl", "\n".join(lines) + "\n")
    message = load_error(path, skip_invalid=True)
    assert message.startswith(f"{path}: ")
    assert "no records" in message
    assert "3" in message and "skipped" in message


def test_not_skipping_leaves_skipped_empty(tmp_path: Path) -> None:
    ds = load_dataset(write(tmp_path / "d.jsonl", jsonl(RECORDS)), skip_invalid=True)
    assert ds.skipped == ()
    assert summary(ds) == EXPECTED


def test_skipped_record_id_does_not_block_later_record(tmp_path: Path) -> None:
    records = [
        {"id": "a", "func": "int x;", "target": 0, "cwe": ["CWE-1"]},
        {"id": "b", "func": "int z;", "target": 0},
        {"id": "a", "func": "int y;", "target": 1},
    ]
    ds = load_dataset(write(tmp_path / "d.jsonl", jsonl(records)), skip_invalid=True)
    assert ds.ids == ["b", "a"]
    assert [s.line for s in ds.skipped] == [1]


# ---------------------------------------------------------------- require_labels


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("d.jsonl", jsonl([{"id": "a", "func": "x"}, {"id": "b", "func": "y"}])),
        ("d.json", json_array([{"id": "a", "func": "x"}, {"id": "b", "func": "y"}])),
        ("d.csv", "id,func\na,x\nb,y\n"),
    ],
)
def test_unlabelled_file(tmp_path: Path, name: str, content: str) -> None:
    path = write(tmp_path / name, content)
    ds = load_dataset(path, require_labels=False)
    assert [(s.id, s.code, s.label) for s in ds] == [("a", "x", None), ("b", "y", None)]
    assert not ds.has_labels
    assert ds.label_field is None
    with pytest.raises(ValueError):
        ds.labels()
    assert "label" in load_error(path)  # required by default


def test_require_labels_false_still_reads_labels(tmp_path: Path) -> None:
    ds = load_dataset(write(tmp_path / "d.jsonl", jsonl(RECORDS)), require_labels=False)
    assert summary(ds) == EXPECTED
    assert ds.has_labels


# ---------------------------------------------------------------- Dataset.from_records


def test_from_records() -> None:
    ds = dataset_from_records([dict(r) for r in RECORDS], name="mem")
    assert summary(ds) == EXPECTED
    assert [s.line for s in ds] == [1, 2, 3]
    assert ds.sha256 is None and ds.path == "mem" and ds.format == "memory"
    unlabelled = dataset_from_records([{"func": "x"}, {"func": "y"}])
    assert [s.label for s in unlabelled] == [None, None]
    assert unlabelled.ids == ["<memory>:1", "<memory>:2"]


@pytest.mark.parametrize(
    ("records", "line", "word"),
    [
        ([GOOD, {"func": 3, "target": 1}], 2, "string"),
        ([GOOD, {"func": "", "target": 1}], 2, "empty"),
        ([GOOD, {"func": "x", "target": 2}], 2, "not 0 or 1"),
        ([GOOD, {"func": "x", "target": None}], 2, "missing label"),
        ([GOOD, "not a dict"], 2, "object"),
        ([{"id": "a", **GOOD}, {"id": "a", **GOOD}], 2, "duplicate"),
        ([GOOD, {**GOOD, "id": "q", "lang": "cobol"}], 2, "cobol"),
        ([{"text": "x"}], 1, "code field"),
    ],
)
def test_from_records_validates_like_a_file(records: list, line: int, word: str) -> None:
    with pytest.raises(DataError) as info:
        dataset_from_records(records, name="mem")
    message = str(info.value)
    assert message.startswith(f"mem:{line}: "), message
    assert word in message
    assert "\n" not in message


def test_from_records_empty() -> None:
    with pytest.raises(DataError, match="no records"):
        dataset_from_records([])


def test_from_records_require_labels() -> None:
    with pytest.raises(DataError, match="label"):
        dataset_from_records([{"func": "x"}], require_labels=True)


# ---------------------------------------------------------------- properties

_CHARS = st.one_of(
    st.sampled_from(list("\n\r\t \",'\\;{}[]:\ufeff\u2028\x85")),
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
)
_CODE = st.text(alphabet=_CHARS, min_size=1, max_size=40).filter(lambda s: s.strip() != "")
_ID = st.text(alphabet=_CHARS, min_size=1, max_size=12)
_RECORD_LISTS = st.lists(
    st.tuples(_ID, _CODE, st.integers(0, 1)), min_size=1, max_size=8, unique_by=lambda t: t[0]
)


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(triples=_RECORD_LISTS, ensure_ascii=st.booleans(), bom=st.booleans())
def test_round_trip_through_every_format(
    tmp_path_factory: pytest.TempPathFactory,
    triples: list[tuple[str, str, int]],
    ensure_ascii: bool,
    bom: bool,
) -> None:
    root = tmp_path_factory.mktemp("roundtrip")
    records = [{"id": i, "func": code, "target": label} for i, code, label in triples]
    prefix = BOM if bom else b""
    files = {
        "d.jsonl": jsonl(records, ensure_ascii=ensure_ascii),
        "d.json": json_array(records, ensure_ascii=ensure_ascii),
        "d.csv": csv_text(records),
        "d.tsv": csv_text(records, delimiter="\t"),
    }
    for name, text in files.items():
        ds = load_dataset(write(root / name, prefix + text.encode("utf-8")))
        assert [(s.id, s.code, s.label) for s in ds] == triples, name
        assert ds.skipped == ()


_FRAGMENTS = st.sampled_from(
    [
        b"{",
        b"}",
        b"[",
        b"]",
        b'"func"',
        b'"code"',
        b'"target"',
        b'"label"',
        b'"id"',
        b'"lang"',
        b'"pair"',
        b'"cwe"',
        b":",
        b",",
        b'"x"',
        b'"c++"',
        b'"cobol"',
        b"0",
        b"1",
        b"2",
        b"-1",
        b"0.5",
        b"1e999",
        b"NaN",
        b"null",
        b"true",
        b'""',
        b'" "',
        b"\n",
        b"\r\n",
        b"\t",
        b" ",
        b'"',
        b"\xff",
        b"\xc3",
        b"\xef\xbb\xbf",
        b"func",
        b"target",
        b"id",
        b"\\",
        b"\\u12",
        b"{}",
        b"[]",
        b'{"func": "int x;", "target": 1}',
    ]
)
_JUNK = st.one_of(st.binary(max_size=200), st.lists(_FRAGMENTS, max_size=40).map(b"".join))


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=_JUNK,
    suffix=st.sampled_from([".jsonl", ".json", ".csv", ".tsv", ".txt", ""]),
    fmt=st.sampled_from([None, "jsonl", "json", "csv"]),
    skip_invalid=st.booleans(),
    require_labels=st.booleans(),
)
def test_random_bytes_raise_only_data_error(
    tmp_path_factory: pytest.TempPathFactory,
    data: bytes,
    suffix: str,
    fmt: str | None,
    skip_invalid: bool,
    require_labels: bool,
) -> None:
    path = write(tmp_path_factory.mktemp("junk") / f"junk{suffix}", data)
    try:
        ds = load_dataset(path, fmt=fmt, skip_invalid=skip_invalid, require_labels=require_labels)
    except DataError as exc:
        message = str(exc)
        assert message and "\n" not in message
        assert message.startswith(str(path))
    else:
        assert len(ds) > 0
        assert all(isinstance(s.code, str) and s.code.strip() for s in ds)
        assert all(s.label in (0, 1, None) for s in ds)


def test_a_json_array_loads_in_linear_time(tmp_path: Path) -> None:
    """20k tiny records as a JSON array cost about what they cost as JSONL (line numbers used
    to be counted from the start of the file for every record: quadratic)."""
    import time

    records = [{"id": str(i), "func": "int f(void) { return 0; }", "target": i % 2}
               for i in range(20_000)]  # fmt: skip
    array = tmp_path / "a.json"
    array.write_text("[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n")
    lines = tmp_path / "a.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    seconds = {}
    for path in (lines, array, lines, array):  # each twice, the best of two
        started = time.perf_counter()
        assert len(load_dataset(str(path))) == 20_000
        took = time.perf_counter() - started
        seconds[path.suffix] = min(seconds.get(path.suffix, took), took)
    assert seconds[".json"] < 4 * seconds[".jsonl"], seconds


def test_a_bad_element_late_in_a_json_array_names_its_line(tmp_path: Path) -> None:
    body = ",\n".join(json.dumps({"id": str(i), "func": "int f;", "target": 0}) for i in range(50))
    path = tmp_path / "a.json"
    path.write_text("[\n" + body + ",\n{bad}\n]\n")
    with pytest.raises(DataError, match=r"a\.json:52: invalid JSON"):
        load_dataset(str(path))
