"""Reading labelled code from JSONL, a JSON array, or CSV.

Every problem is reported as one line naming the file and the line (or array element) where it
is, e.g. ``train.jsonl:12: label 2 is not 0 or 1 (field 'target')``. With ``skip_invalid`` a bad
record is left out instead, and counted with its reason in :attr:`Dataset.skipped`; nothing is
dropped silently.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from codeaudit.data.options import DataConfig
from codeaudit.data.samples import Dataset, Sample, Skipped
from codeaudit.errors import DataError, LanguageError
from codeaudit.io import check_input_file, sha256_bytes

CODE_FIELDS = ("func", "code", "source")
LABEL_FIELDS = ("target", "label", "vul")
FORMATS = ("jsonl", "json", "csv")

_BOM = b"\xef\xbb\xbf"
_TRUE_STRINGS = {"1", "true", "1.0"}
_FALSE_STRINGS = {"0", "false", "0.0"}


class _RecordError(Exception):
    """A problem with one record (skippable)."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_label(value: object, field: str) -> int:
    """0 or 1 from an int, bool, float or string spelling of them; _RecordError otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    if isinstance(value, float) and value in (0.0, 1.0):
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE_STRINGS:
            return 1
        if text in _FALSE_STRINGS:
            return 0
    raise _RecordError(f"label {shown(value)} is not 0 or 1 (field {shown(field)})")


SHOWN_CHARS = 60  # how much of a bad value an error message quotes


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value as an error message quotes it: repr for strings, JSON otherwise, cut to ``limit``
    characters (a 50 MB label must not become a 50 MB message)."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} chars)"
    try:
        text = json.dumps(value, ensure_ascii=True, default=repr)
    except (ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _unicode(value: str, field: str) -> str:
    """The string, if it is valid Unicode text. JSON can spell unpaired surrogates (\\ud800),
    which no UTF-8 file, terminal or report can hold: refused here rather than crashing later."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _RecordError(
                f"field {shown(field)} is not valid Unicode (unpaired surrogate "
                f"U+{ord(value[exc.start]):04X} at character {exc.start})"
            ) from None
    return value


def _optional_str(record: dict, field: str) -> str | None:
    value = record.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return _unicode(str(value), field)
    raise _RecordError(f"field {field!r} must be a string, got {type(value).__name__}")


class RecordParser:
    """Validates records one at a time and collects them into a :class:`Dataset`."""

    def __init__(
        self,
        name: str,
        *,
        code_field: str | None = None,
        label_field: str | None = None,
        require_labels: bool = True,
        skip_invalid: bool = False,
        default_lang: str | None = None,
    ) -> None:
        self.name = name
        self.code_field = code_field
        self.label_field = label_field
        self.require_labels = require_labels
        self.skip_invalid = skip_invalid
        self.default_lang = default_lang
        self._fields_known = False
        self.samples: list[Sample] = []
        self.skipped: list[Skipped] = []
        self._seen_ids: dict[str, int] = {}

    def _fail(self, line: int, message: str) -> DataError:
        return DataError(f"{self.name}:{line}: {message}")

    def _detect_fields(self, record: dict) -> None:
        """Pick the code and label fields from the first usable record (_RecordError if none)."""
        code_field = self.code_field
        if code_field is None:
            code_field = next((f for f in CODE_FIELDS if isinstance(record.get(f), str)), None)
            if code_field is None:
                fields = ", ".join(shown(str(f), 30) for f in list(record)[:10]) or "none"
                more = f" and {len(record) - 10} more" if len(record) > 10 else ""
                raise _RecordError(
                    f"no code field (looked for {', '.join(CODE_FIELDS)}; use --code-field); "
                    f"fields are: {fields}{more}"
                )
        label_field = self.label_field
        if label_field is None:
            label_field = next((f for f in LABEL_FIELDS if f in record), None)
            if label_field is None and self.require_labels:
                raise _RecordError(
                    f"no label field (looked for {', '.join(LABEL_FIELDS)}; use --label-field)"
                )
        self.code_field, self.label_field = code_field, label_field
        self._fields_known = True

    def add(self, record: object, line: int) -> None:
        """Validate one record; raise DataError, or skip it under ``skip_invalid``."""
        try:
            if not isinstance(record, dict):
                raise _RecordError(f"expected an object, got {type(record).__name__}")
            if not self._fields_known:
                self._detect_fields(record)
            self.samples.append(self._sample(record, line))
        except _RecordError as exc:
            if not self.skip_invalid:
                raise self._fail(line, str(exc)) from None
            self.skipped.append(Skipped(line, str(exc)))

    def skip(self, line: int, reason: str) -> None:
        """A record that could not even be decoded: fail, or count it under ``skip_invalid``."""
        if not self.skip_invalid:
            raise self._fail(line, reason)
        self.skipped.append(Skipped(line, reason))

    def _sample(self, record: dict, line: int) -> Sample:
        assert self.code_field is not None
        if self.code_field not in record:
            raise _RecordError(f"missing field {shown(self.code_field)}")
        code = record[self.code_field]
        if not isinstance(code, str):
            raise _RecordError(
                f"field {shown(self.code_field)} must be a string, got {type(code).__name__}"
            )
        if not code.strip():
            raise _RecordError(f"field {shown(self.code_field)} is empty")
        _unicode(code, self.code_field)
        label: int | None = None
        if self.label_field is not None:
            if record.get(self.label_field) in (None, ""):
                raise _RecordError(f"missing label (field {shown(self.label_field)})")
            label = parse_label(record[self.label_field], self.label_field)
        lang = _optional_str(record, "lang") or self.default_lang
        if lang is not None:
            from codeaudit.lang.languages import normalize_language

            try:
                lang = normalize_language(lang)
            except LanguageError as exc:
                raise _RecordError(str(exc)) from None
        cwe = _optional_str(record, "cwe")
        if cwe is not None and len(cwe) <= 32:
            cwe = sys.intern(cwe)  # a few distinct values shared by many samples
        pair = _optional_str(record, "pair")
        sample_id = _optional_str(record, "id") or f"{Path(self.name).name}:{line}"
        if sample_id in self._seen_ids:
            raise _RecordError(
                f"duplicate id {shown(sample_id)} (first at line {self._seen_ids[sample_id]})"
            )
        self._seen_ids[sample_id] = line
        return Sample(
            id=sample_id, code=code, label=label, lang=lang, cwe=cwe, pair=pair, line=line
        )

    def finish(self, *, path: str, sha256: str | None, fmt: str) -> Dataset:
        if not self.samples:
            detail = f" ({len(self.skipped)} invalid records skipped)" if self.skipped else ""
            raise DataError(f"{self.name}: no records{detail}")
        return Dataset(
            samples=tuple(self.samples),
            path=path,
            sha256=sha256,
            format=fmt,
            code_field=self.code_field or "",
            label_field=self.label_field,
            skipped=tuple(self.skipped),
        )


