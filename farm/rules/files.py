"""Rule files: TOML with `[[extraction]]` and `[[mapping]]` tables, and CSV mapping tables.

`load_file(path)` reads one file and compiles every rule in it, returning the rules and one line
per problem (file, rule, key, what is wrong). Nothing here runs per alert.
"""

from __future__ import annotations

import csv
import re
import tomllib
from pathlib import Path

from farm.rules.condition import ConditionError, compile_condition
from farm.rules.extraction import ExtractionRule
from farm.rules.mapping import MappingRule
from farm.rules.template import Template, TemplateError, wrap

FILE_KEYS = ("extraction", "mapping")
EXTRACTION_KEYS = ("name", "description", "priority", "disabled", "pre", "attribute", "regex",
                   "condition", "tenants")
MAPPING_KEYS = ("name", "description", "priority", "disabled", "type", "matchers", "csv",
                "rows", "multi_level", "new_property_name", "prefix_to_remove", "tenants")
# Keep's column sizes for these fields.
MAX_ATTRIBUTE, MAX_REGEX = 255, 1024


class RuleProblem(ValueError):
    """One problem with one rule; the message names the key and what is allowed."""


def named(table: dict, allowed: tuple[str, ...]) -> str:
    """The name of a rule table whose keys are all in `allowed`. Raises RuleProblem."""
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise RuleProblem(f"unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RuleProblem("name is required (a non-empty string)")
    return name


def typed(table: dict, key: str, kind: type | tuple, default: object, what: str) -> object:
    """table[key] if it is a `kind` (`what` says so in words), or default when absent.
    Raises RuleProblem."""
    value = table.get(key, default)
    if value is default:
        return value
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RuleProblem(f"{key} must be {what}, got {value!r}")
    return value


def _common(table: dict, allowed: tuple[str, ...]) -> tuple[str, int, bool,
                                                            frozenset[str] | None]:
    name = named(table, allowed)
    typed(table, "description", str, None, "a string")
    priority = typed(table, "priority", int, 0, "a whole number")
    disabled = typed(table, "disabled", bool, False, "true or false")
    return name, priority, disabled, tenants_of(table)


def tenants_of(table: dict) -> frozenset[str] | None:
    """A rule's `tenants` (None: every tenant). Raises RuleProblem."""
    tenants = typed(table, "tenants", list, None, "a list of tenant names")
    if tenants is None:
        return None
    if not tenants or not all(isinstance(t, str) and t for t in tenants):
        raise RuleProblem("tenants must be a non-empty list of tenant names "
                          "(leave it out to mean every tenant)")
    return frozenset(tenants)


def extraction_rule(table: dict) -> tuple[ExtractionRule, bool]:
    """One [[extraction]] table -> (rule, disabled). Raises RuleProblem."""
    name, priority, disabled, tenants = _common(table, EXTRACTION_KEYS)
    attribute = table.get("attribute")
    if not isinstance(attribute, str) or not attribute.strip():
        raise RuleProblem("attribute is required: a field path (labels.instance) or a template "
                          "({{ labels.instance }})")
    if len(attribute) > MAX_ATTRIBUTE:
        raise RuleProblem(f"attribute is longer than Keep's {MAX_ATTRIBUTE} characters")
    try:
        template = Template(wrap(attribute))
    except TemplateError as exc:
        raise RuleProblem(f"attribute: {exc}") from None
    pattern = table.get("regex")
    if not isinstance(pattern, str) or not pattern:
        raise RuleProblem("regex is required: a Python regex with named groups, "
                          "like '(?P<host>[^:]+):(?P<port>\\d+)'")
    if len(pattern) > MAX_REGEX:
        raise RuleProblem(f"regex is longer than Keep's {MAX_REGEX} characters")
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise RuleProblem(f"regex {pattern!r} does not compile: {exc}") from None
    if not regex.groupindex:
        raise RuleProblem(f"regex {pattern!r} has no named group (?P<field>...), so it can "
                          f"never set a field")
    condition = typed(table, "condition", str, None, "a CEL expression (a string)")
    check = None
    if condition is not None and condition.strip() not in ("", "*"):
        try:
            check = compile_condition(condition)
        except ConditionError as exc:
            raise RuleProblem(f"condition {condition!r}: {exc}") from None
    pre = typed(table, "pre", bool, False, "true or false")
    rule = ExtractionRule(name=name, priority=priority, pre=pre, attribute=template,
                          regex=regex, condition=check, tenants=tenants)
    return rule, disabled


def mapping_rule(table: dict, folder: Path) -> tuple[MappingRule, bool]:
    """One [[mapping]] table -> (rule, disabled). Raises RuleProblem."""
    name, priority, disabled, tenants = _common(table, MAPPING_KEYS)
    kind = table.get("type", "csv")
    if kind != "csv":
        raise RuleProblem(f"type {kind!r} is not supported; only \"csv\" (Keep's topology "
                          f"mapping needs a topology store farm does not have)")
    matchers = table.get("matchers")
    if (not isinstance(matchers, list) or not matchers or not all(
            isinstance(group, list) and group and all(isinstance(a, str) and a.strip()
                                                      for a in group) for group in matchers)):
        raise RuleProblem('matchers must be a list of non-empty lists of attribute names, '
                          'like [["service", "region"], ["labels.pod"]] (inner lists ANDed, '
                          'outer ORed)')
    has_csv, has_rows = "csv" in table, "rows" in table
    if has_csv == has_rows:
        raise RuleProblem("give the table either as csv = \"file.csv\" (relative to this file) "
                          "or as rows = [{...}, ...], not both and not neither")
    if has_csv:
        csv_name = table["csv"]
        if not isinstance(csv_name, str) or not csv_name:
            raise RuleProblem("csv must be the name of a CSV file")
        rows = read_csv(folder / csv_name)
    else:
        rows = table["rows"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise RuleProblem("rows must be a list of tables (one per row)")
        rows = [{str(k): v for k, v in r.items()} for r in rows]
    if not rows:
        raise RuleProblem("the mapping table has no rows")
    multi = typed(table, "multi_level", bool, False, "true or false")
    new_property = typed(table, "new_property_name", str, "", "a field name")
    prefix = typed(table, "prefix_to_remove", str, "", "a string")
    columns = set().union(*(r.keys() for r in rows))
    missing = [a.strip() for g in matchers for a in g if a.strip() not in columns]
    if missing:
        raise RuleProblem(f"matcher attribute {missing[0]!r} is not a column of the table "
                          f"(columns: {', '.join(sorted(columns))})")
    if multi and (len(matchers) != 1 or len(matchers[0]) != 1 or not new_property):
        raise RuleProblem("a multi_level mapping needs exactly one matcher attribute "
                          "(matchers = [[\"attr\"]]) and a new_property_name")
    rule = MappingRule(name=name, priority=priority, matchers=matchers, rows=rows,
                       tenants=tenants, multi_level=multi, new_property_name=new_property,
                       prefix_to_remove=prefix)
    return rule, disabled


def read_csv(path: Path) -> list[dict]:
    """Rows of a CSV file with a header line, as Keep stores an uploaded table."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = reader.fieldnames
    except FileNotFoundError:
        raise RuleProblem(f"csv file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RuleProblem(f"csv file {path} cannot be read: {exc}") from None
    if not header:
        raise RuleProblem(f"csv file {path} has no header line")
    for number, row in enumerate(rows, 2):
        if None in row:
            raise RuleProblem(f"csv file {path} line {number} has more cells than the header")
    return rows


def read_toml(path: Path) -> tuple[dict, list[str]]:
    """A rule file's tables, or ({}, [the one line saying why it cannot be read])."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh), []
    except FileNotFoundError:
        return {}, [f"{path}: rule file does not exist"]
    except OSError as exc:
        return {}, [f"{path}: cannot be read: {exc}"]
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return {}, [f"{path}: not valid TOML: {exc}"]


def rule_label(path: Path, kind: str, number: int, table: object) -> str:
    """How a problem names its rule: file, table kind and number, and the rule's name."""
    label = f"{path}: [[{kind}]] #{number}"
    if isinstance(table, dict) and isinstance(table.get("name"), str):
        label += f" ({table['name']!r})"
    return label


def load_file(path: Path) -> tuple[list[ExtractionRule], list[MappingRule], list[str]]:
    """Compile one rule file. Returns (extraction rules, mapping rules, problems); disabled
    rules are left out."""
    data, problems = read_toml(path)
    if problems:
        return [], [], problems
    problems = [f"{path}: unknown table {key!r}; a rule file holds [[extraction]] and "
                f"[[mapping]] tables" for key in data if key not in FILE_KEYS]
    extraction: list[ExtractionRule] = []
    mapping: list[MappingRule] = []
    for kind in FILE_KEYS:
        tables = data.get(kind, [])
        if not isinstance(tables, list):
            problems.append(f"{path}: {kind} must be an array of tables ([[{kind}]])")
            continue
        for number, table in enumerate(tables, 1):
            label = rule_label(path, kind, number, table)
            try:
                if not isinstance(table, dict):
                    raise RuleProblem("must be a table")
                if kind == "extraction":
                    rule, disabled = extraction_rule(table)
                    if not disabled:
                        extraction.append(rule)
                else:
                    rule, disabled = mapping_rule(table, path.parent)
                    if not disabled:
                        mapping.append(rule)
            except RuleProblem as exc:
                problems.append(f"{label}: {exc}")
    return extraction, mapping, problems
