"""SARIF 2.1.0 output, checked against a schema of the parts codeaudit uses and the rules GitHub
code scanning applies (required fields, ruleIndex consistency, levels, stable fingerprints)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from codeaudit.gate import GateSettings, apply_gate
from codeaudit.report import render
from codeaudit.report.model import Severity
from codeaudit.report.sarif import LEVELS, SECURITY_SEVERITY, location_uri
from tests.report.crafted import clean_membership_result, membership_result, predict_result

_TEXT = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
SARIF_SCHEMA = {
    "type": "object",
    "required": ["$schema", "version", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "$schema": {"type": "string", "pattern": "sarif-2\\.1\\.0"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results", "invocations"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name", "version", "informationUri", "rules"],
                                "properties": {
                                    "name": {"const": "codeaudit"},
                                    "informationUri": {"type": "string", "format": "uri"},
                                    "rules": {
                                        "type": "array",
                                        "items": {"$ref": "#/$defs/rule"},
                                    },
                                },
                            }
                        },
                    },
                    "results": {"type": "array", "items": {"$ref": "#/$defs/result"}},
                    "invocations": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["executionSuccessful", "exitCode"],
                            "properties": {
                                "exitCode": {"type": "integer"},
                                "startTimeUtc": {"type": "string"},
                                "endTimeUtc": {"type": "string"},
                            },
                        },
                    },
                    "artifacts": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["location"],
                            "properties": {
                                "hashes": {
                                    "type": "object",
                                    "properties": {
                                        "sha-256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}
                                    },
                                }
                            },
                        },
                    },
                },
            },
        },
    },
    "$defs": {
        "level": {"enum": ["none", "note", "warning", "error"]},
        "rule": {
            "type": "object",
            "required": [
                "id",
                "name",
                "shortDescription",
                "fullDescription",
                "help",
                "defaultConfiguration",
                "properties",
            ],
            "properties": {
                "id": {"type": "string"},
                "shortDescription": _TEXT,
                "fullDescription": _TEXT,
                "help": _TEXT,
                "helpUri": {"type": "string", "format": "uri"},
                "defaultConfiguration": {
                    "type": "object",
                    "required": ["level"],
                    "properties": {"level": {"$ref": "#/$defs/level"}},
                },
                "properties": {
                    "type": "object",
                    "required": ["tags", "security-severity", "precision"],
                    "properties": {
                        "tags": {
                            "type": "array",
                            "items": {"type": "string"},
                            "contains": {"const": "security"},
                        },
                        "security-severity": {"type": "string", "pattern": "^[0-9]+\\.[0-9]$"},
                        "precision": {"enum": ["very-high", "high", "medium", "low"]},
                    },
                },
            },
        },
        "result": {
            "type": "object",
            "required": [
                "ruleId",
                "ruleIndex",
                "level",
                "message",
                "locations",
                "partialFingerprints",
                "properties",
            ],
            "properties": {
                "ruleId": {"type": "string"},
                "ruleIndex": {"type": "integer", "minimum": 0},
                "level": {"$ref": "#/$defs/level"},
                "message": _TEXT,
                "locations": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["physicalLocation"],
                        "properties": {
                            "physicalLocation": {
                                "type": "object",
                                "required": ["artifactLocation", "region"],
                                "properties": {
                                    "artifactLocation": {
                                        "type": "object",
                                        "required": ["uri"],
                                        "properties": {"uri": {"type": "string", "minLength": 1}},
                                    },
                                    "region": {
                                        "type": "object",
                                        "required": ["startLine"],
                                        "properties": {
                                            "startLine": {"type": "integer", "minimum": 1}
                                        },
                                    },
                                },
                            }
                        },
                    },
                },
                "partialFingerprints": {
                    "type": "object",
                    "minProperties": 1,
                    "additionalProperties": {"type": "string"},
                },
                "properties": {
                    "type": "object",
                    "required": ["metric", "value", "threshold"],
                },
            },
        },
    },
}


def sarif(result) -> dict:  # type: ignore[no-untyped-def]
    document = json.loads(render(result, "sarif"))
    jsonschema.validate(
        document, SARIF_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return document


def test_sarif_structure_rule_index_and_levels() -> None:
    result = apply_gate(membership_result(), GateSettings(fail_on="high"))
    run = sarif(result)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    assert [r["ruleId"] for r in results] == [f.rule_id for f in result.findings]
    assert len({r["id"] for r in rules}) == len(rules)
    for res, finding in zip(results, result.findings, strict=True):
        rule = rules[res["ruleIndex"]]
        assert rule["id"] == res["ruleId"]
        assert res["level"] == LEVELS[finding.severity] == rule["defaultConfiguration"]["level"]
        assert rule["properties"]["security-severity"] == SECURITY_SEVERITY[finding.severity]
        assert res["message"]["text"] == finding.message
        assert res["properties"]["value"] == finding.value
        assert res["properties"]["threshold"] == finding.threshold
        assert rule["helpUri"] == finding.help_uri
        assert "OWASP-ML04:membership-inference" in rule["properties"]["tags"]
        location = res["locations"][0]["physicalLocation"]["artifactLocation"]
        assert location == {"uri": "models/model.pt", "uriBaseId": "%SRCROOT%", "index": 0}
    assert {r["level"] for r in results} == {"error", "warning"}
    assert run["invocations"][0]["exitCode"] == 1
    assert run["artifacts"][0]["hashes"]["sha-256"] == "ab" * 32
    assert run["artifacts"][0]["roles"] == ["analysisTarget"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].endswith("/")
    warnings = run["invocations"][0]["toolExecutionNotifications"]
    assert warnings[0]["message"]["text"].startswith("members (300)")


def test_level_mapping_covers_every_severity() -> None:
    assert LEVELS == {
        Severity.CRITICAL: "error",
        Severity.HIGH: "error",
        Severity.MEDIUM: "warning",
        Severity.LOW: "note",
    }
    assert set(SECURITY_SEVERITY) == set(Severity)
    # GitHub's bands: >= 9 critical, 7-8.9 high, 4-6.9 medium, < 4 low
    assert float(SECURITY_SEVERITY[Severity.CRITICAL]) >= 9
    assert 7 <= float(SECURITY_SEVERITY[Severity.HIGH]) < 9
    assert 4 <= float(SECURITY_SEVERITY[Severity.MEDIUM]) < 7
    assert 0 < float(SECURITY_SEVERITY[Severity.LOW]) < 4


def test_fingerprints_are_stable_across_runs_and_values() -> None:
    first = sarif(membership_result(best_auc=0.93))["runs"][0]["results"]
    second = sarif(membership_result(best_auc=0.71, tpr1=0.3))["runs"][0]["results"]
    by_rule = {r["ruleId"]: r["partialFingerprints"] for r in first}
    for r in second:
        assert r["partialFingerprints"] == by_rule[r["ruleId"]]
    assert len({json.dumps(r["partialFingerprints"]) for r in first}) == len(first)
    other = sarif(membership_result(target="models/other.pt"))["runs"][0]["results"]
    assert other[0]["partialFingerprints"] != by_rule[other[0]["ruleId"]]


def test_no_findings_is_still_valid_sarif() -> None:
    run = sarif(apply_gate(clean_membership_result(), GateSettings()))["runs"][0]
    assert run["results"] == [] and run["tool"]["driver"]["rules"] == []
    assert run["invocations"][0]["exitCode"] == 0
    run = sarif(predict_result(trusted_pickle=True))["runs"][0]
    assert run["results"][0]["ruleId"] == "CA-C001" and run["results"][0]["level"] == "error"


def test_location_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert location_uri("./models/a b.pt") == ("models/a%20b.pt", "%SRCROOT%")
    assert location_uri(str(tmp_path / "m.pt")) == ("m.pt", "%SRCROOT%")
    uri, base = location_uri("/opt/elsewhere/m.pt")
    assert uri == "file:///opt/elsewhere/m.pt" and base is None
    uri, base = location_uri("../up/m.pt")
    assert uri.startswith("file:///") and uri.endswith("/up/m.pt") and base is None


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda run: run["results"][0].pop("ruleIndex"),
        lambda run: run["results"][0].update(level="fatal"),
        lambda run: run["results"][0]["locations"][0]["physicalLocation"].pop("region"),
        lambda run: run["tool"]["driver"]["rules"][0].pop("shortDescription"),
        lambda run: run["tool"]["driver"]["rules"][0]["properties"]["tags"].remove("security"),
        lambda run: run["results"][0].update(partialFingerprints={}),
    ],
)
def test_the_schema_rejects_what_code_scanning_rejects(corrupt) -> None:  # type: ignore[no-untyped-def]
    document = json.loads(render(membership_result(), "sarif"))
    corrupt(document["runs"][0])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SARIF_SCHEMA)
