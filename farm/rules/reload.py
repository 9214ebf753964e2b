"""Rule files a worker keeps current while it runs: compiled at start, re-read when they change.

Correlation rules and maintenance windows use `ReloadingFile`: `load(path)` returns (items, one
line per problem), as every rule file loader in farm does. The enrichment rule files, which
compile together with the dedup rules into one `Rules`, use `ReloadingRules`. Nothing here runs
per alert.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from farm.rules.ruleset import RuleError, Rules, rule_paths

log = logging.getLogger("farm.rules")
T = TypeVar("T")


def _stamp_of(path: Path) -> tuple | None:
    """What tells a changed file: modification time, size and inode (an editor that saves by
    renaming a new file over the old one changes the inode); None when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class ReloadingFile(Generic[T]):
    """The items compiled from one rule file (none when `path` is None), reloaded when the
    file's modification time, size or inode changes (an editor that saves by renaming a new file
    over the old one changes the inode), looked at most every `every` seconds. A file with
    problems raises RuleError at start; a changed file with problems is logged, once per change,
    and the items in force stay. `what` names the file's kind in those lines."""

    def __init__(self, path: Path | None, load: Callable[[Path], tuple[list[T], list[str]]],
                 every: float, what: str):
        self.path = path
        self.load = load
        self.every = every
        self.what = what
        self.items: list[T] = []
        self._stamp: tuple | None = None
        self._checked = time.monotonic()
        if path is not None:
            self._stamp = self.stamp()  # before reading: a write during the read shows next time
            items, problems = load(path)
            if problems:
                raise RuleError([f"{what}: {p}" for p in problems])
            self.items = items

    def stamp(self) -> tuple | None:
        return _stamp_of(self.path)

    def current(self) -> list[T]:
        """The items in force, reloading first if the file changed (looked at most every
        `every` seconds)."""
        if self.path is None:
            return self.items
        now = time.monotonic()
        if now - self._checked >= self.every:
            self._checked = now
            self.reload_if_changed()
        return self.items

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed; True when new items are in force."""
        if self.path is None:
            return False
        stamp = self.stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        items, problems = self.load(self.path)
        if problems:
            for problem in problems:
                log.error("%s not reloaded (the ones in force stay): %s", self.what, problem)
            return False
        self.items = items
        log.info("%s reloaded from %s: %d", self.what, self.path, len(items))
        return True


class ReloadingRules:
    """The compiled dedup and enrichment rules, rebuilt when an enrichment rule file, or a CSV
    file beside one (mapping tables read them), changes; looked at most every `every` seconds.
    A changed file with problems is logged, once per change, and the rules in force stay.
    Rules given ready-made (tests, benches) are kept as they are."""

    def __init__(self, cfg, rules: Rules | None = None, every: float = 5.0):
        self.cfg = cfg
        self.every = every
        self.watched: list[Path] = []
        if rules is None and cfg.enrichment.enabled:
            for path in rule_paths(cfg):
                self.watched += [path, *sorted(path.parent.glob("*.csv"))]
            self.watched = list(dict.fromkeys(self.watched))
        self._stamp = self.stamp()  # before reading: a write during the read shows next time
        self.rules = rules if rules is not None else Rules.from_config(cfg)
        self._checked = time.monotonic()

    def stamp(self) -> tuple:
        return tuple(_stamp_of(path) for path in self.watched)

    def current(self) -> Rules:
        """The rules in force, rebuilt first if a watched file changed."""
        if self.watched:
            now = time.monotonic()
            if now - self._checked >= self.every:
                self._checked = now
                self.reload_if_changed()
        return self.rules

    def reload_if_changed(self) -> bool:
        """Recompile if a watched file changed; True when new rules are in force."""
        stamp = self.stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            rules = Rules.from_config(self.cfg)
        except RuleError as exc:
            for problem in exc.problems:
                log.error("enrichment rules not reloaded (the ones in force stay): %s", problem)
            return False
        self.rules = rules
        log.info("enrichment rules reloaded: %d extraction, %d mapping",
                 len(rules.pre) + len(rules.post), len(rules.mapping))
        return True
