"""loadgen's generators: every provider's real webhook shape, Keep's fingerprints, the size
distribution, determinism, and wire-v1 batches byte-identical to farm's encoder."""

from __future__ import annotations

import hashlib
import statistics

import msgpack
import orjson
import pytest

from farm.providers import NORMALIZERS
from farm.wire import decode_batch, encode_batch
from loadgen.envelope import Envelope, batch_id
from loadgen.fingerprints import fingerprints_of, keep_fingerprint_of_doc
from loadgen.population import PopulationSpec, build_population
from loadgen.profiles import PROFILES
from loadgen.providers.group import Shape
from loadgen.stream import Stream, StreamSpec
from tests.support.provider_shapes import CHECKS

MIX = {"prometheus": 60, "grafana": 20, "datadog": 10, "zabbix": 5, "keep": 5}
EPOCH = 1_790_000_000.0


def stream_of(seed: int, fingerprints: int = 2000, encoding: str = "msgpack",
              mix: dict | None = None, producer: int = 0) -> Stream:
    mix = mix or MIX
    spec = PopulationSpec(seed=seed, fingerprints=fingerprints, mix=mix, shape=Shape(),
                          encoding=encoding)
    population = build_population(spec, producer, 1)
    return Stream(StreamSpec(seed=seed, repeat=0.3, flap=0.2, epoch=EPOCH, unit="bytes",
                             rate=1e6, profile=PROFILES["steady"], planned=60, guard=50),
                  population, mix, producer)


def bodies(stream: Stream, sends: int):
    """(provider, JSON body, group) of each send; over the msgpack encoding a Keep list
    is its events."""
    for _ in range(sends):
        group = stream.next()
        events = [msgpack.unpackb(e) for e in group.current]
        body = events if group.provider == "keep" else events[0]
        yield group.provider, body, group


@pytest.mark.parametrize("provider", list(MIX))
def test_every_notification_has_the_providers_real_shape(provider):
    stream = stream_of(7, fingerprints=400, mix={provider: 1})
    statuses = set()
    for name, body, _group in bodies(stream, 1500):
        CHECKS[name](body)
        statuses.add(orjson.dumps(body).count(b'"resolved"') > 0
                     or orjson.dumps(body).count(b'"RESOLVED"') > 0
                     or b'"Recovered"' in orjson.dumps(body))
    assert statuses == {True, False}, "both firing and resolved notifications are sent"


def test_http_bodies_are_the_same_json_as_the_wire_events():
    over_json = stream_of(11, encoding="json")
    over_wire = stream_of(11)
    for _ in range(500):
        a, b = over_json.next(), over_wire.next()
        events = [msgpack.unpackb(e) for e in b.current]
        assert orjson.loads(a.current[0]) == (events if b.provider == "keep" else events[0])
        assert len(a.current[0]) == a.size, "the JSON size is the volume counted"


def test_claimed_fingerprints_follow_keeps_rules_and_are_unique():
    stream = stream_of(3)
    seen: dict[str, tuple] = {}
    for provider, body, group in bodies(stream, 4000):
        events = body if provider == "keep" else [body]
        claimed = [fp for event in events for fp in fingerprints_of(provider, event)]
        assert claimed == list(group.fingerprints)
        for fp in claimed:
            assert seen.setdefault(fp, (group.index, provider)) == (group.index, provider), \
                f"fingerprint {fp} shared by two alert groups"


@pytest.mark.parametrize("provider", [p for p in MIX if p in NORMALIZERS])
def test_farms_normalizer_reads_every_alert_with_keeps_fingerprint(provider):
    stream = stream_of(5, fingerprints=300, mix={provider: 1})
    for _, body, group in bodies(stream, 600):
        events = body if provider == "keep" else [body]
        alerts = [a for e in events for a in NORMALIZERS[provider](e, "2026-01-01T00:00:00.000Z")]
        assert len(alerts) == group.alerts
        for alert in alerts:
            alert["providerType"] = provider
        assert [keep_fingerprint_of_doc(a) for a in alerts] == list(group.fingerprints)


def test_payload_sizes_have_a_median_near_1kib_and_a_long_tail_to_64kib():
    spec = PopulationSpec(seed=1, fingerprints=10_000, mix=MIX, shape=Shape())
    sizes = sorted(g.sizes[s] for groups in build_population(spec, 0, 1).values()
                   for g in groups for s in ("firing", "resolved"))
    assert 768 <= statistics.median(sizes) <= 1536
    assert max(sizes) <= 64 * 1024
    assert sum(1 for s in sizes if s > 16 * 1024) >= len(sizes) * 0.003, "a long tail"


def digest_of_stream(seed: int, sends: int = 3000, producer: int = 0) -> str:
    stream = stream_of(seed, producer=producer)
    h = hashlib.sha256()
    for _ in range(sends):
        group = stream.next()
        for event in group.current:
            h.update(event)
    return h.hexdigest()


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes():
    assert digest_of_stream(42) == digest_of_stream(42)
    assert digest_of_stream(42) != digest_of_stream(43)
    assert digest_of_stream(42, producer=1) != digest_of_stream(42, producer=0)


def test_batches_are_byte_identical_to_farms_encoder():
    stream = stream_of(9)
    envelope = Envelope("acme")
    for seq in range(20):
        group = stream.next()
        bid = batch_id("0123456789abcdef", 3, seq)
        raw = envelope.batch(bid, group.provider, EPOCH + seq, list(group.current))
        events = [msgpack.unpackb(e) for e in group.current]
        assert raw == encode_batch(events, group.provider, "acme", bid, EPOCH + seq)
        batch = decode_batch(raw)
        assert (batch.id, batch.tenant, batch.provider) == (bid, "acme", group.provider)
    assert len(bid) == 32 and bid.startswith("0123456789abcdef0003")
