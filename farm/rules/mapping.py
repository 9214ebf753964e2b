"""Mapping rules (docs/keep-compatibility.md#mapping-rules): a table of rows, matched against an
alert's attributes; the first matching row's other columns become fields of the alert.

`matchers` is a list of groups: attributes within a group are ANDed, groups are ORed. A rule is
considered only if some group's attributes all exist on the alert. A row matches if any group
matches it; a group matches if, for each attribute, the row's cell is `*`, or the cell as a regex
is found in the alert's value (its first SEARCH_CHARS characters), or the two are equal. Every
rule runs, in descending priority.

Attribute paths are Keep's: dotted names walk maps, `@@` stands for a literal dot in a name, and
`source` means the first source. Cells are compiled once, when the rule file is loaded; the
first matching row for a combination of attribute values is remembered (rows never change while
farm runs), so a repeated alert costs one dictionary lookup per rule.

Deliberate differences: a `*` cell matches every value (in Keep it is handed to re.search, which
rejects it, and the mapping of that alert stops); a cell that is not a valid regex is compared
for equality only (Keep: same failure); a non-string value is compared for equality (Keep: a
TypeError makes the group fail).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import orjson

from farm.rules import SEARCH_CHARS

CACHE_LIMIT = 65_536
_ANY, _NONE = "any", "none"


def attribute_path(attribute: str) -> tuple[str, ...]:
    """'labels.a@@b' -> ('labels', 'a.b')."""
    return tuple(part.replace("@@", ".") for part in attribute.strip().split("."))


def getter(path: tuple[str, ...]):
    """A function alert -> value of `path`, as `resolve`, specialised once per attribute."""
    if len(path) == 1 and path != ("source",):
        key = path[0]
        return lambda alert: alert.get(key)
    return lambda alert: resolve(alert, path)


def resolve(alert: dict, path: tuple[str, ...]) -> object:
    """Keep's get_nested_attribute over a plain alert dict."""
    if path == ("source",):
        source = alert.get("source")
        if isinstance(source, list) and source:
            return source[0]
    value: object = alert
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


class Cell:
    """One row's cell for one matcher attribute, compiled."""

    __slots__ = ("value", "regex", "kind")

    def __init__(self, value: object):
        self.value = value
        self.regex = None
        if value is None:
            self.kind = _NONE
        elif value == "*":
            self.kind = _ANY
        else:
            self.kind = "value"
            if isinstance(value, str):
                try:
                    self.regex = re.compile(value)
                except re.error:
                    self.regex = None  # compared for equality only

    def matches(self, alert_value: object) -> bool:
        kind = self.kind
        if kind is _ANY:
            return True
        if kind is _NONE:
            return alert_value is None
        if self.regex is not None and isinstance(alert_value, str) and \
                self.regex.search(alert_value[:SEARCH_CHARS]) is not None:
            return True
        return alert_value == self.value


@dataclass
class Row:
    cells: dict[str, Cell]           # matcher attribute (as written, stripped) -> cell
    enrichments: dict[str, object]   # what the row sets when it is the first match
    raw: dict[str, object]


class MappingRule:
    """A compiled mapping rule; `enrichments(alert)` says what it sets on that alert."""

    def __init__(self, name: str, priority: int, matchers: list[list[str]], rows: list[dict],
                 tenants: frozenset[str] | None = None, multi_level: bool = False,
                 new_property_name: str = "", prefix_to_remove: str = ""):
        self.name = name
        self.priority = priority
        self.tenants = tenants
        self.multi_level = multi_level
        self.new_property_name = new_property_name
        self.prefix_to_remove = prefix_to_remove
        self.groups = [tuple(attr.strip() for attr in group) for group in matchers if group]
        attributes = list(dict.fromkeys(a for group in self.groups for a in group))
        self.attributes = attributes
        self.getters = [getter(attribute_path(a)) for a in attributes]
        self.group_index = [tuple(attributes.index(a) for a in group) for group in self.groups]
        self.rows = [self._row(raw, matchers) for raw in rows]
        self._first_row: dict[tuple, int] = {}

    @staticmethod
    def _row(raw: dict, matchers: list[list[str]]) -> Row:
        cells = {attr.strip(): Cell(raw.get(attr.strip()))
                 for group in matchers for attr in group}
        enrichments = {}
        for key, value in raw.items():
            # Keep leaves out a column named like a matcher attribute, as written.
            if value is None or any(key in group for group in matchers):
                continue
            enrichments[key.strip()] = value.strip() if isinstance(value, str) else value
        return Row(cells, enrichments, raw)

    def enrichments(self, alert: dict) -> dict | None:
        """The fields this rule sets on `alert`, or None."""
        values = [get(alert) for get in self.getters]
        if not any(all(values[i] is not None for i in group) for group in self.group_index):
            return None
        if self.multi_level:
            return self._multi_level(values[0])
        index = self._first_match(values)
        if index < 0:
            return None
        return self.rows[index].enrichments or None

    def _first_match(self, values: list) -> int:
        key = tuple(values)
        try:
            return self._first_row[key]
        except KeyError:
            pass
        except TypeError:  # a list or map value: no memo
            return self._scan(values)
        index = self._scan(values)
        if len(self._first_row) >= CACHE_LIMIT:
            self._first_row.clear()
        self._first_row[key] = index
        return index

    def _scan(self, values: list) -> int:
        attributes = self.attributes
        for n, row in enumerate(self.rows):
            cells = row.cells
            for group in self.group_index:
                if all(cells[attributes[i]].matches(values[i]) for i in group):
                    return n
        return -1

    def _multi_level(self, value: object) -> dict | None:
        """One attribute holding a list (or a JSON list as text): each element's row, keyed by
        the element, under new_property_name."""
        if not value:
            return None
        if isinstance(value, str):
            value = parse_list(value)
        if not isinstance(value, list):
            return None
        key = self.attributes[0]
        found: dict[str, dict] = {}
        for element in value:
            if not isinstance(element, str):
                continue
            if self.prefix_to_remove:
                element = element.replace(self.prefix_to_remove, "")
            wanted = element.strip()
            for row in self.rows:
                if row.raw.get(key) == wanted:
                    found[element] = {k.strip(): v.strip() if isinstance(v, str) else v
                                      for k, v in row.raw.items() if v is not None}
                    break
        return {self.new_property_name: found} if found else None


def parse_list(text: str) -> object:
    """A list written as JSON, or with Python/JSON5-style single quotes."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
