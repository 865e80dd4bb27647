from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codeaudit.lang.subtokens import join_subtokens, split_identifier, subtokens


@pytest.mark.parametrize(
    ("name", "pieces"),
    [
        ("getUserName_v2", ["get", "##User", "##Name", "##_v", "##2"]),
        ("buf_len", ["buf", "##_len"]),
        ("HTTPServer", ["HTTP", "##Server"]),
        ("parseXMLFile", ["parse", "##XML", "##File"]),
        ("foo_rb", ["foo", "##_rb"]),
        ("__init__", ["__init", "##__"]),
        ("x", ["x"]),
        ("MAX_SIZE", ["MAX", "##_SIZE"]),
        ("sha256sum", ["sha", "##256", "##sum"]),
    ],
)
def test_subtokens_split_names_into_marked_pieces(name: str, pieces: list[str]) -> None:
    assert subtokens(name) == pieces


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True))
def test_split_is_lossless(name: str) -> None:
    assert "".join(split_identifier(name)) == name
    assert join_subtokens(subtokens(name)) == [name]


@given(st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True), max_size=8))
def test_word_boundaries_are_recoverable_from_a_flat_stream(names: list[str]) -> None:
    flat = [piece for name in names for piece in subtokens(name)]
    assert join_subtokens(flat) == names
