"""How a configuration key is declared: its section, name, type, default, bounds and help.

Feature modules declare their own keys with `Setting` next to the code that uses them;
farm/config.py gathers them, loads TOML and environment overrides, and validates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from farm.units import parse_bytes, parse_request_rate


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


def parsed_by(parse: Callable[[Any], object]) -> Callable[[Any], str | None]:
    """A Setting check from a parser that raises ValueError with a readable message."""

    def check(value: Any) -> str | None:
        try:
            parse(value)
        except ValueError as exc:
            return str(exc)
        return None

    return check


request_rate = parsed_by(parse_request_rate)
size = parsed_by(parse_bytes)


