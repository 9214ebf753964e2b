"""The worker's per-batch requests to a single Redis (farm/redisconn.py `request`): pipelined
on one held connection, replies in order, error replies handed back, a dropped connection
raised once and then replaced."""

from __future__ import annotations

import pytest
import redis as redis_lib

from farm.redisconn import command, request, run_scripts


def test_a_request_answers_in_order_and_hands_back_error_replies(redis):
    replies = request(redis, [("INCR", "n"), ["LPUSH", "n", "x"], ("INCR", "n")])
    assert replies[0] == 1 and replies[2] == 2
    assert isinstance(replies[1], redis_lib.ResponseError) and "WRONGTYPE" in str(replies[1])
    with pytest.raises(redis_lib.ResponseError):
        command(redis, "LPUSH", "n", "x")
    assert command(redis, "LMOVE", "empty", "other", "RIGHT", "LEFT") is None


def test_scripts_the_server_lacks_are_loaded_and_sent_again(redis):
    add = redis.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    redis.script_flush()
    assert run_scripts(redis, [(add, ["a"], [2])]) == [2]
    redis.script_flush()
    assert run_scripts(redis, [(add, ["a"], [3]), (None, ["b"], ["SET", "b", "1"])]) == [5, b"OK"]


def test_a_dropped_connection_fails_one_request_and_the_next_reconnects(redis):
    request(redis, [("CLIENT", "SETNAME", "held-by-test")])
    held = [c for c in redis.client_list() if c["name"] == "held-by-test"]
    assert len(held) == 1
    redis.execute_command("CLIENT", "KILL", "ID", held[0]["id"])
    with pytest.raises(redis_lib.ConnectionError):
        request(redis, [("SET", "k", "1")] * 3)
    assert request(redis, [("SET", "k", "2"), ("GET", "k")]) == [b"OK", b"2"]
