"""Setting up the gateway: `farm keys add`, the start-up check, key presentation, lane choice."""

from __future__ import annotations

import base64
import os
import socket
import time

import pytest
from starlette.datastructures import Headers

from farm import config as config_mod
from farm.config.ingest import parse_watermark
from farm.ingest import process
from farm.ingest.api_keys import KeysError, add_key
from farm.ingest.auth import KeyRing, hash_key, presented_key
from farm.ingest.critical import is_critical
from tests.support.gateways import GatewayProcess, post, stored_batches
from tests.support.payloads import ALERTMANAGER
from tests.support.ports import free_port


def test_keys_add_writes_only_a_hash_and_keeps_the_rest_of_the_file(tmp_path):
    path = tmp_path / "farm.toml"
    original = '# my farm\n[farm]\ndata_dir = "data"  # kept\n\n[ingest]\nhttp = "127.0.0.1:1"\n'
    path.write_text(original)
    first = add_key(path, "acme")
    second = add_key(path, "acme")
    other = add_key(path, "beta")
    text = path.read_text()
    assert text.startswith(original)
    assert first not in text and second not in text
    cfg = config_mod.load(path)
    assert cfg.ingest.keys == {"acme": [hash_key(first), hash_key(second)],
                               "beta": [hash_key(other)]}
    ring = KeyRing(cfg.ingest.keys)
    assert [ring.tenant_for(k) for k in (first, second, other, "farm_x")] == \
        ["acme", "acme", "beta", None]


def test_keys_add_creates_a_missing_file_and_refuses_bad_tenant_names(tmp_path):
    path = tmp_path / "new.toml"
    key = add_key(path, "team-a.prod")
    assert config_mod.load(path).ingest.keys == {"team-a.prod": [hash_key(key)]}
    for bad in ("", "a:b", "a/b", "-x", "x" * 65):
        with pytest.raises(KeysError, match="1-64 letters"):
            add_key(path, bad)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give the file another owner")
def test_keys_add_keeps_the_files_owner_group_and_mode(tmp_path):
    """As root on a root:farm 0640 config, the farm must still read the file afterwards."""
    path = tmp_path / "farm.toml"
    path.write_text("[farm]\n")
    os.chown(path, 65534, 65534)
    path.chmod(0o640)
    add_key(path, "acme")
    kept = path.stat()
    assert (kept.st_uid, kept.st_gid, kept.st_mode & 0o777) == (65534, 65534, 0o640)


def test_a_key_added_while_the_gateway_runs_is_taken_up_without_a_restart(tmp_path, redis,
                                                                           redis_url):
    path = tmp_path / "farm.toml"
    path.write_text(f'[ingest]\nhttp = "127.0.0.1:{free_port()}"\nrate = "100000/s"\n')
    with GatewayProcess(path, redis_url) as gw:
        assert post(f"{gw.url}/alerts/event/prometheus", ALERTMANAGER,
                    key="farm_nobody").status_code == 401
        key = add_key(path, "late")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            response = post(f"{gw.url}/alerts/event/prometheus", ALERTMANAGER, key=key)
            if response.status_code == 202:
                break
            time.sleep(0.2)
        assert response.status_code == 202
    assert stored_batches(redis)[response.json()["batch"]][1].tenant == "late"


def test_a_config_file_that_cannot_be_read_does_not_stop_keys_being_taken_up(tmp_path, redis,
                                                                                redis_url):
    path = tmp_path / "farm.toml"
    text = f'[ingest]\nhttp = "127.0.0.1:{free_port()}"\nrate = "100000/s"\n'
    path.write_text(text)
    with GatewayProcess(path, redis_url) as gw:
        path.write_bytes(text.encode() + b"# \xff\xfe is not UTF-8\n")
        deadline = time.monotonic() + 20
        while "cannot be read" not in gw.tail() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "UnicodeDecodeError" in gw.tail()
        path.write_text(text)
        key = add_key(path, "late")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            response = post(f"{gw.url}/alerts/event/prometheus", ALERTMANAGER, key=key)
            if response.status_code == 202:
                break
            time.sleep(0.2)
        assert response.status_code == 202
        assert gw.tail().count("cannot be read") == 1


def _cfg(tmp_path, ingest: str, keys: bool = False):
    text = f"[ingest]\n{ingest}\n"
    if keys:
        text += f'[ingest.keys]\nacme = ["{hash_key("k")}"]\n'
    path = tmp_path / "farm.toml"
    path.write_text(text)
    return config_mod.load(path)


def test_check_warns_when_bound_beyond_loopback_without_keys(tmp_path):
    warnings = process.check(_cfg(tmp_path, f'http = "0.0.0.0:{free_port()}"'))
    assert any("beyond loopback" in w for w in warnings)
    assert process.check(_cfg(tmp_path, f'http = "0.0.0.0:{free_port()}"', keys=True)) == []
    anonymous = process.check(_cfg(tmp_path, f'http = "127.0.0.1:{free_port()}"\n'
                                             f'allow_anonymous = true'))
    assert any("allow_anonymous" in w for w in anonymous)


