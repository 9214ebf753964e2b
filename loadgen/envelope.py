"""Wire-v1 batches (farm/wire.py) assembled from pre-encoded events, without re-encoding them.

The bytes are exactly what `farm.wire.encode_batch(events, provider, tenant, batch_id,
sent_at)` produces for the same events (a test checks it): the envelope map in the same key
order, then the events' msgpack bytes concatenated as the array's items.
"""

from __future__ import annotations

import msgpack

from farm.wire import PROVIDERS, WIRE_VERSION

_packer = msgpack.Packer()


def batch_id(run_id: str, producer: int, seq: int) -> str:
    """32 hex digits, like a uuid4 hex: the run (16), the producer (4), its batch number (12).
    Every batch of a run shares the run prefix, so the verifier finds them by range."""
    return f"{run_id}{producer:04x}{seq:012x}"


class Envelope:
    """Builds batches for one tenant."""

    def __init__(self, tenant: str):
        pack = msgpack.packb
        self._head = _packer.pack_map_header(6) + pack("v") + pack(WIRE_VERSION) + pack("id")
        self._tenant = pack("tenant") + pack(tenant) + pack("provider")
        self._providers = {p: pack(p) for p in PROVIDERS}
        self._sent_at = pack("sent_at")
        self._events = pack("events")

    def batch(self, batch_id: str, provider: str, sent_at: float, events: list[bytes]) -> bytes:
        """One batch; `events` are msgpack-encoded provider events."""
        return b"".join((self._head, msgpack.packb(batch_id), self._tenant,
                         self._providers[provider], self._sent_at, msgpack.packb(float(sent_at)),
                         self._events, _packer.pack_array_header(len(events)), *events))
