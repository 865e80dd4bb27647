"""Markdown reports (GitHub-flavoured): the verdict on top, then findings, then each check's
tables.

Figures: a Markdown file cannot hold images, and GitHub does not show ``data:`` image URIs, so
when the report is written to ``DIR/NAME.md`` each figure is written beside it as
``DIR/NAME.<figure>.png`` and linked by that relative name (copy or upload them together). On
standard output there is nowhere to put them: figures are left out with a note."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from codeaudit.report.document import Document, Figure, Paragraph, Table, build_document
from codeaudit.report.text import printable

# Markdown's punctuation that can start markup (emphasis, code, links, images, HTML, tables,
# headings, strikethrough; parentheses only matter after a bracket, which is escaped) and the
# characters GitHub's autolinks start from (``:`` of ``https://``, ``@`` of an e-mail address,
# the ``.`` of ``www.``): backslash-escaped, each shows as written.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~!])")
_AUTOLINK = re.compile(r"(:(?=//)|(?<=\w)@(?=\w))")  # the ":" of "https://", an address's "@"
_WWW = re.compile(r"(?i)\b(www)\.")
_ENTITY = re.compile(r"&(?=#?\w+;)")  # &amp; &#60; would show as the character they name
# A link target keeps the URL characters that cannot end or break it: parentheses, angle
# brackets, spaces, quotes and backslashes are percent-encoded.
_URL_SAFE = ":/?#@!$&'*+,;=%~-._"


def md_escape(text: str) -> str:
    """Text that Markdown shows as written: no emphasis, links, autolinks, images, HTML or table
    breaks, and terminal control characters made visible (:func:`printable`)."""
    flat = printable(" ".join(str(text).split()), one_line=True)
    text = _AUTOLINK.sub(r"\\\1", _SPECIAL.sub(r"\\\1", flat))
    return _ENTITY.sub(r"\\&", _WWW.sub(r"\1\\.", text))


def md_url(url: str) -> str:
    """A link target that cannot break out of ``(...)``: everything outside plain URL
    characters percent-encoded."""
    return quote(str(url), safe=_URL_SAFE)


def _table(table: Table) -> list[str]:
    lines = []
    if table.title:
        lines += [f"### {md_escape(table.title)}", ""]
    numeric = table.numeric or (False,) * len(table.columns)
    lines.append("| " + " | ".join(md_escape(c) or " " for c in table.columns) + " |")
    lines.append("| " + " | ".join("---:" if n else "---" for n in numeric) + " |")
    for row in table.rows:
        lines.append("| " + " | ".join(md_escape(cell) for cell in row) + " |")
    if table.note:
        lines += ["", f"*{md_escape(table.note)}*"]
    return [*lines, ""]


def _figure(figure: Figure, link: str | None) -> list[str]:
    if link is None:
        return [
            f"*{md_escape(figure.title)}: write the report to a .md file to get this figure "
            "(it is saved beside the report).*",
            "",
        ]
    lines = [f"![{md_escape(figure.alt)}]({quote(link)})", ""]
    if figure.caption:
        lines += [f"*{md_escape(figure.caption)}*", ""]
    return lines


def render_document(document: Document, figure_link: Callable[[Figure], str] | None) -> str:
    out = [f"# {md_escape(document.title)}", ""]
    out += [f"**{md_escape(document.status)}.** {md_escape(document.verdict)}", ""]
    out += [" · ".join(f"{md_escape(k)}: {md_escape(v)}" for k, v in document.meta), ""]
    out += ["## Findings", ""]
    if document.findings_table is None:
        out += ["No findings.", ""]
    else:
        out += _table(document.findings_table)
        helps = [(f.rule_id, f.help_uri) for f in document.findings if f.help_uri]
        if helps:
            seen = dict(helps)
            out += [
                "Background: "
                + ", ".join(f"[{md_escape(rule)}]({md_url(uri)})" for rule, uri in seen.items()),
                "",
            ]
    for section in document.sections:
        title = section.title + (f" ({section.status})" if section.status else "")
        out += [f"## {md_escape(title)}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                text = md_escape(block.text)
                out += [f"> {text}" if block.emphasis else text, ""]
            elif isinstance(block, Table):
                out += _table(block)
            elif isinstance(block, Figure):
                usable = figure_link is not None and block.png is not None
                out += _figure(block, figure_link(block) if usable else None)
    if document.warnings:
        out += ["## Warnings", ""]
        out += [f"- {md_escape(w)}" for w in document.warnings] + [""]
    for table in (document.inputs, document.settings):
        if table is not None:
            out += [f"## {md_escape(table.title or '')}", ""]
            out += _table(Table(table.columns, table.rows, None, table.numeric, table.note))
    return "\n".join(out).rstrip() + "\n"


def render_markdown(result: Any) -> str:
    """The Markdown report for standard output (figures left out)."""
    return render_document(build_document(result, figures=False), None)


def render_markdown_file(result: Any, name: str) -> tuple[str, list[tuple[str, bytes]]]:
    """The Markdown text for a report file named ``name`` (no directory) and its figures as
    (file name beside the report, PNG bytes)."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    document = build_document(result, figures=True)
    figures: list[tuple[str, bytes]] = []
    used: set[str] = set()

    def link(figure: Figure) -> str:
        base = f"{stem}.{figure.slug}"
        candidate, n = f"{base}.png", 2
        while candidate in used:
            candidate, n = f"{base}-{n}.png", n + 1
        used.add(candidate)
        assert figure.png is not None
        figures.append((candidate, figure.png))
        return candidate

    text = render_document(document, link)
    return text, figures
