"""The reliable queue on a real Redis: take, ack in commit order, requeue the dead."""

from __future__ import annotations

import msgpack

from farm import queue
from farm.queue import ShardAck, WorkQueue
from farm.redis_keys import Keys
from farm.redisconn import Rider, Riders
from farm.sweep import KeyspaceSweep

KEYS = Keys("farm")


def test_critical_lane_is_taken_first(redis):
    redis.lpush(KEYS.queue("normal"), b"n1")
    redis.lpush(KEYS.queue("critical"), b"c1")
    redis.lpush(KEYS.queue("critical"), b"c2")
    q = WorkQueue(redis, KEYS, "w0", 10)
    q.claim()
    assert q.take(0) == [(0, b"c1"), (0, b"n1")]
    assert q.take(0) == [(0, b"c2")]
    assert redis.lrange(KEYS.inflight("w0"), 0, -1) == [b"c2", b"n1", b"c1"]


def test_take_blocks_briefly_on_an_empty_queue(redis):
    q = WorkQueue(redis, KEYS, "w0", 10)
    q.claim()
    assert q.take(0.05) == []


def test_ack_trims_the_oldest_counts_and_dead_letters_atomically(redis):
    for raw in (b"a", b"b", b"c"):
        redis.lpush(KEYS.queue("normal"), raw)
    q = WorkQueue(redis, KEYS, "w0", 10)
    q.claim()
    for _ in range(3):
        q.take(0)
    redis.set(KEYS.decided("a/0"), "n")
    letter = msgpack.packb({"reason": "bad"})
    counts = {"alerts_received": 5, "alerts_indexed": 4, "alerts_dead": 1}
    assert q.ack({0: ShardAck(2, counts, [letter], [KEYS.decided("a/0")])}) == []
    assert redis.lrange(KEYS.inflight("w0"), 0, -1) == [b"c"]
    assert queue.read_stats(redis, KEYS)["alerts_received"] == 5
    assert redis.lrange(KEYS.dlq, 0, -1) == [letter]
    assert not redis.exists(KEYS.decided("a/0"))


def test_a_worker_whose_lease_expired_loses_its_batches_to_the_queue(redis):
    redis.lpush(KEYS.queue("normal"), b"a")
    q = WorkQueue(redis, KEYS, "w0", 10)
    q.claim()
    q.take(0)
    redis.delete(KEYS.heartbeat("w0"))  # the heartbeat expired
    assert queue.recover_orphans(redis, KEYS) == 1
    assert redis.lrange(KEYS.queue("critical"), 0, -1) == [b"a"]
    redis.lpush(KEYS.queue("normal"), b"b")
    assert q.take(0) == [(0, b"a"), (0, b"b")]  # taken again after the theft
    # The old ack of 'a' must not trim the new 'a' as if it were committed: the lease check
    # refuses it.
    assert q.ack({0: ShardAck(1, {"alerts_received": 1})}) == [0]
    assert redis.lrange(KEYS.inflight("w0"), 0, -1) == [b"b", b"a"]
    assert queue.read_stats(redis, KEYS)["alerts_received"] == 0


def test_recover_keeps_order_and_counts_redeliveries(redis):
    for raw in (b"1", b"2", b"3"):
        redis.lpush(KEYS.queue("normal"), raw)
    q = WorkQueue(redis, KEYS, "w0", 10)
    q.claim()
    for _ in range(3):
        q.take(0)
    assert queue.recover(redis, KEYS, "w0") == 0  # its heartbeat is alive
    assert queue.recover(redis, KEYS, "w0", force=True) == 3
    q2 = WorkQueue(redis, KEYS, "w1", 10)
    q2.claim()
    assert [q2.take(0)[0][1] for _ in range(3)] == [b"1", b"2", b"3"]
    assert queue.read_stats(redis, KEYS)["batches_redelivered"] == 3


def test_depths_report_lanes_and_inflight(redis):
    redis.lpush(KEYS.queue("normal"), b"c", b"a", b"b")
    q = WorkQueue(redis, KEYS, "x.0", 10)
    q.claim()
    q.take(0)
    assert queue.depths(redis, KEYS) == {"critical": 0, "normal": 2, "inflight": 1}


def test_workers_are_found_through_their_shard_sets_and_leave_them_on_a_clean_stop(redis):
    keys = Keys("farm", shards=2)
    q = WorkQueue(redis, keys, "n.0", 10)
    q.claim()
    assert queue.inflight_lists(redis, keys) == [("n.0", 0), ("n.0", 1)]
    assert queue.inflight_lists(redis, keys, "m.*") == []
    q.release()
    assert queue.inflight_lists(redis, keys) == []


