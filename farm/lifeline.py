"""What ties a supervised process to its supervisor: it dies with it, and it says when it is ready.

A supervisor killed with SIGKILL cannot stop its children, and children that outlive it keep
writing to its Redis and its store beside the next farm started on the same data folder. So
every child asks the kernel for SIGKILL when its parent dies (Linux's PR_SET_PDEATHSIG), and its
loops also check that its parent is still the supervisor that started it: the kernel's promise
exists only on Linux and only for the thread that forked the child.

Readiness goes through a small shared-memory board, one 8-byte slot per supervised process,
where a child writes the time it became ready. The supervisor reads it to tell a process that
was killed while doing its work (restart it, always) from one that cannot start (stop the farm).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import struct
import time
from dataclasses import dataclass
from multiprocessing import shared_memory

log = logging.getLogger("farm.lifeline")

BOOT_ERROR = 3
"""Exit code of a process that cannot start (bad config, bad rules, unusable URL): restarting
it would fail the same way, so the supervisor stops the farm and says why instead."""

_PR_SET_PDEATHSIG = 1
_SLOT = struct.Struct("<d")


def _load_prctl():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def ask_kernel_for_death_signal(signum: int = signal.SIGKILL) -> bool:
    """Ask to receive signum when the parent dies; False where the platform cannot do it.
    Safe to call between fork and exec (nothing is imported or allocated on the way)."""
    return _prctl is not None and _prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


@dataclass(frozen=True)
class Lifeline:
    """Handed to each spawned process: its supervisor's pid and its slot on the ready board."""

    supervisor_pid: int
    board: str  # shared-memory name of the ready board
    slot: int

    def bind(self) -> None:
        """First thing a child does: die with the supervisor, and die now if it is gone
        already (it may have died between our fork and this call)."""
        ask_kernel_for_death_signal()
        self.exit_if_orphaned()

    def orphaned(self) -> bool:
        return os.getppid() != self.supervisor_pid

    def exit_if_orphaned(self) -> None:
        """Called in every loop of a child. Exits at once, without flushing or acking anything:
        what it holds is redelivered by the next farm, which is the recovery every crash gets."""
        if os.getppid() != self.supervisor_pid:
            log.error("the supervisor (pid %d) is gone; exiting", self.supervisor_pid)
            os._exit(1)

    def ready(self) -> None:
        """Tell the supervisor this process has started and is doing its work."""
        board = shared_memory.SharedMemory(self.board)
        try:
            _SLOT.pack_into(board.buf, self.slot * _SLOT.size, time.time())
        finally:
            board.close()


class ReadyBoard:
    """The supervisor's side: one slot per supervised process, read after a process dies."""

    def __init__(self, slots: int):
        self.shm = shared_memory.SharedMemory(create=True, size=max(1, slots) * _SLOT.size)
        self.shm.buf[:] = bytes(len(self.shm.buf))

    @property
    def name(self) -> str:
        return self.shm.name

    def lifeline(self, slot: int) -> Lifeline:
        return Lifeline(os.getpid(), self.shm.name, slot)

    def ready_since(self, slot: int) -> float:
        """When the process in slot last said it was ready (unix seconds), 0 if never."""
        return _SLOT.unpack_from(self.shm.buf, slot * _SLOT.size)[0]

    def destroy(self) -> None:
        self.shm.close()
        self.shm.unlink()
