"""The send stream: repeats are exact re-sends, every version is new content (as Keep's dedup
sees it), the ratios hold, and a storm re-sends one alert identically from every producer."""

from __future__ import annotations

import collections
import dataclasses

import msgpack
import pytest

from farm.dedup import ContentHasher
from farm.providers import NORMALIZERS
from loadgen.population import MEMBER_SHIFT, PopulationSpec, build_population, build_storm_group
from loadgen.profiles import PROFILES, SLICE
from loadgen.providers.group import Shape
from loadgen.stream import Stream, StreamSpec

MIX = {"prometheus": 60, "grafana": 20, "datadog": 10, "zabbix": 5, "keep": 5}


def make_stream(seed=1, repeat=0.3, flap=0.1, fingerprints=2000, profile="steady",
                producer=0, producers=1, guard=50):
    spec = PopulationSpec(seed=seed, fingerprints=fingerprints, mix=MIX, shape=Shape())
    storm = build_storm_group(spec, producers) if profile == "storm" else None
    return Stream(StreamSpec(seed=seed, repeat=repeat, flap=flap, epoch=1.79e9, unit="bytes",
                             rate=1e6, profile=PROFILES[profile], planned=10, guard=guard),
                  build_population(spec, producer, producers), MIX, producer, storm)


@pytest.mark.skipif(set(MIX) - set(NORMALIZERS), reason="a provider normalizer is missing")
def test_copies_of_a_version_are_equal_and_versions_never_repeat_as_keep_hashes_them():
    """The verifier's premise, checked with farm's own normalizers and content hash."""
    stream = make_stream(fingerprints=300, flap=0.3)
    hasher = ContentHasher(["lastReceived"])
    digest_of_version: dict[int, bytes] = {}
    versions_of_alert: dict[int, set] = collections.defaultdict(set)
    for _ in range(15_000):
        group = stream.next()
        alerts = [a for e in group.current
                  for a in NORMALIZERS[group.provider](msgpack.unpackb(e), "2026-01-01T00:00Z")]
        for key, alert in zip(group.keys, alerts, strict=True):
            digest = hasher.digest(alert)
            if key in digest_of_version:
                assert digest_of_version[key] == digest, "two copies of a version differ"
                continue
            digest_of_version[key] = digest
            alert_id = key >> MEMBER_SHIFT
            assert digest not in versions_of_alert[alert_id], \
                f"a {group.provider} version repeats earlier content"
            versions_of_alert[alert_id].add(digest)
    assert stream.kinds["new"] and stream.kinds["flap"] and stream.kinds["repeat"]


def test_a_repeat_is_the_groups_last_notification_byte_for_byte():
    stream = make_stream()
    last = {}
    repeats = 0
    for _ in range(5000):
        group = stream.next()
        if stream.kind == "repeat":
            repeats += 1
            assert group.current == last[id(group)]
        elif id(group) in last:
            assert group.current != last[id(group)], "a new version is new bytes"
        last[id(group)] = group.current
    assert repeats > 1000


def test_shares_of_repeats_and_flaps_follow_the_options():
    stream = make_stream(repeat=0.3, flap=0.1, fingerprints=5000)
    for _ in range(30_000):
        stream.next()
    sends = sum(stream.kinds.values())
    assert 0.25 <= stream.kinds["repeat"] / sends <= 0.40
    assert 0.07 <= stream.kinds["flap"] / sends <= 0.12


def test_provider_mix_follows_the_weights():
    stream = make_stream()
    seen = collections.Counter(stream.next().provider for _ in range(20_000))
    for provider, weight in MIX.items():
        assert abs(seen[provider] / 20_000 - weight / 100) < 0.02


def test_a_storm_resends_one_identical_alert_from_every_producer():
    payloads = set()
    for producer in (0, 1):
        stream = make_stream(profile="storm", producer=producer, producers=2)
        storm_sends = 0
        while stream.t < 10 * SLICE[1]:
            group = stream.next()
            if group is stream.storm:
                storm_sends += 1
                payloads.add(group.current)
                assert SLICE[0] * 10 <= stream.t <= SLICE[1] * 10 + 0.1
        assert storm_sends > 100
    assert len(payloads) == 1, "the storm alert has one version, the same in every producer"


def test_logical_time_follows_the_asked_rate():
    stream = make_stream()
    sent = 0
    while stream.t < 5:
        sent += stream.next().size
    assert abs(sent - 5e6) < 70_000, "1 MB/s for 5 logical seconds"


@pytest.mark.skipif(set(MIX) - set(NORMALIZERS), reason="a provider normalizer is missing")
def test_a_rerun_of_the_same_seed_at_another_time_is_new_content():
    """Without --epoch, a second run of one seed against the same farm starts later: none of
    its versions may equal the first run's, or they would be decided as full duplicates."""
    hasher = ContentHasher(["lastReceived"])

    def digests(epoch: float) -> dict:
        stream = make_stream(seed=9, fingerprints=400, flap=0.3)
        stream.spec = dataclasses.replace(stream.spec, epoch=epoch)
        out = {}
        for _ in range(3000):
            group = stream.next()
            for event in group.current:
                for alert in NORMALIZERS[group.provider](msgpack.unpackb(event), "2026-01-01Z"):
                    out.setdefault(alert["fingerprint"], set()).add(hasher.digest(alert))
        return out

    first, second = digests(1.79e9), digests(1.79e9 + 137.25)
    assert first.keys() == second.keys()
    assert all(not (first[fp] & second[fp]) for fp in first)
