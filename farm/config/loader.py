"""Loading a configuration: the TOML file, then FARM_<SECTION>_<KEY> environment overrides, then
command-line overrides, each value checked against its declaration; the result is a typed,
frozen `Config` with one attribute per section."""

from __future__ import annotations

import copy
import difflib
import os
import socket
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from farm.config.console import ConsoleSettings
from farm.config.core import (
    FarmSettings,
    RedisSettings,
    StoreSettings,
    SupervisorSettings,
    WorkersSettings,
)
from farm.config.correlation import CorrelationSettings
from farm.config.ingest import IngestSettings
from farm.config.maintenance import MaintenanceSettings
from farm.config.notify import NotifySettings
from farm.config.rules import DedupSettings, EnrichmentSettings
from farm.config.setting import SECTIONS, SETTINGS, Setting


class ConfigError(Exception):
    """One or more configuration mistakes; str() gives one line per mistake."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Config:
    """Validated settings as `cfg.<section>.<key>`, plus `source` (the file, or None)."""

    farm: FarmSettings
    redis: RedisSettings
    workers: WorkersSettings
    store: StoreSettings
    supervisor: SupervisorSettings
    maintenance: MaintenanceSettings
    dedup: DedupSettings
    enrichment: EnrichmentSettings
    correlation: CorrelationSettings
    ingest: IngestSettings
    notify: NotifySettings
    console: ConsoleSettings
    source: str | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.farm.data_dir).expanduser().resolve()

    @property
    def sqlite_path(self) -> Path:
        return Path(self.store.path).expanduser().resolve() if self.store.path else (
            self.data_dir / "farm.db")

    @property
    def node_id(self) -> str:
        return self.farm.node_id or socket.gethostname()


# Every declared section is a field of Config (a section declared but not added here would be
# validated and then dropped), and Config's order is the order of the generated file and table.
_ORDER = [f.name for f in fields(Config) if f.name != "source"]
assert set(_ORDER) == set(SECTIONS), "Config and the declared sections differ"
SETTINGS.sort(key=lambda s: _ORDER.index(s.section))

_BY_SECTION: dict[str, dict[str, Setting]] = {}
for _s in SETTINGS:
    _BY_SECTION.setdefault(_s.section, {})[_s.key] = _s

_BOOL_WORDS = {"true": True, "1": True, "yes": True, "on": True,
               "false": False, "0": False, "no": False, "off": False}


def _coerce(setting: Setting, value: Any, from_env: bool) -> tuple[Any, str | None]:
    """Return (value, problem) for one raw value; the problem names what is allowed."""
    if setting.kind is object:
        # Structured values (arrays of tables): the setting's own check validates them.
        if from_env:
            return None, "is structured and can only be set in the config file"
    elif from_env and value.strip() in setting.words:
        value = value.strip()
    elif from_env:
        value, problem = _from_text(setting.kind, value.strip())
        if problem:
            return None, problem
    if setting.kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    problem = (_type_problem(setting, value) if setting.kind is not object else None) \
        or _bounds_problem(setting, value) \
        or (setting.check(value) if setting.check is not None else None)
    return (None, problem) if problem else (value, None)


def _from_text(kind: type, text: str) -> tuple[Any, str | None]:
    """An environment variable's text as a value of kind."""
    if kind is bool:
        if text.lower() not in _BOOL_WORDS:
            return None, "must be true or false"
        return _BOOL_WORDS[text.lower()], None
    if kind is int or kind is float:
        try:
            return kind(text), None
        except ValueError:
            return None, "must be a whole number" if kind is int else "must be a number"
    if kind is list:
        return [part.strip() for part in text.split(",") if part.strip()], None
    if kind is dict:
        return None, "is a table and cannot be set from the environment"
    return text, None


def _type_problem(setting: Setting, value: Any) -> str | None:
    kind = setting.kind
    if setting.words and isinstance(value, str):
        if value in setting.words:
            return None
        return f"must be a whole number or {' or '.join(repr(w) for w in setting.words)}"
    if kind is bool and not isinstance(value, bool):
        return "must be true or false"
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be a whole number"
    if kind is float and (isinstance(value, bool) or not isinstance(value, float)):
        return "must be a number"
    if kind is str and not isinstance(value, str):
        return "must be a string"
    if kind is list and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        return "must be a list of strings"
    if kind is dict:
        if not isinstance(value, dict):
            return "must be a table"
        for k, v in value.items():
            if setting.item_kind is list:
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    return f"entry {k!r} must be a list of strings"
            elif not isinstance(v, setting.item_kind):
                return f"entry {k!r} must be a {setting.item_kind.__name__}"
    return None