def _detect_format(path: Path, text: str) -> str:
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix in {".csv", ".tsv"}:
        return "csv"
    head = text.lstrip("\ufeff \t\r\n")[:1]
    if head == "[":
        return "json"
    if head == "{":
        return "jsonl"
    if suffix == ".json":
        return "json"
    return "csv"


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{name}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None


def _read_jsonl(lines: Iterable[bytes], parser: RecordParser) -> tuple[str, bool]:
    """Parse JSON Lines one line at a time (the file is never held whole); returns the sha256
    of every byte read and whether any line had content."""
    digest = hashlib.sha256()
    content = False
    for number, raw in enumerate(lines, start=1):
        digest.update(raw)
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if not raw.strip():
            continue
        content = True
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            parser.skip(number, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})")
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            parser.skip(number, f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        except RecursionError:
            parser.skip(number, "invalid JSON: nested too deeply")
            continue
        except ValueError as exc:  # e.g. integers beyond Python's digit limit
            parser.skip(number, f"invalid JSON: {_first_line(exc)}")
            continue
        parser.add(record, number)
    return digest.hexdigest(), content


def _read_json_array(name: str, text: str, parser: RecordParser) -> None:
    decoder = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    if text[pos : pos + 1] != "[":
        raise DataError(f"{name}:1: expected a JSON array of records")

    # Line numbers are counted forward from the last one asked for (offsets only grow, but an
    # error may point back inside the element just read): linear in the file, where counting
    # from the start for every record made a large array quadratic.
    counted = [0, 1]  # offset counted up to, line number there

    def line_at(offset: int) -> int:
        at, line = counted
        if offset < at:
            return line - text.count("\n", offset, at)
        line += text.count("\n", at, offset)
        counted[:] = [offset, line]
        return line

    pos += 1
    element = 0
    expect_value = True
    while True:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos >= len(text):
            raise DataError(f"{name}:{line_at(pos)}: invalid JSON: unterminated array")
        char = text[pos]
        if char == "]" and (element == 0 or not expect_value):
            pos += 1
            break
        if not expect_value:
            if char != ",":
                raise DataError(f"{name}:{line_at(pos)}: invalid JSON: expected ',' or ']'")
            pos += 1
            expect_value = True
            continue
        element += 1
        try:
            record, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{name}:{line_at(exc.pos)}: invalid JSON: {exc.msg} (element {element})"
            ) from None
        except RecursionError:
            raise DataError(f"{name}:{line_at(pos)}: invalid JSON: nested too deeply") from None
        except ValueError as exc:  # e.g. integers beyond Python's digit limit
            raise DataError(f"{name}:{line_at(pos)}: invalid JSON: {_first_line(exc)}") from None
        parser.add(record, line_at(pos))
        pos = end
        expect_value = False
    rest = text[pos:]
    if rest.strip():
        pos += len(rest) - len(rest.lstrip())
        raise DataError(f"{name}:{line_at(pos)}: invalid JSON: extra data after the array")


