"""The hand-off from a worker to the indexer: a single-producer single-consumer ring in shared
memory.

Layout: a 64-byte header, then `n_slots` slots of `slot_size` bytes. A record is a 16-byte
header (payload length, seq) plus its payload, written into as many consecutive slots as it needs
(wrapping at the end). Two counting semaphores carry all the coordination:

  free    slots the producer may write; it takes one token per slot before writing
  filled  records the consumer may read; the producer posts one after a record is written

POSIX defines sem_post/sem_wait as memory-synchronizing (Base Definitions 4.12), so a record's
bytes, written before the post, are visible to the consumer after its wait on every
architecture, x86_64 and aarch64 alike; neither side ever reads a position the other writes.
A third semaphore, the doorbell shared by all rings, lets the one consumer sleep until any ring
has data, with no polling at idle.

Header words shared across processes, each an aligned 8-byte store (single-copy atomic on both
architectures) whose staleness is harmless:
  next_seq   producer's next record sequence number; survives a producer restart
  committed  highest seq the consumer's store has committed; the producer acks up to it
  beat       producer's last sign of life (unix seconds), watched by the supervisor

No semaphore is ever held across a crash: a process killed between taking free slots and
posting the record leaves only uncounted slots, which `reset` (run while neither side is
active) restores.
"""

from __future__ import annotations

import ctypes
import struct
import time
from dataclasses import dataclass
from multiprocessing import shared_memory

HEADER_SIZE = 64
RECORD_HEADER = struct.Struct("<IIQ")  # payload length, reserved, seq
_MAGIC = 0x4641524D52494E47  # "FARMRING"


class RecordTooLarge(ValueError):
    """A record bigger than the whole ring; the caller must split it."""


@dataclass
class RingHandle:
    """What a process needs to attach to a ring; picklable into spawned processes."""

    shm_name: str
    slot_size: int
    n_slots: int
    free: object     # multiprocessing Semaphore
    filled: object   # multiprocessing Semaphore
    doorbell: object  # multiprocessing Semaphore shared by every ring


