"""The hostile-input corpus: one table entry per case, each with its expected outcome.

A case builds one hostile input in a fresh directory (a data file, a model file or directory, an
output path that must not be clobbered) and names the input slot it replaces. It runs through
every command that has that slot (``data``: each command's data file; ``model``: every command
that loads a model), or the commands it names. Its expectation is either exit 2 with one stderr
line matching a regex, or a documented warning in the JSON report with exit 0 or 1.

``MARKER`` is the file a code-execution payload would create: cases that plant one check that it
does not exist afterwards (the test checks that nothing at all appeared next to the inputs).
"""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import shutil
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.harness import World

MARKER = "PAYLOAD_RAN"
Built = str | dict[str, str]
Builder = Callable[[Path, World], Built]


@dataclass(frozen=True)
class Expect:
    code: int | tuple[int, ...] = 2
    stderr: str | None = None  # regex the one stderr line must match (exit 2)
    warning: str | None = None  # regex one of the report's warnings must match (exit 0/1)
    report: Callable[[dict], None] | None = None  # more checks on the JSON report


@dataclass(frozen=True)
class Case:
    id: str
    build: Builder
    expect: Expect | Mapping[str, Expect]
    slot: str = "data"  # "data", "model", a slot name (members, ...), or "none"
    commands: tuple[str, ...] | None = None  # default: every command with the slot
    extra: tuple[str, ...] = ()  # appended to the command line; "{path}" is the built path
    needs_unreadable: bool = False  # skip where a mode-000 file is still readable (root)
    slow: bool = False
    may_change: tuple[str, ...] = ()  # inputs the command may rewrite (a cache directory)

    def expectation(self, command: str) -> Expect:
        if isinstance(self.expect, Expect):
            return self.expect
        return self.expect[command]


OK = (0, 1)  # ran: exit 0, or 1 when a rule fires


def error(regex: str) -> Expect:
    return Expect(2, stderr=regex)


# -- data builders --------------------------------------------------------------------------------


def _write(path: Path, content: str | bytes) -> str:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def _lines(records: list[Any]) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def jsonl(*bad: Any, at: int = 1, name: str = "bad.jsonl", n: int = 12) -> Builder:
    """A valid labelled file with ``bad`` (records or raw lines) inserted at line ``at``."""

    def build(d: Path, w: World) -> str:
        records: list[Any] = list(w.records(n))
        records[at - 1 : at - 1] = list(bad)
        return _write(d / name, _lines(records))

    return build


def raw(content: str | bytes, name: str = "bad.jsonl") -> Builder:
    return lambda d, w: _write(d / name, content)


def records_with(change: Callable[[list[dict]], list[dict]], name: str = "bad.jsonl") -> Builder:
    return lambda d, w: _write(d / name, _lines(change(w.records(12))))


def _set_all(field_: str, value: Any) -> Callable[[list[dict]], list[dict]]:
    return lambda rs: [{**r, field_: value} for r in rs]


