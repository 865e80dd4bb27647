"""SARIF 2.1.0 for GitHub code scanning (and any other SARIF consumer).

- ``tool.driver.rules``: one reporting descriptor per rule that produced a finding (id, a
  PascalCase name, short and full description, help text and URI, default level, tags with
  ``security`` first, ``precision`` from the rule's confidence and GitHub's
  ``security-severity`` score from its severity).
- ``results``: one per finding; ``ruleIndex`` points into the rules array; ``level`` from the
  severity (critical and high: ``error``, medium: ``warning``, low: ``note``); the audited
  model as the location (a URI relative to ``%SRCROOT%``, the working directory, when the model
  lies inside it; else an absolute ``file://`` URI), with ``region.startLine`` 1 because code
  scanning needs a line; ``partialFingerprints`` from the rule id and the target path only, so the
  same problem on the same model keeps its alert across runs and retrained models; the metric
  value and threshold in ``properties``.
- ``invocations``: exit code, start and end time, warnings as notifications. ``artifacts``: every
  audited file with its sha256.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from codeaudit import __version__
from codeaudit.report.model import Finding, Severity, normalise_target, to_jsonable
from codeaudit.report.text import json_safe

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/codeaudit/"
LEVELS = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
}
# GitHub maps security-severity to its labels: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium,
# 0.1-3.9 low. The middle of each band keeps codeaudit's severity.
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.5",
}
FINGERPRINT_KEY = "codeauditFinding/v1"


def _name(title: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", title)
    return "".join(w[:1].upper() + w[1:] for w in words) or "Rule"


def location_uri(target: str) -> tuple[str, str | None]:
    """(uri, uriBaseId): relative to %SRCROOT% (the working directory) when possible."""
    normalised = normalise_target(target)
    if normalised.startswith("/") or normalised.startswith("../") or normalised == "..":
        return Path(normalised).resolve().as_uri(), None
    return quote(normalised), "%SRCROOT%"


def fingerprint(finding: Finding) -> str:
    rule_id, target = finding.key
    return hashlib.sha256(f"{rule_id}\0{target}".encode()).hexdigest()[:32]


def _descriptor(finding: Finding) -> dict[str, Any]:
    full = finding.description or finding.title
    help_text = full + (f" See {finding.help_uri}" if finding.help_uri else "")
    help_markdown = full + (f" [Background]({finding.help_uri})" if finding.help_uri else "")
    descriptor: dict[str, Any] = {
        "id": finding.rule_id,
        "name": _name(finding.title),
        "shortDescription": {"text": finding.title},
        "fullDescription": {"text": full},
        "help": {"text": help_text, "markdown": help_markdown},
        "defaultConfiguration": {"level": LEVELS[finding.severity]},
        "properties": {
            "tags": ["security", *[t for t in finding.tags if t != "security"]],
            "precision": finding.confidence,
            "security-severity": SECURITY_SEVERITY[finding.severity],
            "severity": finding.severity.value,
        },
    }
    if finding.help_uri:
        descriptor["helpUri"] = finding.help_uri
    return descriptor


def _artifacts(header: Any) -> tuple[list[dict[str, Any]], dict[str, int]]:
    artifacts, index = [], {}
    for artifact in header.artifacts:
        uri, base = location_uri(artifact.path)
        if uri in index:
            continue
        location: dict[str, Any] = {"uri": uri}
        if base:
            location["uriBaseId"] = base
        entry: dict[str, Any] = {
            "location": location,
            "roles": ["analysisTarget" if artifact.role == "model" else "referencedOnCommandLine"],
            "properties": {"role": artifact.role},
        }
        if artifact.sha256:
            entry["hashes"] = {"sha-256": artifact.sha256}
        index[uri] = len(artifacts)
        artifacts.append(entry)
    return artifacts, index


def _srcroot() -> str:
    uri = Path.cwd().resolve().as_uri()
    return uri if uri.endswith("/") else uri + "/"


def sarif_document(result: Any) -> dict[str, Any]:
    header = result.header
    findings: tuple[Finding, ...] = tuple(getattr(result, "findings", ()))
    rule_index: dict[str, int] = {}
    rules: list[dict[str, Any]] = []
    for finding in findings:
        if finding.rule_id not in rule_index:
            rule_index[finding.rule_id] = len(rules)
            rules.append(_descriptor(finding))
    artifacts, artifact_index = _artifacts(header)
    results = []
    for finding in findings:
        uri, base = location_uri(finding.target)
        artifact_location: dict[str, Any] = {"uri": uri}
        if base:
            artifact_location["uriBaseId"] = base
        if uri in artifact_index:
            artifact_location["index"] = artifact_index[uri]
        results.append(
            {
                "ruleId": finding.rule_id,
                "ruleIndex": rule_index[finding.rule_id],
                "kind": "fail",
                "level": LEVELS[finding.severity],
                "message": {"text": finding.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": artifact_location,
                            "region": {"startLine": 1},
                        }
                    }
                ],
                "partialFingerprints": {FINGERPRINT_KEY: fingerprint(finding)},
                "properties": {
                    "metric": finding.metric,
                    "value": to_jsonable(finding.value),
                    "threshold": to_jsonable(finding.threshold),
                    "severity": finding.severity.value,
                    "confidence": finding.confidence,
                    "check": finding.command or header.command,
                },
            }
        )
    gate = header.gate
    invocation: dict[str, Any] = {
        "executionSuccessful": True,
        "exitCode": gate.exit_code if gate is not None else 0,
        "startTimeUtc": (gate.started if gate is not None and gate.started else header.created),
        "endTimeUtc": (gate.finished if gate is not None and gate.finished else header.created),
    }
    from codeaudit.report.document import all_warnings

    warnings = all_warnings(result)
    if warnings:
        invocation["toolExecutionNotifications"] = [
            {"level": "warning", "message": {"text": w}} for w in warnings
        ]
    run_properties: dict[str, Any] = {"command": header.command}
    if header.threads is not None:
        run_properties["threads"] = header.threads.count
    if gate is not None:
        run_properties["failOn"] = gate.fail_on
        run_properties["rulesEvaluated"] = gate.rules_evaluated
        if gate.baseline is not None:
            run_properties["baseline"] = {
                "path": gate.baseline.path,
                "sha256": gate.baseline.sha256,
                "suppressed": gate.baseline.suppressed,
            }
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "codeaudit",
                "version": header.version or __version__,
                "semanticVersion": header.version or __version__,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "automationDetails": {"id": f"codeaudit/{header.command}/"},
        "originalUriBaseIds": {"%SRCROOT%": {"uri": _srcroot()}},
        "artifacts": artifacts,
        "invocations": [invocation],
        "results": results,
        "columnKind": "unicodeCodePoints",
        "properties": run_properties,
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render_sarif(result: Any) -> str:
    return (
        json_safe(json.dumps(sarif_document(result), indent=2, ensure_ascii=False, allow_nan=False))
        + "\n"
    )
