"""The console's key rules, on the real app (Starlette's test client) and a real Redis: open on
loopback without a key, closed beyond loopback without one, a key opens it (header, login
cookie), and replaying dead letters needs the admin key typed into the form."""

from __future__ import annotations

import hashlib

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from farm import config
from farm.console import console_routes
from farm.deadletters import dead_letter
from farm.redis_keys import Keys

KEY, ADMIN = "farm_reader-key", "farm_admin-key"


def digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def client(redis, tmp_path, http: str, **console) -> TestClient:
    cfg = config.load(None, env={}, overrides={
        "farm": {"data_dir": str(tmp_path)}, "supervisor": {"http": http},
        "console": console})
    app = Starlette(routes=console_routes(cfg, lambda: redis))
    return TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)


def test_loopback_without_a_key_is_open(redis, tmp_path):
    answer = client(redis, tmp_path, "127.0.0.1:9464").get("/ui")
    assert answer.status_code == 200 and 'id="filters"' in answer.text
    assert 'no store at' in answer.text  # nothing indexed yet: a line, not a traceback


def test_beyond_loopback_without_a_key_is_closed_and_says_why(redis, tmp_path):
    web = client(redis, tmp_path, "0.0.0.0:9464")
    for path in ("/ui", "/ui/dlq", "/ui/account"):
        answer = web.get(path)
        assert answer.status_code == 403
        assert "[console] key is not set" in answer.text


@pytest.mark.parametrize("http", ["127.0.0.1:9464", "0.0.0.0:9464"])
def test_a_key_opens_the_console_by_header_or_login_cookie(redis, tmp_path, http):
    web = client(redis, tmp_path, http, key=digest(KEY))
    assert web.get("/ui").status_code == 401
    assert web.get("/ui", headers={"X-API-KEY": "wrong"}).status_code == 401
    assert web.get("/ui", headers={"X-API-KEY": KEY}).status_code == 200
    refused = web.post("/ui/login", data={"key": "wrong"})
    assert refused.status_code == 401 and 'id="login-failed"' in refused.text
    login = web.post("/ui/login", data={"key": KEY})
    assert login.status_code == 303
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    assert web.get("/ui/account").status_code == 200  # the cookie carries the key
    web.get("/ui/logout")
    assert web.get("/ui").status_code == 401


def test_replay_needs_the_admin_key_typed_into_the_form(redis, tmp_path):
    keys = Keys("farm")
    redis.lpush(keys.dlq, dead_letter("bad", "normalize", {"name": "x"}, "b1", "default",
                                      "keep"))
    web = client(redis, tmp_path, "127.0.0.1:9464", admin_key=digest(ADMIN))
    assert 'id="replay"' in web.get("/ui/dlq").text
    assert web.post("/ui/dlq/replay", data={"admin_key": "wrong"}).status_code == 403
    assert redis.llen(keys.dlq) == 1
    done = web.post("/ui/dlq/replay", data={"admin_key": ADMIN})
    assert done.status_code == 303 and "replayed+1" in done.headers["location"]
    assert redis.llen(keys.dlq) == 0 and redis.llen(keys.queue("normal")) == 1


def test_without_an_admin_key_the_console_is_read_only(redis, tmp_path):
    web = client(redis, tmp_path, "127.0.0.1:9464")
    assert 'id="read-only"' in web.get("/ui/dlq").text
    assert web.post("/ui/dlq/replay", data={"admin_key": ""}).status_code == 403


def test_a_key_that_is_not_a_hash_is_a_config_error():
    with pytest.raises(config.ConfigError, match=r"\[console\] key.*farm console key"):
        config.load(None, env={}, overrides={"console": {"key": KEY}})
