"""The shared-memory ring between a worker and the indexer."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
import time

import pytest

from farm import ring as ring_mod
from farm.ring import RecordTooLarge, Ring

CTX = multiprocessing.get_context("spawn")


@pytest.fixture
def handle():
    h = ring_mod.create(CTX, 8 * 1024, CTX.Semaphore(0), slot_size=1024)
    yield h
    ring_mod.destroy(h)


def test_records_come_out_in_order_with_their_seqs(handle):
    producer, consumer = Ring(handle), Ring(handle)
    seqs = [producer.put(f"record {i}".encode()) for i in range(5)]
    out = [consumer.get() for _ in range(5)]
    assert [s for s, _ in out] == seqs == sorted(seqs)
    assert [p for _, p in out] == [f"record {i}".encode() for i in range(5)]
    assert consumer.get() is None


def test_records_wrap_around_the_end(handle):
    producer, consumer = Ring(handle), Ring(handle)
    payloads = [bytes([i]) * (700 + 300 * (i % 7)) for i in range(40)]
    got = []
    for payload in payloads:
        producer.put(payload)
        got.append(consumer.get()[1])
    assert got == payloads


def test_a_record_larger_than_the_ring_is_refused(handle):
    with pytest.raises(RecordTooLarge):
        Ring(handle).put(b"x" * (9 * 1024))


def test_a_full_ring_blocks_the_producer_until_the_consumer_frees_space(handle):
    producer, consumer = Ring(handle), Ring(handle)
    for _ in range(8):
        producer.put(b"x" * 1000)  # one slot each: the ring is now full
    done = threading.Event()
    waits = []

    def put_one_more():
        producer.put(b"last", wait=lambda: waits.append(1))
        done.set()

    thread = threading.Thread(target=put_one_more)
    thread.start()
    assert not done.wait(0.5)
    assert waits, "the producer heartbeats while it waits"
    consumer.get()
    assert done.wait(5)
    thread.join()
    payloads = [consumer.get()[1] for _ in range(8)]
    assert payloads[-1] == b"last"


def test_reset_empties_the_ring_and_keeps_seqs_monotonic(handle):
    producer, consumer = Ring(handle), Ring(handle)
    for _ in range(6):
        producer.put(b"y" * 900)
    last = producer.next_seq
    consumer.reset()
    assert consumer.get() is None
    fresh = Ring(handle)  # a restarted producer
    for _ in range(8):  # the whole capacity is free again
        fresh.put(b"z" * 900)
    seq, payload = consumer.get()
    assert payload == b"z" * 900 and seq == last + 1


def test_committed_is_shared_and_never_goes_back(handle):
    a, b = Ring(handle), Ring(handle)
    a.publish_committed(7)
    a.publish_committed(3)
    assert b.committed == 7


def _produce(handle, count: int) -> None:
    ring = Ring(handle)
    for i in range(count):
        body = (f"{i}:".encode() + bytes(range(256)) * (i % 13 + 1))
        ring.put(hashlib.sha256(body).digest() + body)
    ring.close()


def test_records_cross_processes_intact_under_a_full_ring(handle):
    """A spawned producer writes faster than we read, so it blocks on a full ring often."""
    count = 2000
    proc = CTX.Process(target=_produce, args=(handle, count))
    proc.start()
    consumer = Ring(handle)
    seen = 0
    deadline = time.monotonic() + 60
    while seen < count and time.monotonic() < deadline:
        ring_mod.wait_doorbell(handle.doorbell, 0.5)
        while (record := consumer.get()) is not None:
            _, payload = record
            digest, body = payload[:32], payload[32:]
            assert hashlib.sha256(body).digest() == digest
            assert body.startswith(f"{seen}:".encode())
            seen += 1
    proc.join(10)
    assert seen == count
    assert proc.exitcode == 0
