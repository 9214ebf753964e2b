"""How a configuration key is declared: its section, name, type, default, bounds and help.

Feature modules declare their own keys with `Setting` next to the code that uses them;
farm/config.py gathers them, loads TOML and environment overrides, and validates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
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
    check: Callable[[Any], str | None] | None = None

    @property
    def name(self) -> str:
        return f"[{self.section}] {self.key}"

    @property
    def env(self) -> str:
        return f"FARM_{self.section.upper()}_{self.key.upper()}"


def host_port(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "must be HOST:PORT, for example 127.0.0.1:9464"
    return None


def request_rate(value: str) -> str | None:
    from farm.units import parse_request_rate

    try:
        parse_request_rate(value)
    except ValueError as exc:
        return str(exc)
    return None


def size(value: str) -> str | None:
    from farm.units import parse_bytes

    try:
        parse_bytes(value)
    except ValueError as exc:
        return str(exc)
    return None


