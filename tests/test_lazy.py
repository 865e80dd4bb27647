"""Lazy package exports: a name resolves from its module on first use, others raise."""

from __future__ import annotations

import subprocess
import sys

import pytest

from codeaudit.lazy import lazy_exports


def test_a_name_resolves_from_its_module_and_others_raise() -> None:
    getattr_ = lazy_exports("pkg", {"dumps": "json", "missing": "json"})
    import json

    assert getattr_("dumps") is json.dumps
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'nope'"):
        getattr_("nope")
    with pytest.raises(AttributeError):
        getattr_("missing")  # listed, but its module does not define it


def test_packages_import_their_submodules_on_first_use_only() -> None:
    code = (
        "import sys, codeaudit.models as m\n"
        "assert 'codeaudit.models.registry' not in sys.modules\n"
        "assert 'torch' not in sys.modules\n"
        "m.ARCHITECTURES\n"
        "assert 'codeaudit.models.registry' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
