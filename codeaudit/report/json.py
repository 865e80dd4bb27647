"""JSON rendering: the header fields, one object per input/output file (``model``, ``data``, ...)
with its path and sha256, then the command's results, warnings and findings."""

from __future__ import annotations

import json
from typing import Any

from codeaudit.report.model import to_jsonable
from codeaudit.report.text import json_safe


def render_json(result: Any) -> str:
    payload = to_jsonable(result)
    header = payload.pop("header", {})
    artifacts = header.pop("artifacts", [])
    document: dict[str, Any] = dict(header)
    for artifact in artifacts:
        document[artifact["role"]] = {"path": artifact["path"], "sha256": artifact["sha256"]}
    document.update(payload)
    return json_safe(json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)) + "\n"
