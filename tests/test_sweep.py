"""The keyspace sweep (farm/sweep.py), on a real Redis and a real Redis Cluster: it finds the
inflight lists no registry names, a few SCAN pages at a time, and hands them to the registries,
where the regular recovery requeues them."""

from __future__ import annotations

from farm import nodes, queue
from farm.notify.outbox import NotifyKeys
from farm.redis_keys import Keys
from farm.redisconn import connect
from farm.sweep import KeyspaceSweep


def run_pass(sweep: KeyspaceSweep) -> tuple[tuple[int, int], int]:
    """Steps until the pass ends, as the supervisor's loop makes them: (what it registered,
    how many steps it took)."""
    for steps in range(1, 10_000):
        found = sweep.step(now=sweep.next_pass)
        if found is not None:
            return found, steps
    raise AssertionError("the sweep never finished its pass")


def test_a_pass_registers_lists_no_registry_names_a_few_pages_per_step(redis):
    keys = Keys("farm")
    for i in range(3000):  # a keyspace larger than one step's pages
        redis.set(keys.dedup("default", f"fp{i}"), "x")
    redis.lpush(keys.inflight("gone.0"), b"batch")  # from a farm from before the registries
    redis.lpush(NotifyKeys(keys.prefix).inflight("gone"), b"note")
    redis.set(keys.dedup("default", "a:inflight:b"), "x")  # a dedup key is never mistaken
    found, steps = run_pass(KeyspaceSweep(redis, keys, every=600, pages=1, count=500))
    assert found == (1, 1) and steps > 1
    assert queue.inflight_lists(redis, keys) == [("gone.0", 0)]
    assert queue.recover_orphans(redis, keys, live_nodes=set()) == 1
    assert nodes.recover_dead_senders(redis, keys) == 1
    assert redis.lrange(keys.queue("critical"), 0, -1) == [b"batch"]
    # Both left their registries once recovered: the next pass finds nothing new.
    assert queue.inflight_lists(redis, keys) == []
    assert run_pass(KeyspaceSweep(redis, keys, every=600))[0] == (0, 0)


def test_a_pass_covers_every_master_of_a_cluster(redis_cluster_url):
    client = connect(redis_cluster_url)
    keys = Keys("sw", shards=4, cluster=True)
    for shard in keys.all_shards():
        client.lpush(keys.inflight(f"old.{shard}", shard), b"batch")
    client.lpush(NotifyKeys(keys.shard_prefix(2)).inflight("gone"), b"note")
    found, _ = run_pass(KeyspaceSweep(client, keys, every=600, pages=1, count=10))
    assert found == (4, 1)
    assert queue.inflight_lists(client, keys) == [(f"old.{s}", s) for s in range(4)]
    assert queue.recover_orphans(client, keys, live_nodes=set()) == 4
    assert nodes.recover_dead_senders(client, keys) == 1
    client.close()
