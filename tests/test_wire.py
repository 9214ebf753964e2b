"""Wire format v1: what producers send and how bad batches are refused."""

from __future__ import annotations

import msgpack
import pytest

from farm.wire import BadBatch, decode_batch, encode_batch


def test_round_trip_keeps_every_field():
    raw = encode_batch([{"a": 1}, {"b": [1, 2]}], "prometheus", tenant="acme", batch_id="b1",
                       sent_at=1700000000.5)
    batch = decode_batch(raw)
    assert batch == ("b1", "acme", "prometheus", 1700000000.5, [{"a": 1}, {"b": [1, 2]}],
                     None, None)


def test_keeps_query_parameters_the_gateway_received():
    raw = encode_batch([], "prometheus", provider_id="am-eu", fingerprint="fp-1")
    batch = decode_batch(raw)
    assert (batch.provider_id, batch.fingerprint) == ("am-eu", "fp-1")
    with pytest.raises(BadBatch, match="'fingerprint' must be a string"):
        decode_batch(msgpack.packb({**msgpack.unpackb(raw), "fingerprint": 7}))


def test_envelope_is_a_plain_msgpack_map():
    env = msgpack.unpackb(encode_batch([], "keep"))
    assert set(env) == {"v", "id", "tenant", "provider", "sent_at", "events"}
    assert env["v"] == 1 and env["tenant"] == "default" and len(env["id"]) == 32


def test_unknown_provider_is_refused_when_encoding():
    with pytest.raises(ValueError, match="unknown provider 'nagios'"):
        encode_batch([], "nagios")


@pytest.mark.parametrize("raw, reason", [
    (b"\xc1garbage", "not msgpack"),
    (msgpack.packb([1, 2, 3]), "envelope is a list"),
    (msgpack.packb({"v": 2, "id": "x", "provider": "keep", "sent_at": 1, "events": []}),
     "wire version 2 is not supported"),
    (msgpack.packb({"v": 1, "provider": "keep", "sent_at": 1, "events": []}), "missing batch id"),
    (msgpack.packb({"v": 1, "id": "x", "provider": "nagios", "sent_at": 1, "events": []}),
     "unknown provider 'nagios'"),
    (msgpack.packb({"v": 1, "id": "x", "provider": "keep", "sent_at": "now", "events": []}),
     "'sent_at' must be unix seconds"),
    (msgpack.packb({"v": 1, "id": "x", "provider": "keep", "sent_at": 1, "events": {}}),
     "'events' must be a list"),
    (msgpack.packb({"v": 1, "id": "x", "tenant": "a:b", "provider": "keep", "sent_at": 1,
                    "events": []}), "bad tenant"),
])
def test_bad_batches_are_refused_with_a_reason(raw, reason):
    with pytest.raises(BadBatch, match=reason):
        decode_batch(raw)


def test_missing_tenant_means_default():
    raw = msgpack.packb({"v": 1, "id": "x", "provider": "keep", "sent_at": 1, "events": []})
    assert decode_batch(raw).tenant == "default"
