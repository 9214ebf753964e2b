"""The Mustache subset Keep's extraction rules use for `attribute`
(docs/keep-compatibility.md#extraction-rules).

Keep wraps an attribute that neither starts with "{{" nor ends with "}}" in "{{ }}", renders it
with chevron against the event and HTML-unescapes the result. farm compiles the template once and
renders it the same way: `{{ path }}`, `{{{ path }}}` and `{{& path }}` with dotted paths (a
number steps into a list), comments `{{! ... }}`; a missing, None or empty value renders as "",
0 and False as "0" and "False", anything else as `str()`. Sections and partials are rejected
when the rule is loaded.
"""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"\{\{(\{)?\s*([&!#^/>=]?)\s*(.*?)\s*(\})?\}\}", re.S)


class TemplateError(ValueError):
    """The template uses Mustache features this subset does not render."""


def wrap(attribute: str) -> str:
    """Keep's rule: wrap unless the attribute already starts with {{ or ends with }}."""
    if not attribute.startswith("{{") and not attribute.endswith("}}"):
        return "{{ " + attribute + " }}"
    return attribute


def _zero(value: object) -> bool:
    """0, 0.0 and False: chevron renders them instead of treating them as missing."""
    return isinstance(value, (int, float)) and value == 0


def _lookup(doc: object, path: tuple[str, ...]) -> object:
    scope = doc
    for key in path:
        if _zero(scope):
            return scope
        if isinstance(scope, dict):
            if key not in scope:
                return ""
            scope = scope[key]
        elif isinstance(scope, list):
            try:
                scope = scope[int(key)]
            except (ValueError, IndexError):
                return ""
        else:
            return ""
    return scope


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if _zero(value):
        return str(value)
    return str(value) if value else ""


def _escape(text: str) -> str:
    """chevron's escaping (Keep unescapes the whole result afterwards)."""
    return (text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            .replace(">", "&gt;"))


class Template:
    """A compiled template; `render(doc)` returns the text, HTML-unescaped as Keep does.
    Raises TemplateError when built from a template this subset cannot render."""

    def __init__(self, source: str):
        self.source = source
        parts: list = []  # str literals, or (path, escaped)
        pos = 0
        for tag in _TAG.finditer(source):
            if tag.start() > pos:
                parts.append(source[pos:tag.start()])
            pos = tag.end()
            triple, sigil, body, closing = tag.groups()
            if sigil == "!":
                continue
            if sigil and sigil != "&":
                raise TemplateError(f"Mustache tag {tag.group(0)!r} is not supported (only "
                                    "{{ path }}, {{{ path }}} and {{& path }})")
            if bool(triple) != bool(closing):
                raise TemplateError(f"unbalanced braces in {tag.group(0)!r}")
            if not body:
                raise TemplateError(f"empty tag {tag.group(0)!r}")
            parts.append((tuple(body.split(".")), not (triple or sigil == "&")))
        if pos < len(source):
            parts.append(source[pos:])
        if any(isinstance(p, str) and ("{{" in p or "}}" in p) for p in parts):
            raise TemplateError(f"unbalanced braces in template {source!r}")
        self._parts = parts
        # The common case, one escaped variable: unescape(escape(v)) == v, nothing to do.
        single = len(parts) == 1 and not isinstance(parts[0], str) and parts[0][1]
        self._single = parts[0][0] if single else None

    def render(self, doc: dict) -> str:
        if self._single is not None:
            return _text(_lookup(doc, self._single))
        out = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
            else:
                text = _text(_lookup(doc, part[0]))
                out.append(_escape(text) if part[1] else text)
        return html.unescape("".join(out))