def create(ctx, size_bytes: int, doorbell, slot_size: int = 64 * 1024) -> RingHandle:
    """Create a ring of about size_bytes in shared memory (the creator owns and unlinks it)."""
    n_slots = max(2, size_bytes // slot_size)
    shm = shared_memory.SharedMemory(create=True, size=HEADER_SIZE + n_slots * slot_size)
    struct.pack_into("<QII", shm.buf, 0, _MAGIC, slot_size, n_slots)
    handle = RingHandle(shm.name, slot_size, n_slots, ctx.Semaphore(n_slots), ctx.Semaphore(0),
                        doorbell)
    _OWNED[shm.name] = shm
    return handle


_OWNED: dict[str, shared_memory.SharedMemory] = {}


def destroy(handle: RingHandle) -> None:
    shm = _OWNED.pop(handle.shm_name, None)
    if shm is not None:
        shm.close()
        shm.unlink()


def wait_doorbell(doorbell, timeout: float) -> bool:
    """Consumer: sleep until any ring has published a record (or timeout), then swallow the
    other pending rings so that one wake-up serves many records."""
    woke = doorbell.acquire(True, timeout)
    while doorbell.acquire(False):
        pass
    return woke


class Ring:
    """One process's view of a ring: use `put` on the producer side, `get` on the consumer side."""

    def __init__(self, handle: RingHandle):
        self.handle = handle
        self._shm = _OWNED.get(handle.shm_name) or shared_memory.SharedMemory(handle.shm_name)
        self._buf = self._shm.buf
        magic, slot_size, n_slots = struct.unpack_from("<QII", self._buf, 0)
        if magic != _MAGIC or slot_size != handle.slot_size or n_slots != handle.n_slots:
            raise RuntimeError(f"shared memory {handle.shm_name} is not this farm's ring")
        self.slot_size, self.n_slots = slot_size, n_slots
        self.max_record = slot_size * n_slots - RECORD_HEADER.size
        self._next_seq = ctypes.c_uint64.from_buffer(self._buf, 16)
        self._committed = ctypes.c_uint64.from_buffer(self._buf, 24)
        self._beat = ctypes.c_double.from_buffer(self._buf, 32)
        self._free, self._filled, self._doorbell = handle.free, handle.filled, handle.doorbell
        self._data = self._buf[HEADER_SIZE:]
        self._pos = 0    # producer: next slot to write; consumer: next slot to read
        self._held = 0   # producer: free tokens taken for the record being written

    # -- shared header words --------------------------------------------------------------
    @property
    def committed(self) -> int:
        return self._committed.value

    def publish_committed(self, seq: int) -> None:
        if seq > self._committed.value:
            self._committed.value = seq

    @property
    def beat(self) -> float:
        return self._beat.value

    def touch(self) -> None:
        self._beat.value = time.time()

    @property
    def next_seq(self) -> int:
        return self._next_seq.value

    # -- producer ------------------------------------------------------------------------
    def put(self, payload: bytes, wait=None) -> int:
        """Write one record and return its seq. Blocks while the ring is full, calling
        `wait()` about every 100 ms so the caller can heartbeat. Raises RecordTooLarge."""
        size = RECORD_HEADER.size + len(payload)
        slots = -(-size // self.slot_size)
        if slots > self.n_slots:
            raise RecordTooLarge(f"record of {len(payload)} bytes exceeds the ring "
                                 f"({self.n_slots * self.slot_size} bytes)")
        while self._held < slots:
            if self._free.acquire(True, 0.1):
                self._held += 1
            elif wait is not None:
                wait()
        seq = self._next_seq.value + 1
        self._next_seq.value = seq
        self._write(self._pos * self.slot_size, RECORD_HEADER.pack(len(payload), 0, seq))
        self._write(self._pos * self.slot_size + RECORD_HEADER.size, payload)
        self._pos = (self._pos + slots) % self.n_slots
        self._held -= slots
        self._filled.release()
        self._doorbell.release()
        return seq

    def _write(self, offset: int, data: bytes) -> None:
        capacity = len(self._data)
        offset %= capacity
        first = min(len(data), capacity - offset)
        self._data[offset:offset + first] = data[:first]
        if first < len(data):
            self._data[:len(data) - first] = data[first:]

    # -- consumer ------------------------------------------------------------------------
    def get(self) -> tuple[int, bytes] | None:
        """Take the next record (seq, payload) without blocking, or None if there is none."""
        if not self._filled.acquire(False):
            return None
        base = self._pos * self.slot_size
        length, _, seq = RECORD_HEADER.unpack(self._read(base, RECORD_HEADER.size))
        payload = self._read(base + RECORD_HEADER.size, length)
        slots = -(-(RECORD_HEADER.size + length) // self.slot_size)
        self._pos = (self._pos + slots) % self.n_slots
        for _ in range(slots):
            self._free.release()
        return seq, payload

    def _read(self, offset: int, length: int) -> bytes:
        capacity = len(self._data)
        offset %= capacity
        first = min(length, capacity - offset)
        if first == length:
            return bytes(self._data[offset:offset + length])
        return bytes(self._data[offset:]) + bytes(self._data[:length - first])

    # -- recovery ------------------------------------------------------------------------
    def reset(self) -> None:
        """Empty the ring. Only while no producer is running and the consumer is the caller
        (or none is running). Keeps next_seq and committed, so sequence numbers stay monotonic."""
        while self._filled.acquire(False):
            pass
        while self._free.acquire(False):
            pass
        for _ in range(self.n_slots):
            self._free.release()
        self._pos = 0
        self._held = 0

    def close(self) -> None:
        # ctypes views and the data slice must go before the mapping can close.
        del self._next_seq, self._committed, self._beat
        self._data.release()
        self._buf = None
        if self.handle.shm_name not in _OWNED:
            self._shm.close()
