"""How a configuration key is declared: once, as a field of its section's frozen dataclass.

    @section("store")
    class StoreSettings:
        kind: str = key("sqlite", "Where alerts are indexed.", choices=("sqlite", "elasticsearch"))

The field's annotation is the key's type, `key()` carries its default, help, bounds and check.
From these declarations come the loader's validation (farm/config/loader.py), the shipped
configs/farm.toml and the table in docs/configuration.md (farm/config/docs.py). `SETTINGS`
lists every key in declaration order: the order of the generated file and table.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from farm.units import parse_bytes, parse_request_rate

Check = Callable[[Any], "str | None"]


@dataclass(frozen=True)
class Setting:
    """One key as the loader and the generators see it."""

    section: str
    key: str
    default: Any
    help: str
    kind: type = str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    # For kind=dict: the type of each value in the table (str or list of str).
    item_kind: type = str
    check: Check | None = None
    # Words a whole-number key also accepts instead of a number (`count = "auto"`).
    words: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"[{self.section}] {self.key}"

    @property
    def env(self) -> str:
        return f"FARM_{self.section.upper()}_{self.key.upper()}"


# Annotation -> (kind, item_kind). `object` is a structured value (an array of tables) that
# only its own check validates.
_KINDS: dict[str, tuple[type, type]] = {
    "str": (str, str), "int": (int, str), "bool": (bool, str), "float": (float, str),
    "list[str]": (list, str), "dict[str, str]": (dict, str),
    "dict[str, list[str]]": (dict, list), "list[dict]": (object, str),
    "int | str": (int, str),  # a whole number, or one of the key's `words`
}

SETTINGS: list[Setting] = []
SECTIONS: dict[str, type] = {}


def key(default: Any, help: str, *, choices: tuple[str, ...] | None = None,
        minimum: float | None = None, maximum: float | None = None,
        check: Check | None = None, words: tuple[str, ...] = ()) -> Any:
    """Declare a key: its default, its help (one or more sentences), and its bounds; `words`
    are what a whole-number key accepts besides numbers."""
    meta = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum,
            "check": check, "default": default, "words": words}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(name: str) -> Callable[[type], type]:
    """Make a class a frozen dataclass of the keys of `[name]` and register its keys."""

    def register(cls: type) -> type:
        cls = dataclass(frozen=True)(cls)
        for f in dataclasses.fields(cls):
            if f.type not in _KINDS:
                raise TypeError(f"[{name}] {f.name}: annotation {f.type!r} is not a config type")
            kind, item_kind = _KINDS[f.type]
            m = f.metadata
            if (f.type == "int | str") != bool(m["words"]):
                raise TypeError(f"[{name}] {f.name}: `int | str` goes with words=(...)")
            SETTINGS.append(Setting(name, f.name, m["default"], m["help"], kind, m["choices"],
                                    m["minimum"], m["maximum"], item_kind, m["check"],
                                    m["words"]))
        SECTIONS[name] = cls
        return cls

    return register


def host_port(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "must be HOST:PORT, for example 127.0.0.1:9464"
    return None


def parsed_by(parse: Callable[[Any], object]) -> Check:
    """A key's check from a parser that raises ValueError with a readable message."""

    def check(value: Any) -> str | None:
        try:
            parse(value)
        except ValueError as exc:
            return str(exc)
        return None

    return check


def toml_file_of(tables: str) -> Check:
    """A key's check: empty, or the name of a .toml file (of `[[tables]]`)."""

    def check(value: str) -> str | None:
        if value and not value.strip().endswith(".toml"):
            return f"{value!r} must name a .toml file of [[{tables}]] tables"
        return None

    return check


request_rate = parsed_by(parse_request_rate)
size = parsed_by(parse_bytes)