def _huge_line(d: Path, w: World, *, valid: bool) -> str:
    """A record of about 50 MB on one line (made at test time, never committed)."""
    path = d / "huge.jsonl"
    body = '  total = total + buf[i] * 3; log_value(total, "x");\n'
    code = "int huge(char *buf) {\n  int total = 0;\n" + body * (50_000_000 // len(body)) + "}\n"
    with open(path, "w", encoding="utf-8") as handle:
        for record in w.records(12):
            handle.write(json.dumps(record) + "\n")
        line = json.dumps({"id": "huge", "func": code, "target": 1})
        handle.write((line if valid else line[:-2]) + "\n")
    return str(path)


def _fifo(d: Path, w: World) -> str:
    path = d / "fifo.jsonl"
    os.mkfifo(path)
    return str(path)


def _unreadable(d: Path, w: World) -> str:
    path = Path(jsonl()(d, w))
    path.chmod(0)
    return str(path)


def _unparseable(d: Path, w: World) -> str:
    rs = w.records(12)
    rs[0]["func"] = '}{)(*&^%$#@! int [[[ "unterminated \x00 \u202e\U0001f600 /* never closed'
    rs[1]["func"] = "def f(x):\n    return x if x else [y for y in x\n"  # Python, labelled C
    rs[2] = {**rs[2], "lang": "java", "func": "class { void m( { int[] a = new int[; } } }"}
    rs[3] = {**rs[3], "lang": "python", "func": "def (:\n\tpass\n  return\n\x0c)"}
    rs[4] = {**rs[4], "lang": "cpp", "func": 'template<<<class T>>> R"x(never closed'}
    return _write(d / "garbage.jsonl", _lines(rs))


def _long_function(d: Path, w: World) -> str:
    rs = w.records(12)
    lines = "".join(f"  v{i} = v{i} + s[{i % 7}];\n" for i in range(20_000))
    rs[0]["func"] = "int long_fn(char *s) {\n" + lines + "  return 0;\n}\n"
    return _write(d / "long.jsonl", _lines(rs))


def _pair(change: Callable[[list[dict]], list[dict]], n: int = 12) -> Builder:
    def build(d: Path, w: World) -> dict[str, str]:
        members = _write(d / "members.jsonl", _lines(change(w.records(n, seed=7))))
        nonmembers = _write(d / "nonmembers.jsonl", _lines(change(w.records(n, seed=8))))
        return {"members": members, "nonmembers": nonmembers}

    return build


def _identical(d: Path, w: World) -> dict[str, str]:
    path = _write(d / "same.jsonl", _lines(w.records(12)))
    return {"members": path, "nonmembers": path}


# -- model builders -------------------------------------------------------------------------------


class TouchOnUnpickle:
    """Unpickling this creates a file: proof that a payload ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def _payload(w: World) -> dict[str, Any]:
    import torch

    return torch.load(w.inputs["model"], weights_only=True)


def checkpoint(change: Callable[[dict[str, Any], Path], None], name: str = "bad.pt") -> Builder:
    """The world's checkpoint, loaded, changed by ``change(payload, dir)``, saved with torch."""

    def build(d: Path, w: World) -> str:
        import torch

        payload = copy.deepcopy(_payload(w))
        change(payload, d)
        torch.save(payload, d / name)
        return str(d / name)

    return build


def _bytes_of_model(change: Callable[[bytes], bytes]) -> Builder:
    return lambda d, w: _write(d / "bad.pt", change(Path(w.inputs["model"]).read_bytes()))


def _raw_pickle(d: Path, w: World) -> str:
    return _write(d / "bad.pt", pickle.dumps({"format": TouchOnUnpickle(d / MARKER)}, protocol=2))


def _zip_bomb(d: Path, w: World, numel: int = 1 << 24) -> str:
    """A checkpoint whose deflated tensor record inflates ~1000-fold on load (64 MiB from a
    66 KB file here; the same file with numel 805306368 is 3 MB and asks for 3 GiB)."""
    import torch

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(1000)}, buffer)
    small = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    path = d / "bomb.pt"
    with zipfile.ZipFile(path, "w") as out:
        for info in small.infolist():
            data = small.read(info.filename)
            if info.filename.endswith("data.pkl"):
                count = b"J" + struct.pack("<i", numel)
                data = data.replace(b"M\xe8\x03tq", count + b"tq").replace(
                    b"K\x00M\xe8\x03\x85", b"K\x00" + count + b"\x85"
                )
            if info.filename.endswith("data/0"):
                entry = zipfile.ZipInfo(info.filename)
                entry.compress_type = zipfile.ZIP_DEFLATED
                with out.open(entry, "w", force_zip64=True) as handle:
                    block = bytes(1 << 24)
                    for _ in range(numel * 4 // len(block)):
                        handle.write(block)
                continue
            out.writestr(info, data)
    return str(path)


def _bare_state_dict(d: Path, w: World) -> str:
    import torch

    torch.save(_payload(w)["state_dict"], d / "bare.pt")
    return str(d / "bare.pt")


def _codexglue_bin(d: Path, w: World) -> str:
    """The world's Hugging Face classifier saved the way CodeXGLUE saves it: a bare model.bin."""
    import torch
    from safetensors.torch import load_file

    weights = Path(w.hf_dir) / "model.safetensors"
    state = (
        load_file(str(weights))
        if weights.is_file()
        else torch.load(Path(w.hf_dir) / "pytorch_model.bin", weights_only=True)
    )
    torch.save({"encoder." + k: v for k, v in state.items()}, d / "model.bin")
    return str(d / "model.bin")


def _hf(change: Callable[[Path], None]) -> Builder:
    def build(d: Path, w: World) -> str:
        target = d / "hf"
        shutil.copytree(w.hf_dir, target)
        change(target)
        return str(target)

    return build


def _hf_config(**values: Any) -> Callable[[Path], None]:
    def change(target: Path) -> None:
        config = json.loads((target / "config.json").read_text())
        config.update(values)
        (target / "config.json").write_text(json.dumps(config))

    return change


def _hf_small_embedding(target: Path) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(target / "model.safetensors")
    for key in list(weights):
        if "word_embeddings" in key:
            weights[key] = weights[key][:50].contiguous()
    save_file(weights, target / "model.safetensors", metadata={"format": "pt"})
    _hf_config(vocab_size=50)(target)


def _hf_pickle_bin(target: Path) -> None:
    import torch
    from safetensors.torch import load_file

    weights: dict[str, Any] = dict(load_file(target / "model.safetensors"))
    weights["note"] = TouchOnUnpickle(target.parent / MARKER)
    (target / "model.safetensors").unlink()
    torch.save(weights, target / "pytorch_model.bin")


def _hf_remote_code(target: Path) -> None:
    marker = target.parent / MARKER
    (target / "evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
        "from transformers import RobertaConfig as EvilConfig\n"
        "from transformers import RobertaForSequenceClassification as EvilModel\n"
    )
    _hf_config(
        auto_map={
            "AutoConfig": "evil.EvilConfig",
            "AutoModelForSequenceClassification": "evil.EvilModel",
        }
    )(target)


def _truncate_file(name: str, keep: float = 0.5) -> Callable[[Path], None]:
    def change(target: Path) -> None:
        data = (target / name).read_bytes()
        (target / name).write_bytes(data[: int(len(data) * keep)])

    return change


def _cache_with_pickle(d: Path, w: World) -> dict[str, str]:
    """Feature-cache entries, under the keys the audit will look up, whose arrays are pickled
    objects: they must be recomputed, never unpickled."""
    import numpy as np

    from codeaudit.data.loader import load_dataset
    from codeaudit.io import sha256_file
    from codeaudit.membership.features import cache_key

    cache = d / "cache"
    cache.mkdir()
    evil = np.array([TouchOnUnpickle(d / MARKER)], dtype=object)
    max_len = _payload(w)["max_len"]
    for slot in ("members", "nonmembers"):
        data = load_dataset(w.inputs[slot])
        key = cache_key(sha256_file(w.inputs["model"]), data.sha256, max_len, data.ids[0])
        with open(cache / f"features-{key}.npz", "wb") as handle:
            np.savez(handle, ids=evil, labels=evil, logits=evil)
    return {"cache": str(cache)}


def _set(key: str, value: Any) -> Callable[[dict[str, Any], Path], None]:
    return lambda payload, d: payload.__setitem__(key, value)


def _config(**values: Any) -> Callable[[dict[str, Any], Path], None]:
    return lambda payload, d: payload["model_config"].update(values)


def _smaller_vocab(payload: dict[str, Any], d: Path) -> None:
    payload["tokenizer"]["itos"] = payload["tokenizer"]["itos"][:-3]


def _nan_weight(payload: dict[str, Any], d: Path) -> None:
    payload["state_dict"]["classifier.weight"][0, 0] = float("nan")


def _pickled_metadata(payload: dict[str, Any], d: Path) -> None:
    payload["metadata"]["note"] = TouchOnUnpickle(d / MARKER)


def _numpy_metadata(payload: dict[str, Any], d: Path) -> None:
    import numpy as np

    payload["metadata"]["accuracy"] = np.float64(0.5)


def _existing(name: str, content: bytes = b"user data, keep me") -> Builder:
    return lambda d, w: _write(d / name, content)


def _directory(d: Path, w: World) -> str:
    (d / "adir").mkdir()
    return str(d / "adir")


# -- the corpus -----------------------------------------------------------------------------------

LABEL = r"bad\.jsonl:1: label"
CASES: list[Case] = [
    # malformed records
    Case(
        "json-malformed-line", jsonl('{"func": broken', at=2), error(r"bad\.jsonl:2: invalid JSON")
    ),
    Case(
        "json-truncated-at-eof",
        lambda d, w: _write(d / "bad.jsonl", _lines(w.records(12)) + '{"func": "int f(void) {'),
        error(r"bad\.jsonl:13: invalid JSON: Unterminated string"),
    ),
    Case(
        "json-array-unterminated",
        raw('[{"func": "int f();", "target": 1},\n {"func": "int g();", "target": 0}', "bad.json"),
        error(r"bad\.json:2: invalid JSON: unterminated array"),
    ),
    Case(
        "json-not-an-array",
        raw('"just a string"\n', "bad.json"),
        error(r"bad\.json:1: expected a JSON array of records"),
    ),
    Case("record-not-an-object", jsonl("[1, 2, 3]"), error(r"bad\.jsonl:1: expected an object")),
    Case(
        "csv-unbalanced-quote",
        raw('func,target\n"int f(void) {,1\nint g();,0\n', "bad.csv"),
        error(r"bad\.csv:2: invalid CSV"),
    ),
    Case(
        "csv-wrong-column-count",
        raw("func,target\nint f();,1,surplus\n", "bad.csv"),
        error(r"bad\.csv:2: expected 2 columns, found 3"),
    ),
    Case(
        "csv-duplicate-header",
        raw("func,func,target\na,b,1\n", "bad.csv"),
        error(r"bad\.csv:1: duplicate column names"),
    ),
    Case("csv-header-only", raw("func,target\n", "bad.csv"), error(r"bad\.csv: no records")),
    # wrong types and labels
    Case("label-2", jsonl({"func": "int f();", "target": 2}), error(LABEL + r" 2 is not 0 or 1")),
    Case("label-minus-1", jsonl({"func": "int f();", "target": -1}), error(LABEL + r" -1 ")),
    Case("label-yes", jsonl({"func": "int f();", "target": "yes"}), error(LABEL + r" 'yes' ")),
    Case("label-0.5", jsonl({"func": "int f();", "target": 0.5}), error(LABEL + r" 0\.5 ")),
    Case("label-NaN", jsonl('{"func": "int f();", "target": NaN}'), error(LABEL + r" NaN ")),
    Case(
        "label-null",
        jsonl({"func": "int f();", "target": None}),
        error(r"bad\.jsonl:1: missing label \(field 'target'\)"),
    ),
    Case(
        "label-1MB-string",
        jsonl({"func": "int f();", "target": "y" * 1_000_000}),
        error(LABEL + r" 'y{60}'\.\.\. \(1000000 chars\) is not 0 or 1"),
    ),
    Case(
        "code-is-a-number",
        jsonl({"func": "int f();", "target": 1}, {"func": 42, "target": 0}, at=1),
        error(r"bad\.jsonl:2: field 'func' must be a string, got int"),
    ),
    Case(
        "code-is-a-list",
        jsonl({"func": ["int", "f"], "target": 0}, at=3),
        error(r"bad\.jsonl:3: field 'func' must be a string, got list"),
    ),
    Case("code-empty", jsonl({"func": "  \n", "target": 0}), error(r"field 'func' is empty")),
    Case(
        "code-missing-in-later-record",
        jsonl({"code_x": "int f();", "target": 0}, at=4),
        error(r"bad\.jsonl:4: missing field 'func'"),
    ),
    Case(
        "no-code-field",
        raw(_lines([{"source_code": "int f();", "target": 1}])),
        error(r"bad\.jsonl:1: no code field .*fields are: 'source_code', 'target'"),
    ),
    Case(
        "no-label-field",
        records_with(lambda rs: [{"id": r["id"], "func": r["func"]} for r in rs]),
        {
            "train": error(r"bad\.jsonl:1: no label field"),
            "predict": Expect(0, report=lambda r: (r["metrics"] is None) or _fail(r)),
            "membership": error(r"bad\.jsonl:1: no label field"),
            "harden": error(r"bad\.jsonl:1: no label field"),
            "audit": error(r"bad\.jsonl:1: no label field"),
            "poison": error(r"bad\.jsonl:1: no label field"),
            "backdoor": error(r"bad\.jsonl:1: no label field"),
        },
    ),
    Case(
        "lang-unsupported",
        records_with(_set_all("lang", "cobol")),
        error(r"bad\.jsonl:1: unsupported language 'cobol'"),
    ),
    Case(
        "lang-wrong-type",
        records_with(_set_all("lang", ["c"])),
        error(r"bad\.jsonl:1: field 'lang' must be a string, got list"),
    ),
    Case(
        "duplicate-ids",
        records_with(lambda rs: [{**r, "id": "same"} for r in rs]),
        error(r"bad\.jsonl:2: duplicate id 'same' \(first at line 1\)"),
    ),
    Case(
        "unpaired-surrogate-in-id",
        jsonl('{"id": "x\\ud800", "func": "int f();", "target": 1}'),
        error(r"bad\.jsonl:1: field 'id' is not valid Unicode \(unpaired surrogate U\+D800"),
    ),
    Case(
        "unpaired-surrogate-in-code",
        jsonl('{"func": "int f() { return \\udfff; }", "target": 1}', at=5),
        error(r"bad\.jsonl:5: field 'func' is not valid Unicode"),
    ),
    Case(
        "json-nested-too-deeply",
        jsonl('{"func": ' + "[" * 100_000 + "]" * 100_000 + ', "target": 1}'),
        error(r"bad\.jsonl:1: invalid JSON: nested too deeply"),
    ),
    Case(
        "json-huge-integer",
        jsonl('{"func": "int f();", "target": ' + "9" * 5000 + "}"),
        error(r"bad\.jsonl:1: invalid JSON: Exceeds the limit"),
    ),
    # empty, binary, non-UTF-8
    Case("empty-file", raw(b""), error(r"bad\.jsonl: empty file, no records")),
    Case("whitespace-only", raw(b"  \n\t\r\n\n"), error(r"bad\.jsonl: empty file")),
    Case(
        "latin1-in-jsonl",
        lambda d, w: _write(
            d / "bad.jsonl",
            _lines(w.records(12)[:1]).encode()
            + b'{"func": "caf\xe9", "target": 1}\n'
            + _lines(w.records(12)[1:]).encode(),
        ),
        error(r"bad\.jsonl:2: not valid UTF-8 \(byte 0xe9\)"),
    ),
    Case(
        "latin1-in-csv",
        raw(b'func,target\n"int f();",1\n"caf\xe9",0\n', "bad.csv"),
        error(r"bad\.csv:3: not valid UTF-8 \(byte 0xe9"),
    ),
    Case(
        "utf16-file",
        raw(_lines([{"func": "int f();", "target": 1}]).encode("utf-16"), "bad.jsonl"),
        error(r"bad\.jsonl: binary file \(NUL byte\)"),
    ),
    Case(
        "binary-file",
        raw(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4),
        error(r"bad\.jsonl: binary file"),
    ),
    Case(
        "high-bytes-no-nul",
        raw(bytes(range(128, 256)) * 8 + b"\n"),
        error(r"bad\.jsonl:1: not valid UTF-8 \(byte 0x80\)"),
    ),
    # the file itself
    Case("directory-as-data", _directory, error(r"adir: is a directory, expected a data file")),
    Case(
        "missing-data-file",
        lambda d, w: str(d / "nope.jsonl"),
        error(r"nope\.jsonl: data file not found"),
    ),
    Case("fifo-as-data", _fifo, error(r"fifo\.jsonl: not a regular file")),
    Case("dev-zero-as-data", lambda d, w: "/dev/zero", error(r"/dev/zero: not a regular file")),
    Case(
        "unreadable-data",
        _unreadable,
        error(r"bad\.jsonl: permission denied"),
        needs_unreadable=True,
    ),
    Case(
        "50MB-malformed-line",
        lambda d, w: _huge_line(d, w, valid=False),
        error(r"huge\.jsonl:13: invalid JSON"),
        commands=("predict",),
    ),
    Case(
        "50MB-function",
        lambda d, w: _huge_line(d, w, valid=True),
        {
            "predict": Expect(
                0,
                warning=r"1 of 13 samples truncated at 48 tokens",
                report=lambda r: r["truncated"] == 1 or _fail(r),
            ),
        },
        commands=("predict",),
    ),
    Case(
        "50MB-training-function",
        lambda d, w: _huge_line(d, w, valid=True),
        Expect(0, warning=r"1 of 13 training samples truncated at 48"),
        commands=("train",),
        slow=True,
    ),
    Case(
        "long-function-truncated-and-counted",
        _long_function,
        {
            "predict": Expect(0, warning=r"1 of 12 samples truncated at 48 tokens"),
            "train": Expect(0, warning=r"1 of 12 training samples truncated at 48"),
            "membership": Expect(OK, warning=r"1 of 12 members truncated at 48 tokens"),
            "harden": Expect(OK, warning=r"1 of 12 members truncated at 48 tokens"),
        },
        commands=("predict", "train", "membership"),
    ),
    Case(
        "code-tree-sitter-cannot-parse",
        _unparseable,
        {c: Expect(OK) for c in ("predict", "train", "membership")},
        commands=("predict", "train", "membership"),  # audit runs the same membership code
    ),
    # data sets that cannot answer the question
    Case(
        "members-identical-to-nonmembers",
        _identical,
        Expect(OK, warning=r"12 non-member functions are identical to a member"),
        slot="none",
        commands=("membership",),
    ),
    Case(
        "single-class-sets",
        _pair(_set_all("target", 0)),
        {
            "membership": error(r"every function has label 0; the audit needs both"),
            "harden": error(r"every function has label 0; the audit needs both"),
            "audit": error(r"every function has label 0"),
        },
        slot="none",
        commands=("membership", "audit"),
    ),
    Case(
        "single-class-training-data",
        records_with(_set_all("target", 1)),
        error(r"bad\.jsonl: the training data hold only label 1"),
        commands=("train",),
    ),
    Case(
        "fewer-samples-than-folds",
        _pair(lambda rs: rs),
        error(r"--folds 20: only 12 members"),
        slot="none",
        commands=("membership", "audit"),
        extra=("--folds", "20"),
    ),
    Case(
        "fewer-than-ten-members",
        _pair(lambda rs: rs[:6]),
        error(r"members\.jsonl: 6 members: a membership audit needs at least 10"),
        slot="none",
        commands=("membership", "audit"),
    ),
    Case(
        "one-training-sample",
        records_with(lambda rs: rs[:1]),
        error(r"bad\.jsonl: the training data hold only label 0"),
        commands=("train",),
    ),
    Case(
        "contradictory-duplicates",
        records_with(
            lambda rs: rs + [{**r, "id": r["id"] + "x", "target": 1 - r["target"]} for r in rs]
        ),
        Expect(0, warning=r"24 training samples are token-identical to one with the other label"),
        commands=("train",),
    ),
    Case(
        "lang-flag-unsupported",
        lambda d, w: w.inputs["data"],
        error(r"unsupported language 'cobol'"),
        extra=("--lang", "cobol"),
    ),
    # checkpoints
    Case(
        "checkpoint-truncated",
        _bytes_of_model(lambda b: b[: len(b) // 2]),
        error(r"bad\.pt: truncated or corrupted checkpoint"),
        slot="model",
    ),
    Case(
        "checkpoint-corrupted",
        _bytes_of_model(lambda b: b[:300] + bytes(len(b) - 600) + b[-300:]),
        error(r"bad\.pt: .*corrupted"),
        slot="model",
    ),
    Case("checkpoint-empty", raw(b"", "bad.pt"), error(r"bad\.pt: empty file"), slot="model"),
    Case(
        "checkpoint-is-text",
        raw('{"not": "a checkpoint"}', "bad.pt"),
        error(r"bad\.pt: not a PyTorch checkpoint"),
        slot="model",
    ),
    Case(
        "data-file-as-model",
        lambda d, w: w.inputs["data"],
        error(r"test\.jsonl: not a PyTorch checkpoint"),
        slot="model",
    ),
    Case(
        "checkpoint-bare-state-dict",
        _bare_state_dict,
        error(
            r"bare\.pt: a bare state dict whose keys \(embedding\.weight.* fit no known layout; "
            r"tried: CodeXGLUE"
        ),
        slot="model",
    ),
    Case(
        "modelbin-without-base",
        _codexglue_bin,
        error(r"model\.bin: a bare state dict \(CodeXGLUE defect detection layout\).* pass --base"),
        slot="model",
    ),
    Case(
        "modelbin-base-not-in-the-local-cache",
        _codexglue_bin,
        error(r"--base nobody/no-such-model: no such directory, and no Hugging Face model"),
        slot="model",
        extra=("--base", "nobody/no-such-model"),
    ),
    Case(
        "checkpoint-wrong-format",
        lambda d, w: _torch_save(d, [1, 2, 3]),
        error(r"bad\.pt: not a codeaudit checkpoint \(holds a list"),
        slot="model",
    ),
    Case(
        "checkpoint-pickle-payload",
        checkpoint(_pickled_metadata),
        error(r"bad\.pt: refused: .*could run code on load; pass --trust-checkpoint only if"),
        slot="model",
    ),
    Case(
        "raw-pickle-payload",
        _raw_pickle,
        error(r"bad\.pt: refused: the checkpoint .*could run code"),
        slot="model",
    ),
    Case(
        "checkpoint-numpy-objects",
        checkpoint(_numpy_metadata),
        error(r"bad\.pt: refused: .*needs arbitrary pickled objects \(numpy"),
        slot="model",
    ),
    Case(
        "checkpoint-zip-bomb",
        _zip_bomb,
        error(r"bomb\.pt: record '.*data/0' is compressed"),
        slot="model",
        commands=("predict",),
    ),
    Case(
        "checkpoint-newer-format",
        checkpoint(_set("format_version", 99)),
        error(r"bad\.pt: checkpoint format version 99 is newer"),
        slot="model",
    ),
    Case(
        "checkpoint-format-version-string",
        checkpoint(_set("format_version", "1")),
        error(r"bad\.pt: invalid checkpoint format version '1'"),
        slot="model",
    ),
    Case(
        "checkpoint-unknown-arch",
        checkpoint(_set("arch", "cnn")),
        error(r"bad\.pt: unknown architecture 'cnn'"),
        slot="model",
    ),
    Case(
        "checkpoint-config-huge-dims",
        checkpoint(_config(embed_dim=10**9)),
        error(r"bad\.pt: weight 'embedding\.weight' has shape \(\d+, 8\), .* expects"),
        slot="model",
    ),
    Case(
        "checkpoint-config-million-layers",
        checkpoint(_config(num_layers=10**6)),
        error(r"bad\.pt: .*num_layers=1000000 does not fit weights holding \d+ tensors"),
        slot="model",
    ),
    Case(
        "checkpoint-config-negative-dim",
        checkpoint(_config(hidden_dim=-4)),
        error(r"bad\.pt: invalid bigru configuration: hidden_dim -4 < 1"),
        slot="model",
    ),
    Case(
        "checkpoint-tokenizer-mismatch",
        checkpoint(_smaller_vocab),
        error(r"bad\.pt: weight 'embedding\.weight' .*tokenizer and model do not match"),
        slot="model",
    ),
    Case(
        "checkpoint-nan-weights",
        checkpoint(_nan_weight),
        error(r"bad\.pt: weight 'classifier\.weight' contains NaN"),
        slot="model",
    ),
    Case(
        "checkpoint-max-len-0",
        checkpoint(_set("max_len", 0)),
        error(r"bad\.pt: checkpoint max_len 0 is not a positive length"),
        slot="model",
    ),
    Case(
        "checkpoint-three-labels",
        checkpoint(_set("labels", ["a", "b", "c"])),
        error(r"bad\.pt: checkpoint labels must be two names"),
        slot="model",
    ),
    Case(
        "checkpoint-unsupported-language",
        checkpoint(_set("default_lang", "cobol")),
        error(r"bad\.pt: unsupported language 'cobol'"),
        slot="model",
    ),
    Case(
        "model-missing",
        lambda d, w: str(d / "nope.pt"),
        error(r"nope\.pt: model not found"),
        slot="model",
    ),
    Case("model-fifo", _fifo, error(r"fifo\.jsonl: not a regular file"), slot="model"),
    # Hugging Face directories
    Case(
        "hf-directory-without-config",
        _directory,
        error(r"adir: not a Hugging Face model directory \(no config\.json\)"),
        slot="model",
    ),
    Case(
        "hf-missing-weights",
        _hf(lambda t: (t / "model.safetensors").unlink()),
        error(r"hf: no model weights"),
        slot="model",
    ),
    Case(
        "hf-missing-tokenizer",
        _hf(lambda t: (t / "tokenizer.json").unlink()),
        error(r"hf: no tokenizer files"),
        slot="model",
    ),
    Case(
        "hf-tokenizer-larger-than-embedding",
        _hf(_hf_small_embedding),
        error(r"hf: tokenizer has \d+ tokens but the model only 50: tokenizer and model do not"),
        slot="model",
    ),
    Case(
        "hf-config-not-json",
        _hf(lambda t: (t / "config.json").write_text("{not json")),
        error(r"hf/config\.json: not valid JSON"),
        slot="model",
    ),
    Case(
        "hf-config-huge-model",
        _hf(_hf_config(hidden_size=2**16, intermediate_size=2**18)),
        error(r"hf/config\.json: describes a model of [\d,]+ parameters but the weights hold"),
        slot="model",
    ),
    Case(
        "hf-config-million-layers",
        _hf(_hf_config(num_hidden_layers=10**6)),
        error(r"hf/config\.json: configuration num_hidden_layers=1000000 does not fit"),
        slot="model",
    ),
    Case(
        "hf-weights-truncated",
        _hf(_truncate_file("model.safetensors")),
        error(r"hf/model\.safetensors: unreadable safetensors file"),
        slot="model",
    ),
    Case(
        "hf-pickled-weights-payload",
        _hf(_hf_pickle_bin),
        error(r"hf/pytorch_model\.bin: refused: .*could run code"),
        slot="model",
    ),
    Case(
        "hf-remote-code-is-never-run",
        _hf(_hf_remote_code),
        Expect(0),
        slot="model",
        commands=("predict",),
    ),
    # outputs
    Case(
        "output-exists-without-force",
        _existing("taken.pt"),
        error(r"taken\.pt: model file exists \(pass --force to overwrite\)"),
        slot="none",
        commands=("train",),
        extra=("-o", "{path}"),
    ),
    Case(
        "report-exists-without-force",
        _existing("taken.json"),
        error(r"taken\.json: report file exists \(pass --force to overwrite\)"),
        slot="none",
        commands=("predict", "membership", "audit"),
        extra=("--report", "{path}"),
    ),
    Case(
        "output-is-a-directory",
        lambda d, w: (d / "r.json").mkdir() or str(d / "r.json"),
        error(r"r\.json: report path is a directory"),
        slot="none",
        commands=("predict", "membership", "train"),
        extra=("--report", "{path}"),
    ),
    Case(
        "output-directory-missing",
        lambda d, w: str(d / "missing" / "r.json"),
        error(r"r\.json: directory .*missing does not exist"),
        slot="none",
        extra=("--report", "{path}"),
    ),
    Case(
        "report-unknown-extension",
        lambda d, w: str(d / "r.xlsx"),
        error(r"r\.xlsx: cannot tell the report format"),
        slot="none",
        extra=("--report", "{path}"),
    ),
    Case(
        "report-dir-is-a-file",
        _existing("reports"),
        error(r"--report-dir .*reports: exists and is not a directory"),
        slot="none",
        commands=("audit",),
        extra=("--report-dir", "{path}"),
    ),
    Case(
        "report-dir-not-created-when-the-audit-fails",
        lambda d, w: str(d / "new-reports"),
        error(r"nope\.jsonl: data file not found"),
        slot="none",
        commands=("audit",),
        extra=("--report-dir", "{path}", "--nonmembers", "{path}/../nope.jsonl"),
    ),
    Case(
        "cache-dir-is-a-file",
        _existing("cache"),
        error(r"cache: cache directory exists and is not a directory"),
        slot="none",
        commands=("membership", "audit"),
        extra=("--cache-dir", "{path}"),
    ),
    Case(
        "cache-entry-with-pickled-arrays",
        _cache_with_pickle,
        Expect(OK),
        slot="none",
        commands=("membership",),
        extra=("--cache-dir", "{cache}"),
        may_change=("cache",),
    ),
    Case(
        "baseline-not-json",
        raw(b"\xff\xfe\x00 not json", "base.json"),
        error(r"base\.json: cannot read baseline report"),
        slot="none",
        commands=("predict", "membership", "audit"),
        extra=("--baseline", "{path}"),
    ),
    Case(
        "rules-file-not-toml",
        raw("[[rule]\nid = ", "rules.toml"),
        error(r"rules\.toml"),
        slot="none",
        commands=("predict", "membership", "audit"),
        extra=("--rules", "{path}"),
    ),
]


# codeaudit poison: settings and data it cannot make a poisoned set from
CASES += [
    Case(
        "poison-no-victim-label-samples",
        records_with(_set_all("target", 0)),
        error(r"no victim-label samples: none of the 12 samples has label 1"),
        commands=("poison",),
    ),
    Case(
        "poison-no-place-for-the-trigger",
        records_with(
            lambda rs: [{**r, "func": f"int f{i}(void) {{ return 0; }}"} for i, r in enumerate(rs)]
        ),
        error(r"only 0 of 6 victim-label samples have a place for the identifier trigger"),
        commands=("poison",),
    ),
    Case(
        "poison-rate-zero",
        lambda d, w: w.inputs["data"],
        error(r"Invalid value for '--rate'"),
        slot="none",
        commands=("poison",),
        extra=("--rate", "0"),
    ),
    Case(
        "poison-rate-above-one",
        lambda d, w: w.inputs["data"],
        error(r"Invalid value for '--rate'"),
        slot="none",
        commands=("poison",),
        extra=("--rate", "1.5"),
    ),
    Case(
        "poison-unknown-trigger-type",
        lambda d, w: w.inputs["data"],
        error(r"Invalid value for '--trigger-type': 'magic' is not one of"),
        slot="none",
        commands=("poison",),
        extra=("--trigger-type", "magic"),
    ),
    Case(
        "poison-identifier-trigger-is-a-keyword",
        lambda d, w: w.inputs["data"],
        error(r"identifier trigger 'while' is a reserved word in c"),
        slot="none",
        commands=("poison",),
        extra=("--trigger", "while"),
    ),
    Case(
        "poison-dead-code-trigger-malformed",
        lambda d, w: w.inputs["data"],
        error(r"dead-code trigger 'if \(0\) \{' is not one well-formed c statement"),
        slot="none",
        commands=("poison",),
        extra=("--trigger-type", "deadcode", "--trigger", "if (0) {{"),  # str.format-escaped
    ),
    Case(
        "poison-output-exists-without-force",
        _existing("taken.jsonl"),
        error(r"taken\.jsonl: output file exists \(pass --force to overwrite\)"),
        slot="none",
        commands=("poison",),
        extra=("-o", "{path}"),
    ),
    Case(
        "poison-manifest-exists-without-force",
        _existing("taken.manifest.json"),
        error(r"taken\.manifest\.json: manifest file exists \(pass --force to overwrite\)"),
        slot="none",
        commands=("poison",),
        extra=("--manifest", "{path}"),
    ),
    Case(
        "poison-trigger-already-in-the-data",
        records_with(
            lambda rs: [
                {**r, "func": r["func"].replace("return", "rb_trigger(); return")}
                if r["target"] == 0
                else r
                for r in rs
            ]
        ),
        Expect(0, warning=r"6 samples of the clean data already contain the trigger text"),
        commands=("poison",),
    ),
]


def _torch_save(d: Path, value: object) -> str:
    import torch

    torch.save(value, d / "bad.pt")
    return str(d / "bad.pt")


def _fail(report: dict) -> bool:
    raise AssertionError(f"unexpected report: {str(report)[:300]}")


@dataclass(frozen=True)
class Run:
    """One case through one command."""

    case: Case
    command: str
    id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", f"{self.case.id}[{self.command}]")


def expand(cases: list[Case], commands: Mapping[str, Any]) -> list[Run]:
    runs = []
    for case in cases:
        names = case.commands
        if names is None:
            if case.slot == "data":
                names = tuple(n for n, c in commands.items() if c.data_slot)
            elif case.slot == "model":
                names = tuple(n for n, c in commands.items() if c.model_slot)
            else:
                names = tuple(commands)
        runs += [Run(case, name) for name in names if name in commands]
    return runs


# Round two (issue 16): model files, and data, text, settings and outputs.
from tests.reliability.corpus_models2 import CASES as _MODELS2  # noqa: E402
from tests.reliability.corpus_outputs2 import CASES as _OUTPUTS2  # noqa: E402

CASES += _MODELS2 + _OUTPUTS2

# Round two (issue 16): functions over the rewriter's per-function budget.
from tests.reliability.corpus_rewrite3 import CASES as _REWRITE3  # noqa: E402

CASES += _REWRITE3