def test_check_warns_when_max_connections_cannot_hold_max_inflight_requests(tmp_path):
    warnings = process.check(_cfg(tmp_path, f'http = "127.0.0.1:{free_port()}"\n'
                                            f'max_connections = 100\nmax_inflight = 200',
                                  keys=True))
    assert any("max_connections (100) is below max_inflight (200)" in w for w in warnings)
    assert process.check(_cfg(tmp_path, f'http = "127.0.0.1:{free_port()}"', keys=True)) == []


def test_check_stops_start_up_for_inverted_watermarks_and_a_busy_port(tmp_path):
    with pytest.raises(config_mod.ConfigError, match="low_water"):
        process.check(_cfg(tmp_path, f'http = "127.0.0.1:{free_port()}"\n'
                                     f'high_water = "1GB"\nlow_water = "2GB"', keys=True))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(config_mod.ConfigError, match="cannot listen"):
            process.check(_cfg(tmp_path, f'http = "127.0.0.1:{port}"', keys=True))
    with pytest.raises(config_mod.ConfigError, match="max_inflight_bytes .* at least max_body"):
        process.check(_cfg(tmp_path, f'http = "127.0.0.1:{free_port()}"\nmax_body = "10MB"\n'
                                     f'max_inflight_bytes = "1MB"', keys=True))


def test_config_refuses_malformed_key_hashes_and_rate_names(tmp_path):
    path = tmp_path / "farm.toml"
    path.write_text('[ingest.keys]\nacme = ["plain-text-key"]\n'
                    '[ingest.rates]\n"acme/nagios" = "5/s"\n')
    with pytest.raises(config_mod.ConfigError) as caught:
        config_mod.load(path)
    text = str(caught.value)
    assert "sha256:" in text and "acme/nagios" in text


def test_watermarks_are_sizes_or_batch_counts():
    assert parse_watermark("1GB") == (1_000_000_000, "bytes")
    assert parse_watermark("512MiB") == (512 * 1024**2, "bytes")
    assert parse_watermark("50000") == (50000, "batches")
    assert parse_watermark("50000 batches") == (50000, "batches")
    with pytest.raises(ValueError):
        parse_watermark("lots")


@pytest.mark.parametrize("headers, query, expected", [
    ({"X-API-KEY": "k1"}, b"", "k1"),
    ({}, b"a=1&api_key=k2", "k2"),
    ({"Authorization": "Basic " + base64.b64encode(b"api_key:k3").decode()}, b"", "k3"),
    ({"Authorization": "bearer k4"}, b"", "k4"),
    ({"Authorization": "Digest k5"}, b"", "k5"),
    ({"Authorization": "Basic " + base64.b64encode(b"user-only").decode()}, b"", None),
    ({}, b"api_key=", None),
    ({}, b"", None),
])
def test_keys_are_read_from_header_query_basic_and_bearer(headers, query, expected):
    assert presented_key(Headers(headers), query) == expected


@pytest.mark.parametrize("provider, event, critical", [
    ("prometheus", ALERTMANAGER, False),
    ("prometheus", {"alerts": [{"labels": {"severity": "warning"}},
                               {"labels": {"severity": "critical"}}]}, True),
    ("prometheus", {"labels": {"severity": "critical"}}, True),
    ("grafana", {"alerts": [{"labels": {"severity": "critical"}}]}, True),
    ("grafana", {"evalMatches": [], "state": "alerting"}, True),
    ("datadog", {"severity": "P1"}, True),
    ("datadog", {"severity": "P2"}, False),
    ("zabbix", {"severity": "Disaster"}, True),
    ("zabbix", {"severity": "5"}, True),
    ("zabbix", {"severity": "High"}, False),
    ("keep", {"severity": "critical"}, True),
    ("keep", {"severity": 5}, True),
    ("keep", {"severity": "Critical"}, False),
    ("keep", {"severity": True}, False),
])
def test_critical_alerts_are_recognised_by_each_providers_own_severity(provider, event,
                                                                       critical):
    assert is_critical(provider, [event]) is critical


def test_a_key_ring_remembers_valid_keys_only_and_a_reloaded_ring_forgets_revoked_ones():
    ring = KeyRing({"acme": [hash_key("farm_valid")]})
    assert ring.tenant_for("farm_valid") == "acme"
    assert ring.tenant_for("farm_valid") == "acme"   # now from memory
    for n in range(KeyRing.REMEMBERED + 10):          # a flood of wrong keys
        assert ring.tenant_for(f"farm_wrong{n}") is None
    assert ring.tenant_for("farm_valid") == "acme"
    revoked = KeyRing({"acme": [hash_key("farm_other")]})
    assert revoked.tenant_for("farm_valid") is None
