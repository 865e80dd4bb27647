"""Self-contained HTML reports: one file, inline CSS, no scripts, figures as base64 PNG
``data:`` URIs. Everything taken from results or inputs is HTML-escaped."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from codeaudit.report.document import Document, Figure, Paragraph, Table, build_document
from codeaudit.report.model import Severity

_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;
 background:#f6f7f9;color:#1d232b;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 32px 48px;background:#fff;min-height:100vh}
h1{font-size:1.6em;margin:0.2em 0 0.6em}
h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #d8dde3;padding-bottom:4px}
h3{font-size:1.02em;margin:1.3em 0 0.4em}
.verdict{border-left:8px solid #6b7683;background:#f0f2f5;padding:14px 18px;font-size:1.05em}
.verdict.fail{border-color:#c62828;background:#fdecea}
.verdict.pass{border-color:#2e7d32;background:#e8f5e9}
.verdict.warn{border-color:#ef6c00;background:#fff3e0}
.status{font-weight:700;letter-spacing:.04em;margin-right:.4em}
.meta{color:#5b6672;font-size:.9em}
table{border-collapse:collapse;margin:.4em 0 .2em;font-size:.9em}
th,td{border:1px solid #d8dde3;padding:4px 9px;vertical-align:top;text-align:left}
th{background:#eef1f4}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.note{color:#5b6672;font-size:.85em;margin:.2em 0 1em}
.sev{display:inline-block;border-radius:3px;padding:0 6px;color:#fff;font-weight:600;
 font-size:.85em}
.sev-critical{background:#7b1fa2}.sev-high{background:#c62828}
.sev-medium{background:#ef6c00}.sev-low{background:#1565c0}
.technical{border-left:3px solid #d8dde3;padding-left:12px;color:#333}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #d8dde3}
figcaption{color:#5b6672;font-size:.85em}
.warnings li{color:#8a5300}
code{font-size:.9em}
table.findings td:nth-child(-n+2){white-space:nowrap}
"""


def _table(
    table: Table, *, severity_column: int | None = None, css_class: str | None = None
) -> str:
    numeric = table.numeric or (False,) * len(table.columns)
    parts = []
    if table.title:
        parts.append(f"<h3>{escape(table.title)}</h3>")
    parts.append(f'<table class="{css_class}"><thead><tr>' if css_class else "<table><thead><tr>")
    parts += [f"<th>{escape(c)}</th>" for c in table.columns]
    parts.append("</tr></thead><tbody>")
    for row in table.rows:
        parts.append("<tr>")
        for i, cell in enumerate(row):
            if i == severity_column:
                parts.append(f'<td><span class="sev sev-{escape(cell)}">{escape(cell)}</span></td>')
            else:
                cls = ' class="num"' if i < len(numeric) and numeric[i] else ""
                parts.append(f"<td{cls}>{escape(cell)}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table>")
    if table.note:
        parts.append(f'<p class="note">{escape(table.note)}</p>')
    return "".join(parts)


def _figure(figure: Figure) -> str:
    if figure.png is None:
        return ""
    data = base64.b64encode(figure.png).decode("ascii")
    caption = f"<figcaption>{escape(figure.caption)}</figcaption>" if figure.caption else ""
    return (
        f"<figure><h3>{escape(figure.title)}</h3>"
        f'<img src="data:image/png;base64,{data}" alt="{escape(figure.alt)}">{caption}</figure>'
    )


def _state(document: Document) -> str:
    """The verdict box's colour: the gate's PASS/FAIL; with no gate (or --fail-on never) the
    worst finding's: red from high, amber below, grey for none (never green over a finding)."""
    if document.passed is not None:
        return "pass" if document.passed else "fail"
    if not document.findings:
        return "info"
    worst = max(f.severity.rank for f in document.findings)
    return "fail" if worst >= Severity.HIGH.rank else "warn"


def render_document(document: Document) -> str:
    state = _state(document)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(document.title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{escape(document.title)}</h1>",
        f'<p class="verdict {state}" id="verdict"><span class="status">'
        f"{escape(document.status)}</span>{escape(document.verdict)}</p>",
        '<p class="meta">'
        + " &middot; ".join(f"{escape(k)}: {escape(v)}" for k, v in document.meta)
        + "</p>",
        '<h2 id="findings">Findings</h2>',
    ]
    if document.findings_table is None:
        out.append("<p>No findings.</p>")
    else:
        out.append(_table(document.findings_table, severity_column=0, css_class="findings"))
        helps = {f.rule_id: f.help_uri for f in document.findings if f.help_uri}
        if helps:
            links = ", ".join(
                f'<a href="{escape(uri)}">{escape(rule)}</a>' for rule, uri in helps.items()
            )
            out.append(f'<p class="note">Background: {links}</p>')
    for section in document.sections:
        title = section.title + (f" ({section.status})" if section.status else "")
        out.append(f"<section><h2>{escape(title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Paragraph):
                cls = ' class="technical"' if block.emphasis else ""
                out.append(f"<p{cls}>{escape(block.text)}</p>")
            elif isinstance(block, Table):
                out.append(_table(block))
            elif isinstance(block, Figure):
                out.append(_figure(block))
        out.append("</section>")
    if document.warnings:
        out.append('<h2>Warnings</h2><ul class="warnings">')
        out += [f"<li>{escape(w)}</li>" for w in document.warnings]
        out.append("</ul>")
    for table in (document.inputs, document.settings):
        if table is not None:
            out.append(f"<h2>{escape(table.title or '')}</h2>")
            out.append(_table(Table(table.columns, table.rows, None, table.numeric, table.note)))
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def render_html(result: Any) -> str:
    return render_document(build_document(result, figures=True))