def test_a_sweep_finds_lists_no_set_names_and_adds_them(redis):
    redis.lpush(KEYS.inflight("old.0"), b"a")  # written by a farm from before the sets
    assert queue.inflight_lists(redis, KEYS) == []
    assert queue.recover_orphans(redis, KEYS) == 0  # the registry alone cannot see it
    assert KeyspaceSweep(redis, KEYS, every=600).run_pass() == (1, 0)
    assert queue.inflight_lists(redis, KEYS) == [("old.0", 0)]
    assert queue.recover_orphans(redis, KEYS) == 1  # the sweep added it to the set
    assert redis.lrange(KEYS.queue("critical"), 0, -1) == [b"a"]


def test_a_dead_hosts_workers_leave_the_sets_and_a_live_hosts_stay(redis):
    for worker_id in ("dead.0", "live.0"):
        redis.lpush(KEYS.queue("normal"), worker_id.encode())
        q = WorkQueue(redis, KEYS, worker_id, 10)
        q.claim()
        q.take(0)
        redis.delete(KEYS.heartbeat(worker_id))  # both leases lapsed
    assert queue.recover_orphans(redis, KEYS, live_nodes={"live"}) == 2
    assert sorted(redis.lrange(KEYS.queue("critical"), 0, -1)) == [b"dead.0", b"live.0"]
    # The live host's worker may take again before it notices; it stays findable.
    assert queue.inflight_lists(redis, KEYS) == [("live.0", 0)]


def test_sharded_queue_takes_every_shard_in_turn_and_recovers_each(redis):
    keys = Keys("farm", shards=3)
    for shard in keys.all_shards():
        redis.lpush(keys.queue("normal", shard), f"n{shard}".encode())
    redis.lpush(keys.queue("critical", 2), b"c2")
    q = WorkQueue(redis, keys, "w0", 10)
    q.claim()
    taken = [item for _ in range(3) for item in q.take(0)]
    assert sorted(taken) == [(0, b"n0"), (1, b"n1"), (2, b"c2"), (2, b"n2")]
    assert taken.index((2, b"c2")) < taken.index((2, b"n2"))  # critical first in its shard
    assert q.ack({1: ShardAck(1, {"alerts_received": 2})}, refresh_all=True) == []
    assert queue.read_stats(redis, keys)["alerts_received"] == 2
    assert queue.recover(redis, keys, "w0", force=True) == 3
    assert queue.depths(redis, keys) == {"critical": 3, "normal": 0, "inflight": 0}
    assert queue.read_stats(redis, keys)["batches_redelivered"] == 3


def test_an_idle_take_sweeps_every_shard_in_turn_critical_first(redis):
    keys = Keys("idle", shards=4)
    q = WorkQueue(redis, keys, "w0", 10)
    q.claim()
    assert q.take(0) == []  # every shard empty: the next take sweeps them all at once
    redis.lpush(keys.queue("normal", 0), b"n0")
    redis.lpush(keys.queue("normal", 2), b"n2")
    redis.lpush(keys.queue("critical", 2), b"c2")
    assert q.take(0) == [(2, b"c2"), (2, b"n2"), (0, b"n0")]  # from shard 1 on, in turn
    for shard in (2, 3):
        redis.lpush(keys.queue("normal", shard), f"m{shard}".encode())
    assert q.take(0) == [(2, b"m2")]  # busy again: one shard per take, the next in turn
    assert q.take(0) == [(3, b"m3")]


def test_a_waiting_ack_rides_the_next_take_on_a_single_redis(redis):
    """An ack waiting for a ride goes in the take's request, its reply handed back, and the
    take still returns what it moved, oldest first."""
    q = WorkQueue(redis, KEYS, "w0", 10)
    q.claim()
    redis.lpush(KEYS.queue("normal"), b"a")
    assert q.take(0) == [(0, b"a")]
    redis.lpush(KEYS.queue("normal"), b"b")
    replies: list = []
    riders = Riders.of(redis)
    for _, (script, keys, args) in q.ack_calls({0: ShardAck(trim=1,
                                                             counts={"batches_received": 1})}):
        riders.add(Rider(script, keys, args, replies.append))
    assert q.take(0.05) == [(0, b"b")]
    assert replies == [1] and riders.waiting == []
    assert redis.lrange(KEYS.inflight("w0"), 0, -1) == [b"b"]
    assert queue.read_stats(redis, KEYS)["batches_received"] == 1