def _read_csv(name: str, text: str, parser: RecordParser, delimiter: str) -> None:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise DataError(f"{name}:1: invalid CSV header: {exc}") from None
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        raise DataError(f"{name}:1: duplicate column names in the CSV header")
    previous_end = reader.line_num
    while True:
        start = previous_end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            parser.skip(start, f"invalid CSV: {exc}")
            previous_end = reader.line_num
            continue
        previous_end = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            parser.skip(start, f"expected {len(header)} columns, found {len(row)}")
            continue
        parser.add(dict(zip(header, row, strict=True)), start)


def load_dataset(
    path: str | Path,
    *,
    code_field: str | None = None,
    label_field: str | None = None,
    require_labels: bool = True,
    skip_invalid: bool = False,
    default_lang: str | None = None,
    fmt: str | None = None,
) -> Dataset:
    """Read a data file into a :class:`Dataset`, validating every record.

    ``code_field``/``label_field`` override the auto-detected fields; with ``require_labels``
    False a file without labels is accepted (labels are then None); ``default_lang`` applies to
    records without a ``lang`` field; ``fmt`` forces ``jsonl``, ``json`` or ``csv``.
    """
    p = check_input_file(path, "data file", error=DataError)
    name = str(path)
    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"{name}: unknown data format {fmt!r} (use {', '.join(FORMATS)})")
    parser = RecordParser(
        name,
        code_field=code_field,
        label_field=label_field,
        require_labels=require_labels,
        skip_invalid=skip_invalid,
        default_lang=default_lang,
    )
    sha256, fmt = parse_file(p, name, parser, fmt)
    return parser.finish(path=name, sha256=sha256, fmt=fmt)


def dataset_from_records(
    records: Sequence[object],
    *,
    name: str = "<memory>",
    code_field: str | None = None,
    label_field: str | None = None,
    require_labels: bool = False,
    default_lang: str | None = None,
) -> Dataset:
    """A data set from dicts in the file schema, validated exactly as a file is."""
    parser = RecordParser(
        name,
        code_field=code_field,
        label_field=label_field,
        require_labels=require_labels,
        default_lang=default_lang,
    )
    for index, record in enumerate(records, start=1):
        parser.add(record, index)
    return parser.finish(path=name, sha256=None, fmt="memory")


def load_data(path: str, options: DataConfig, *, require_labels: bool) -> Dataset:
    """:func:`load_dataset` with a command's :class:`~codeaudit.data.options.DataConfig`."""
    return load_dataset(
        path,
        code_field=options.code_field,
        label_field=options.label_field,
        require_labels=require_labels,
        skip_invalid=options.skip_invalid,
        default_lang=options.lang,
    )


def parse_file(p: Path, name: str, parser: RecordParser, fmt: str | None) -> tuple[str, str]:
    """Feed the records of the file at ``p`` to ``parser`` (JSONL streamed, JSON arrays and CSV
    read whole); returns the file's sha256 and its format (``fmt``, or detected)."""
    try:
        with open(p, "rb") as handle:
            head = handle.read(8192)
            if not head.strip() and not handle.read(1 << 16).strip() and _only_space(handle):
                raise DataError(f"{name}: empty file, no records")
            if b"\0" in head:
                raise DataError(f"{name}: binary file (NUL byte), expected JSONL, JSON or CSV text")
            fmt = fmt or _detect_format(p, head[:4096].decode("utf-8", "ignore"))
            handle.seek(0)
            if fmt == "jsonl":
                # Streamed: the samples are held, the file's bytes and lines are not.
                sha256, content = _read_jsonl(handle, parser)
                if not content:
                    raise DataError(f"{name}: empty file, no records")
            else:
                data = handle.read()
                sha256 = sha256_bytes(data)
                if fmt == "json":
                    _read_json_array(name, _decode(name, data), parser)
                else:
                    delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
                    _read_csv(name, _decode(name, data), parser, delimiter)
    except OSError as exc:
        raise DataError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return sha256, fmt


def _only_space(handle: BinaryIO) -> bool:
    """Whether the rest of the file is whitespace (read in blocks, never held whole)."""
    while block := handle.read(1 << 20):
        if block.strip():
            return False
    return True
