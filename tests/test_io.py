from __future__ import annotations

from pathlib import Path

import pytest

from codeaudit.errors import OutputError
from codeaudit.io import atomic_write, atomic_write_text, check_output_path, sha256_file


def test_atomic_write_refuses_to_clobber_without_force(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("precious")
    with pytest.raises(OutputError, match="exists"):
        atomic_write_text(target, "new")
    assert target.read_text() == "precious"
    atomic_write_text(target, "new", force=True)
    assert target.read_text() == "new"


def test_failed_write_leaves_no_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"

    def explode(handle) -> None:  # type: ignore[no-untyped-def]
        handle.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, explode)
    assert list(tmp_path.iterdir()) == []


def test_output_checks(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "x.pt", force=False)
    with pytest.raises(OutputError, match="is a directory"):
        check_output_path(tmp_path, force=True)


def test_sha256_of_directory_changes_with_content(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("1")
    first = sha256_file(tmp_path)
    (tmp_path / "a").write_text("2")
    assert sha256_file(tmp_path) != first
