"""Correlation rule files: TOML with `[[rule]]` tables, compiled once
(docs/keep-compatibility.md#correlation).

`load_file(path)` returns the compiled rules and one line per problem (file, rule, key, what is
wrong); `RuleFile` keeps the rules in force and reloads them when the file changes
(farm/rules/reload.py). Nothing here
runs per alert.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from farm.rules.condition import ConditionError, compile_condition
from farm.rules.files import RuleProblem, named, read_toml, rule_label, tenants_of, typed
from farm.rules.reload import ReloadingFile
from farm.rules.ruleset import config_relative
from farm.units import parse_duration

RULE_KEYS = ("name", "description", "disabled", "tenants", "condition", "grouping_criteria",
             "timeframe", "threshold", "create_on", "resolve_on", "incident_name_template",
             "incident_prefix", "require_approve", "multi_level", "multi_level_property_name")
# Keep's API spells resolve_on with a _resolved suffix; both are accepted.
RESOLVE_ON = {"all": "all", "first": "first", "last": "last", "never": "never",
              "all_resolved": "all", "first_resolved": "first", "last_resolved": "last"}
DEFAULT_TIMEFRAME = 600
_VAR = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")




@dataclass(frozen=True)
class CorrelationRule:
    """One compiled rule. `subrules` are the condition's parts (Keep splits on `) || (`);
    `name_parts` alternates literal text and template paths (even positions literal)."""

    name: str
    subrules: tuple[Callable[[dict], bool], ...]
    grouping: tuple[tuple[str, ...], ...]
    timeframe: int
    threshold: int
    create_on_all: bool
    resolve_on: str
    name_parts: tuple[str, ...]
    prefix: str
    require_approve: bool
    multi_level: bool
    multi_level_property: str
    tenants: frozenset[str] | None

    @cached_property
    def name_paths(self) -> tuple[tuple[str, ...], ...]:
        """The name template's paths, split at their dots."""
        return tuple(tuple(path.split(".")) for path in self.name_parts[1::2])

    def spec(self) -> list:
        """What the decision script needs to know of this rule."""
        return [self.timeframe, self.threshold, 1 if self.create_on_all else 0,
                len(self.subrules), self.resolve_on, 1 if self.require_approve else 0,
                list(self.name_parts), self.prefix, 1 if self.multi_level else 0]


def split_subrules(condition: str) -> list[str]:
    """Keep's split: on the literal `) || (`, dropping the outer parentheses when split."""
    parts = condition.split(") || (")
    if len(parts) > 1:
        parts[0] = parts[0][1:]
        parts[-1] = parts[-1][:-1]
    return [part.replace("null", '""') for part in parts]


def name_parts(template: str) -> tuple[str, ...]:
    """Literal text and `{{ path }}` paths, alternating; `alert.` is dropped from a path."""
    parts: list[str] = []
    last = 0
    for match in _VAR.finditer(template):
        parts.append(template[last:match.start()])
        path = match.group(1)
        parts.append(path[len("alert."):] if path.startswith("alert.") else path)
        last = match.end()
    parts.append(template[last:])
    return tuple(parts)


