"""The worker's per-batch requests to a single Redis (farm/held_connection.py): pipelined on
one held connection, replies in order, error replies handed back, calls sent ahead answered
before the next request's own, a dropped connection raised once (to every call still owed a
reply) and then replaced."""

from __future__ import annotations

import threading

import pytest
import redis as redis_lib

from farm.held_connection import command, request, send_ahead
from farm.redisconn import run_scripts, scripts_ahead


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


def test_replies_sent_ahead_are_read_before_the_next_requests_own(redis):
    ahead = send_ahead(redis, [("INCR", "n"), ("LPUSH", "n", "x")])
    later = send_ahead(redis, [("INCR", "n")])
    assert request(redis, [("GET", "n")]) == [b"2"]  # both ran first, in the order sent
    first = ahead.replies()
    assert first[0] == 1 and isinstance(first[1], redis_lib.ResponseError)
    assert later.replies() == [2]
    # Asked for before any other request, a reply is waited for.
    assert send_ahead(redis, [("INCR", "n")]).replies() == [3]


def test_a_call_sent_ahead_from_another_thread_runs_at_once(redis):
    request(redis, [("PING",)])  # this thread holds the connection
    box = {}
    thread = threading.Thread(target=lambda: box.update(ahead=send_ahead(redis, [("INCR", "t")])))
    thread.start()
    thread.join()
    assert redis.get("t") == b"1" and box["ahead"].replies() == [1]


def test_a_dropped_connection_fails_the_calls_still_owed_a_reply(redis):
    request(redis, [("CLIENT", "SETNAME", "held-ahead")])
    [held] = [c for c in redis.client_list() if c["name"] == "held-ahead"]
    owed = send_ahead(redis, [("BLPOP", "nothing", 10)])  # still running when the link drops
    redis.execute_command("CLIENT", "KILL", "ID", held["id"])
    with pytest.raises(redis_lib.ConnectionError):
        request(redis, [("SET", "k", "1")])
    with pytest.raises(redis_lib.ConnectionError):
        owed.replies()  # what ran is unknown: the worker starts over from its inflight list
    assert request(redis, [("SET", "k", "2"), ("GET", "k")]) == [b"OK", b"2"]
    assert send_ahead(redis, [("GET", "k")]).replies() == [b"2"]


def test_scripts_sent_ahead_are_loaded_when_the_server_lacks_them(redis):
    add = redis.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    redis.script_flush()
    replies = scripts_ahead(redis, [(add, ["a"], [2]), (add, ["a"], [3])])
    assert request(redis, [("GET", "a")]) == [None]  # neither ran: the script was missing
    assert replies() == [2, 5]
    boom = redis.register_script("return redis.error_reply('no way')")
    with pytest.raises(redis_lib.ResponseError, match="no way"):
        scripts_ahead(redis, [(boom, ["a"], [])])()
