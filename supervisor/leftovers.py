"""What a running farm holds outside its own process, written down so that the next farm on the
same data folder can clean up after one that was killed.

The record (`<data_dir>/farm.run`, JSON) lists every process the supervisor started, with the
creation time the kernel gave it, and the shared-memory entries (rings, the ready board,
semaphores) it created. A pid alone proves nothing (pids are reused); a pid whose process has
the recorded creation time is ours. Children die with their supervisor on their own
(farm/lifeline.py); this is the second line, for a child that has not yet noticed, for an
embedded Redis still writing its append-only file, and for what the kernel does not free.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import psutil

log = logging.getLogger("farm.supervisor")

SHM_DIR = Path("/dev/shm")
KILL_WAIT_SECONDS = 10.0


def shm_path(name: str) -> Path:
    """The file behind a POSIX shared-memory or semaphore name ("/mp-x" is a semaphore)."""
    if name.startswith("/"):
        return SHM_DIR / f"sem.{name[1:]}"
    return SHM_DIR / name


def _proof(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


class RunRecord:
    """The supervisor's side: add what it starts or creates; the file is rewritten each time
    (small, and written atomically so a kill mid-write leaves the previous version)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.doc: dict = {"supervisor": {"pid": os.getpid(), "created": _proof(os.getpid())},
                          "processes": {}, "shm": []}

    def process(self, name: str, pid: int) -> None:
        self.doc["processes"][name] = {"pid": pid, "created": _proof(pid)}
        self._write()

    def shared_memory(self, *names: str) -> None:
        self.doc["shm"].extend(names)
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".run.tmp")
        tmp.write_text(json.dumps(self.doc))
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def clean(path: Path) -> str | None:
    """Kill the recorded processes of a dead farm that are provably still its own, and remove
    its shared-memory entries. Call only while holding the data folder's lock (so the farm that
    wrote the record is not running). Returns a one-line summary, or None if there was nothing."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    victims = []
    for name, proc in doc.get("processes", {}).items():
        created = _proof(proc["pid"])
        if created is not None and created == proc.get("created"):
            victims.append((name, psutil.Process(proc["pid"])))
    for _name, proc in victims:
        try:
            proc.kill()
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs([p for _n, p in victims], timeout=KILL_WAIT_SECONDS)
    if alive:
        pids = ", ".join(str(p.pid) for p in alive)
        raise OSError(f"processes of the previous farm did not die after SIGKILL: {pids}")
    removed = 0
    for name in doc.get("shm", []):
        try:
            shm_path(name).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    path.unlink(missing_ok=True)
    if not victims and not removed:
        return None
    killed = ", ".join(f"{name} (pid {p.pid})" for name, p in victims) or "none"
    return (f"cleaned up after the previous farm, which did not stop cleanly: killed its "
            f"leftover processes: {killed}; removed {removed} shared-memory entries")
