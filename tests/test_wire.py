"""Wire format v1: what producers send and how bad batches are refused."""

from __future__ import annotations

import uuid

import msgpack
import pytest

from farm.wire import BATCH_ID_MAX, BadBatch, decode_batch, encode_batch, peek_batch_id


def test_round_trip_keeps_every_field():
    raw = encode_batch([{"a": 1}, {"b": [1, 2]}], "prometheus", tenant="acme", batch_id="b1",
                       sent_at=1700000000.5)
    batch = decode_batch(raw)
    assert batch == ("b1", "acme", "prometheus", 1700000000.5, [{"a": 1}, {"b": [1, 2]}],
                     None, None, None)


def test_a_control_batch_carries_its_command_and_a_bad_one_is_refused():
    env = {**msgpack.unpackb(encode_batch([], "keep")), "control": {"resolve_incident": "x"}}
    assert decode_batch(msgpack.packb(env)).control == {"resolve_incident": "x"}
    with pytest.raises(BadBatch, match="'control' must be a map"):
        decode_batch(msgpack.packb({**env, "control": "resolve"}))


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
    (msgpack.packb({"v": 1, "id": 7, "provider": "keep", "sent_at": 1, "events": []}),
     "bad batch id 7"),
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


def envelope(**changed) -> bytes:
    return msgpack.packb({"v": 1, "id": "b1", "provider": "keep", "sent_at": 1, "events": [],
                          **changed})


@pytest.mark.parametrize("version", [1.0, True, "1", None])
def test_the_version_is_exactly_the_integer_1(version):
    with pytest.raises(BadBatch, match=f"wire version {version!r} is not supported "
                                       f"\\(this farm reads the integer 1\\)"):
        decode_batch(envelope(v=version))


@pytest.mark.parametrize("batch_id", [uuid.uuid4().hex, str(uuid.uuid4()), "a" * BATCH_ID_MAX,
                                      "job-42.retry_1", "0"])
def test_plain_batch_ids_up_to_128_characters_pass(batch_id):
    assert decode_batch(envelope(id=batch_id)).id == batch_id
    assert decode_batch(encode_batch([], "keep", batch_id=batch_id)).id == batch_id


@pytest.mark.parametrize("batch_id", ["", "a" * (BATCH_ID_MAX + 1), "x" * 100_000, "a:b",
                                      "a b", "a/b", "a\nb", "é", "b1\x00"])
def test_a_batch_id_too_long_or_not_plain_is_refused(batch_id):
    with pytest.raises(BadBatch, match="bad batch id .*'id' must be 1 to 128 characters of "
                                       "A-Z a-z 0-9 . _ -") as refused:
        decode_batch(envelope(id=batch_id))
    assert len(str(refused.value)) < 200  # one readable line, however long the id
    with pytest.raises(ValueError, match="bad batch id"):
        encode_batch([], "keep", batch_id=batch_id)


def test_a_dead_letter_names_a_huge_batch_id_by_its_first_characters():
    assert peek_batch_id(envelope(id="x" * 100_000)) == "x" * BATCH_ID_MAX
    assert peek_batch_id(envelope(id=["not", "a", "string"])) is None