def _timeframe(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise RuleProblem(f"timeframe: {exc}") from None
    else:
        raise RuleProblem(f"timeframe must be seconds or a duration like \"1h\", got {value!r}")
    if seconds < 1:
        raise RuleProblem("timeframe must be at least 1 second")
    return int(seconds)


def _subrules(condition: object) -> tuple[Callable[[dict], bool], ...]:
    if not isinstance(condition, str) or not condition.strip():
        raise RuleProblem("condition is required: a CEL expression, like "
                          "'(labels.team == \"dba\") || (severity == \"critical\")'")
    compiled = []
    for part in split_subrules(condition):
        try:
            compiled.append(compile_condition(part))
        except ConditionError as exc:
            raise RuleProblem(f"condition part {part!r}: {exc}") from None
    return tuple(compiled)


def _grouping(table: dict) -> tuple[tuple[str, ...], ...]:
    criteria = typed(table, "grouping_criteria", list, [], "a list of dotted alert paths")
    if not all(isinstance(c, str) and c.strip() for c in criteria):
        raise RuleProblem("grouping_criteria must be a list of dotted alert paths, like "
                          "[\"labels.host\", \"service\"]")
    return tuple(tuple(c.strip().split(".")) for c in criteria)


def compile_rule(table: dict) -> tuple[CorrelationRule, bool]:
    """One [[rule]] table -> (rule, disabled). Raises RuleProblem."""
    name = named(table, RULE_KEYS)
    typed(table, "description", str, None, "a string")
    disabled = typed(table, "disabled", bool, False, "true or false")
    tenants = tenants_of(table)
    threshold = typed(table, "threshold", int, 1, "a whole number")
    if threshold < 1:
        raise RuleProblem("threshold must be at least 1")
    create_on = typed(table, "create_on", str, "any", "\"any\" or \"all\"")
    if create_on not in ("any", "all"):
        raise RuleProblem(f"create_on must be \"any\" or \"all\", got {create_on!r}")
    resolve_on = typed(table, "resolve_on", str, "never", "a string")
    if resolve_on not in RESOLVE_ON:
        raise RuleProblem(f"resolve_on must be one of all, first, last, never (or Keep's "
                          f"all_resolved, first_resolved, last_resolved), got {resolve_on!r}")
    template = typed(table, "incident_name_template", str, "", "a string")
    multi = typed(table, "multi_level", bool, False, "true or false")
    prop = typed(table, "multi_level_property_name", str, "", "a field name")
    grouping = _grouping(table)
    if multi and (not grouping or not prop):
        raise RuleProblem("a multi_level rule needs grouping_criteria (its first path must hold "
                          "a map of maps) and multi_level_property_name")
    rule = CorrelationRule(
        name=name.strip(), subrules=_subrules(table.get("condition")), grouping=grouping,
        timeframe=_timeframe(table.get("timeframe", DEFAULT_TIMEFRAME)), threshold=threshold,
        create_on_all=create_on == "all", resolve_on=RESOLVE_ON[resolve_on],
        name_parts=name_parts(template) if template else (),
        prefix=typed(table, "incident_prefix", str, "", "a string"),
        require_approve=typed(table, "require_approve", bool, False, "true or false"),
        multi_level=multi, multi_level_property=prop, tenants=tenants)
    return rule, disabled


def load_file(path: Path) -> tuple[list[CorrelationRule], list[str]]:
    """Compile one rule file. Returns (enabled rules, problems)."""
    data, problems = read_toml(path)
    if problems:
        return [], problems
    problems = [f"{path}: unknown table {key!r}; a correlation rule file holds [[rule]] tables"
                for key in data if key != "rule"]
    tables = data.get("rule", [])
    if not isinstance(tables, list):
        return [], problems + [f"{path}: rule must be an array of tables ([[rule]])"]
    rules: list[CorrelationRule] = []
    seen: set[str] = set()
    for number, table in enumerate(tables, 1):
        label = rule_label(path, "rule", number, table)
        try:
            if not isinstance(table, dict):
                raise RuleProblem("must be a table")
            rule, disabled = compile_rule(table)
            if rule.name in seen:
                raise RuleProblem("another rule has this name; names identify incidents' rules")
            seen.add(rule.name)
            if not disabled:
                rules.append(rule)
        except RuleProblem as exc:
            problems.append(f"{label}: {exc}")
    return rules, problems


def rule_path(cfg) -> Path | None:
    """The configured rule file (relative to the config file's folder), or None."""
    name = cfg.correlation.rules.strip()
    return config_relative(cfg, name) if name else None


def validate(cfg) -> list[str]:
    """Every problem with the configured correlation rules; empty when all is well."""
    path = rule_path(cfg)
    return load_file(path)[1] if path is not None else []


class RuleFile(ReloadingFile[CorrelationRule]):
    """The correlation rules in force, reloaded when the file changes (checked at most every
    `[correlation] reload_seconds`); see farm/rules/reload.py."""

    def __init__(self, cfg):
        super().__init__(rule_path(cfg), load_file, cfg.correlation.reload_seconds,
                         "correlation")

    @property
    def rules(self) -> list[CorrelationRule]:
        return self.items
