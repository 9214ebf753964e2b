"""Several farm hosts on one Redis: every supervisor announces itself in the node registry,
`farm status` shows every live host, and when one whole host is SIGKILLed (supervisor and
children) the others finish its work: farm-loadgen --verify balances exactly."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pytest

from farm import nodes
from farm.notify.outbox import NotifyKeys
from farm.redis_keys import Keys
from farm.sweep import KeyspaceSweep
from tests.support.farms import FarmProcess, write_config
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def host_config(tmp_path, redis_url, node: str, shared_db):
    # Both hosts write one SQLite file here; in production they share an engine cluster.
    return write_config(tmp_path / f"{node}.toml", tmp_path / node, redis_url, node_id=node,
                        extra=f'ring_mb = 1\n\n[store]\npath = "{shared_db}"\n')


def node_names(farm: FarmProcess) -> list[str]:
    return [record["node"] for record in farm.status().get("nodes", [])]


def farm_status_cli(config) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farm.cli", "status", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


def test_a_dead_host_is_finished_by_the_live_one(tmp_path, redis, redis_url):
    shared_db = tmp_path / "alerts.db"
    alpha_config = host_config(tmp_path, redis_url, "alpha", shared_db)
    beta_config = host_config(tmp_path, redis_url, "beta", shared_db)
    with FarmProcess(alpha_config, workers=1) as alpha:
        beta = FarmProcess(beta_config, workers=1).start()
        try:
            assert node_names(alpha) == node_names(beta) == ["alpha", "beta"]
            table = farm_status_cli(alpha_config)
            assert table.returncode == 0, table.stderr
            assert "farm hosts on this Redis: 2" in table.stdout
            loadgen = subprocess.Popen(
                [sys.executable, "-m", "loadgen.cli", "--config", str(alpha_config),
                 "--rate", "2MB/s", "--duration", "8s", "--mix", "prometheus:60,keep:40",
                 "--verify", "--json", "--quiet", "--seed", "11", "--min-achieved", "0"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # Strike once beta has work of its own in flight or done.
            wait_until(lambda: redis.get("farm:stats:batches_received") and any(
                redis.llen(k) for k in redis.scan_iter(match="farm:inflight:beta.*")),
                "beta holding a batch", 120, 0.01)
        finally:
            beta.kill()
        out, err = loadgen.communicate(timeout=900)
        assert loadgen.returncode == 0, err + out
        checked = json.loads(out)["verify"]
        assert checked["missing"] == checked["unexpected"] == checked["dead_lettered"] == 0
        assert checked["counter_problems"] == []
        assert checked["farm_received_expected"] == checked["sent"] > 0
        db = sqlite3.connect(shared_db)
        ids = [row[0] for row in db.execute("SELECT eventId FROM alerts")]
        db.close()
        assert len(ids) == len(set(ids)) == checked["stored"]
        # beta's record expires with its heartbeat: only alpha is left.
        wait_until(lambda: node_names(alpha) == ["alpha"], "beta's record to expire", 120, 0.5)
        assert "farm hosts on this Redis: 1" in farm_status_cli(alpha_config).stdout


def test_a_dead_nodes_notify_inflight_goes_back_once_its_record_expired(redis):
    keys = NotifyKeys("farm")
    nodes.announce(redis, "farm", {"node": "live"}, ttl_seconds=60)
    nodes.announce(redis, "farm", {"node": "dead"}, ttl_seconds=0.05)
    for node in ("live", "dead"):
        redis.lpush(keys.inflight(node), f"{node}-1", f"{node}-2")  # -2 taken last
    wait_until(lambda: not redis.exists(nodes.node_key("farm", "dead")), "dead's record to expire")
    assert nodes.recover_dead_senders(redis, Keys("farm")) == 2
    assert redis.llen(keys.inflight("live")) == 2 and not redis.exists(keys.inflight("dead"))
    assert redis.lrange(keys.queue, 0, -1) == [b"dead-2", b"dead-1"]  # dead-1 is taken first
    assert [r["node"] for r in nodes.live_nodes(redis, "farm")] == ["live"]
    # Once its lists are back, the dead node leaves the index: later calls cost nothing for it.
    assert redis.zrange(nodes.index_key("farm"), 0, -1) == [b"live"]
    nodes.withdraw(redis, "farm", "live")
    assert nodes.live_nodes(redis, "farm") == []


def test_a_sweep_finds_the_notify_lists_of_nodes_in_no_index(redis):
    keys = NotifyKeys("farm")
    redis.lpush(keys.inflight("before"), "a")  # a node of a farm from before the index
    assert nodes.recover_dead_senders(redis, Keys("farm")) == 0
    assert KeyspaceSweep(redis, Keys("farm"), every=600).run_pass() == (0, 1)
    assert nodes.recover_dead_senders(redis, Keys("farm")) == 1
    assert redis.lrange(keys.queue, 0, -1) == [b"a"]


def test_a_node_that_announced_again_since_it_was_read_as_dead_stays_in_the_index(redis):
    index = nodes.index_key("farm")
    forget = redis.register_script(nodes.FORGET_DEAD_LUA)
    read_at = int(time.time() * 1000)
    redis.zadd(index, {"gone": 1, "back": 1})  # both read as dead at read_at...
    nodes.announce(redis, "farm", {"node": "back"}, ttl_seconds=60)  # ...then one came back
    assert forget(keys=[index], args=[read_at, "gone", "back"]) == 1
    assert redis.zrange(index, 0, -1) == [b"back"]
    assert [r["node"] for r in nodes.live_nodes(redis, "farm")] == ["back"]