def _bounds_problem(setting: Setting, value: Any) -> str | None:
    if value in setting.words:
        return None
    if setting.choices is not None and value not in setting.choices:
        return f"must be one of {', '.join(repr(c) for c in setting.choices)}"
    if setting.minimum is not None and value < setting.minimum:
        return f"must be at least {setting.minimum:g}"
    if setting.maximum is not None and value > setting.maximum:
        return f"must be at most {setting.maximum:g}"
    return None


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(options))}"


def load(path: str | os.PathLike | None = None, env: dict[str, str] | None = None,
         overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Load and validate the configuration.

    `path` is a TOML file (None: defaults only); `env` defaults to os.environ; `overrides`
    (for command-line flags) win over both. Raises ConfigError listing every mistake.
    """
    values: dict[str, dict[str, Any]] = {
        section: {key: copy.deepcopy(s.default) for key, s in keys.items()}
        for section, keys in _BY_SECTION.items()
    }
    problems: list[str] = []
    layers = (_file_values(path), _env_values(os.environ if env is None else env),
              _override_values(overrides or {}))
    for layer in layers:
        for setting, raw, label, from_env in layer:
            if setting is None:
                problems.append(label)  # an unknown name, already phrased
                continue
            value, problem = _coerce(setting, raw, from_env)
            if problem:
                problems.append(f"{label} {problem}")
            else:
                values[setting.section][setting.key] = value
    problems += _cross_checks(values)
    if problems:
        raise ConfigError(problems)
    sections = {name: SECTIONS[name](**kv) for name, kv in values.items()}
    return Config(**sections, source=str(path) if path is not None else None)


# Each layer yields (setting or None, raw value, how to name it in a message, from_env); a
# None setting means an unknown name, and the label is then the whole message.

def _file_values(path: str | os.PathLike | None):
    if path is None:
        return
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"config file {path} does not exist"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"config file {path} is not valid TOML: {exc}"]) from None
    for section, table in data.items():
        if section not in _BY_SECTION:
            known = list(_BY_SECTION)
            yield None, None, f"unknown section [{section}]{_suggest(section, known)}", False
        elif not isinstance(table, dict):
            yield None, None, f"[{section}] must be a table", False
        else:
            for key, raw in table.items():
                setting = _BY_SECTION[section].get(key)
                if setting is None:
                    yield None, None, (f"unknown key [{section}] {key}"
                                       f"{_suggest(key, list(_BY_SECTION[section]))}"), False
                else:
                    yield setting, raw, f"{setting.name} = {raw!r}", False


def _env_values(env: dict[str, str]):
    for name, raw in env.items():
        if not name.startswith("FARM_"):
            continue
        rest = name[5:].lower()
        section = next((s for s in _BY_SECTION if rest.startswith(s + "_")), None)
        if section is None:
            continue  # FARM_TEST_*, FARM_REQUIRE_ENGINE and friends are not settings
        key = rest[len(section) + 1:]
        setting = _BY_SECTION[section].get(key)
        if setting is None:
            yield None, None, (f"unknown environment override {name}"
                               f"{_suggest(key, list(_BY_SECTION[section]))}"), True
        else:
            yield setting, raw, f"{name}={raw!r}", True


def _override_values(overrides: dict[str, dict[str, Any]]):
    for section, table in overrides.items():
        for key, raw in table.items():
            setting = _BY_SECTION[section][key]
            yield setting, raw, f"{setting.name} = {raw!r}", False


def _cross_checks(values: dict[str, dict[str, Any]]) -> list[str]:
    """Mistakes that span keys."""
    problems = []
    if values["store"]["kind"] == "elasticsearch" and not values["store"]["url"]:
        problems.append('[store] kind = "elasticsearch" needs [store] url '
                        '(for example "http://127.0.0.1:9200")')
    workers = values["workers"]
    if workers["max"] and workers["min"] > workers["max"]:
        problems.append(f"[workers] min = {workers['min']} is more than [workers] max = "
                        f"{workers['max']}; raise max or lower min")
    return problems
