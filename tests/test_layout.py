"""The code's layout rules that a reader relies on, checked over the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("farm", "supervisor", "loadgen", "bench")
LONGEST_FUNCTION = 60
# A literal (dict, list, tuple, set) spanning more than this many lines is data, not steps.
DATA_LITERAL_LINES = 5

# Functions still over the limit, each to be split into named steps and then removed from this
# list (the test fails on an entry that no longer needs to be here, so the list only shrinks).
# loadgen/ has no entry: it is already split.
KNOWN_LONG_FUNCTIONS: set[str] = set()  # none today


def _data_literal_lines(function: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(function):
        if isinstance(node, (ast.Dict, ast.List, ast.Tuple, ast.Set)):
            if node.end_lineno - node.lineno + 1 > DATA_LITERAL_LINES:
                lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def function_lengths() -> dict[str, int]:
    """'path::name' -> lines of every function and method under CHECKED (nested ones too)."""
    lengths = {}
    for folder in CHECKED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    span = set(range(node.lineno, node.end_lineno + 1))
                    name = f"{path.relative_to(ROOT).as_posix()}::{node.name}"
                    lengths[name] = max(lengths.get(name, 0),
                                        len(span - _data_literal_lines(node)))
    return lengths


def test_no_function_is_longer_than_60_lines():
    """A function reads as named steps when it fits on a screen. Counted: every line from its
    `def` to its last line (docstring, comments and blank lines included), minus the lines of
    any literal that spans more than DATA_LITERAL_LINES lines. Data and declarations are read,
    not followed: a long table literal does not count, and neither do decorators (a click
    command's stack of option declarations)."""
    lengths = function_lengths()
    too_long = sorted(f"{name} ({n} lines)" for name, n in lengths.items()
                      if n > LONGEST_FUNCTION and name not in KNOWN_LONG_FUNCTIONS)
    assert not too_long, "split into named steps: " + ", ".join(too_long)
    stale = sorted(name for name in KNOWN_LONG_FUNCTIONS
                   if lengths.get(name, 0) <= LONGEST_FUNCTION)
    assert not stale, "no longer over the limit, remove from KNOWN_LONG_FUNCTIONS: " + \
        ", ".join(stale)
    assert not any(name.startswith("loadgen/") for name in KNOWN_LONG_FUNCTIONS)
