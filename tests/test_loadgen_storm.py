"""--profile incident-storm: the storm's waves from the send stream, and --verify's incident
check against a real farm (`farm start`, 2 workers, SQLite) running the shipped storm rule:
a clean run balances, and a deleted or altered incident is caught."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from farm import config as config_mod
from farm.redis_keys import Keys
from loadgen import runner, storm, verify
from loadgen.incidents import storm_rule_of
from loadgen.population import INDEX_SHIFT, MEMBER_SHIFT
from loadgen.producer import prepare
from loadgen.stores import SqliteReader
from tests.support.farms import FarmProcess, write_config
from tests.support.loadgen_runs import plan, run_cli

STORM_RULES = Path(__file__).resolve().parent.parent / "configs" / "correlation" / "storm.toml"
EPOCH = 1_767_225_600.0


def sends(the_plan, producer: int, count: int) -> list[tuple[str, bytes, tuple]]:
    """The first `count` sends of one producer: (kind, payload bytes, version keys)."""
    spec = the_plan.producers[producer]
    stream = prepare(spec)
    stream.spec = replace(stream.spec, epoch=EPOCH)
    stream.arm_incident_storm(spec.population, producer, spec.producers)
    out = []
    for _ in range(count):
        group = stream.next()
        out.append((stream.kind, b"".join(group.current), tuple(group.keys)))
    return out


def storm_plan(**over):
    options = dict(profile="incident-storm", duration="20s", producers=2, storm_hosts=6,
                   storm_alerts=4, storm_waves=5, rate="10k/s", mix="prometheus:1")
    options.update(over)
    return plan(**options)


def test_every_storm_alert_fires_then_resolves_once_per_wave_from_one_producer():
    the_plan = storm_plan()
    seen: dict[int, list[tuple[int, str]]] = {}
    for producer in range(2):
        for kind, _, keys in sends(the_plan, producer, 150_000):
            if kind.startswith("storm"):
                index = keys[0] >> INDEX_SHIFT
                host, _alert = storm.where(index, 4)
                assert host % 2 == producer          # a host's alerts come from one producer
                seen.setdefault(index, []).append((keys[0] & ((1 << MEMBER_SHIFT) - 1), kind))
    assert len(seen) == 6 * 4
    for versions in seen.values():
        assert versions == [(v, "storm fire" if v % 2 == 0 else "storm resolve")
                            for v in range(2 * 5)]


def test_the_same_seed_and_epoch_give_the_same_storm_bytes_and_another_epoch_other_hosts():
    first = [s for s in sends(storm_plan(), 0, 50_000) if s[0].startswith("storm")]
    again = [s for s in sends(storm_plan(), 0, 50_000) if s[0].startswith("storm")]
    assert first and first == again
    assert storm.tag_of(1, EPOCH) != storm.tag_of(1, EPOCH + 1) != storm.tag_of(2, EPOCH + 1)
    assert all(storm.tag_of(1, EPOCH).encode() in payload for _, payload, _ in first)


def test_waves_too_short_to_keep_a_hosts_order_are_refused():
    with pytest.raises(ValueError, match="--storm-waves 40: waves of 0.50 s are too short"):
        storm_plan(storm_waves=40)
    with pytest.raises(ValueError, match="--storm-alerts 0 must be between 1"):
        storm_plan(storm_alerts=0)


def test_verify_refuses_a_farm_without_the_storm_rule(tmp_path, redis_url):
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url)
    with pytest.raises(ValueError, match="has no correlation rules"):
        storm_rule_of(config_mod.load(config))
    other = tmp_path / "rules.toml"
    other.write_text(STORM_RULES.read_text().replace('resolve_on = "all"', 'resolve_on = "last"'))
    config = write_config(tmp_path / "farm2.toml", tmp_path / "data", redis_url,
                          extra=f'[correlation]\nrules = "{other}"\n')
    with pytest.raises(ValueError, match="must group by labels.host with resolve_on"):
        storm_rule_of(config_mod.load(config))


def storm_farm(tmp_path: Path, redis_url: str) -> Path:
    return write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url,
                        extra=f'[correlation]\nrules = "{STORM_RULES}"\n')


def test_an_incident_storm_balances_alerts_and_incidents_against_a_real_farm(
        tmp_path, redis, redis_url):
    config = storm_farm(tmp_path, redis_url)
    with FarmProcess(config, workers=2):
        # 8 hosts: 6 alerts (above the rule's threshold of 5) on some, fewer never shown;
        # --min-achieved 0: the account is checked here, not the rate a busy machine reaches.
        done = run_cli("--config", str(config), "--rate", "1MB/s", "--duration", "6s",
                       "--profile", "incident-storm", "--storm-hosts", "8", "--storm-alerts",
                       "6", "--storm-waves", "2", "--mix", "prometheus:70,keep:30", "--seed",
                       "11", "--verify", "--json", "--quiet", "--min-achieved", "0",
                       timeout=180)
    assert done.returncode == 0, done.stderr + done.stdout[:3000]
    doc = json.loads(done.stdout)
    checked = doc["verify"]
    assert checked["ok"] and checked["missing"] == 0 and checked["counter_problems"] == []
    incidents = checked["incidents"]
    assert incidents["checked"] and incidents["exact"] and incidents["ok"]
    assert incidents["expected"] == incidents["stored"] == 8 * 2, incidents
    assert incidents["missing"] == incidents["surplus"] == incidents["mismatched"] == 0
    assert incidents["stored_resolved"] == incidents["expected_resolved"] == 16
    assert incidents["stored_visible"] == 16
    assert doc["sent"]["by_kind"]["storm fire"] == doc["sent"]["by_kind"]["storm resolve"] == 96


def test_verify_catches_a_deleted_and_an_altered_incident(tmp_path, redis, redis_url):
    config = storm_farm(tmp_path, redis_url)
    cfg = config_mod.load(config)
    the_plan = storm_plan(redis_url=redis_url, rate="1MB/s", duration="6s", producers=1,
                          storm_hosts=4, storm_alerts=3, storm_waves=2,
                          mix="prometheus:70,keep:30")
    rule = storm_rule_of(cfg)
    with FarmProcess(config, workers=2) as farm:
        before = farm.status()
        outcome = runner.run(the_plan)
        farm.wait_drained()
        db = sqlite3.connect(cfg.sqlite_path)
        rows = db.execute("SELECT id, group_key FROM incidents WHERE rule = ? ORDER BY "
                          "group_key, start_time", (storm.RULE_NAME,)).fetchall()
        assert len(rows) == 4 * 2
        (deleted, deleted_host), (altered, _) = rows[0], rows[3]
        with db:
            db.execute("DELETE FROM incidents WHERE id = ?", (deleted,))
            db.execute("UPDATE incidents SET status = 'firing' WHERE id = ?", (altered,))
        db.close()
        reader = SqliteReader(cfg.sqlite_path)
        verdict, _, _ = verify.account(the_plan, outcome, farm.status, before, redis, reader,
                                       Keys("farm"), 60, storm_rule=rule)
        reader.close()
    assert not verdict.loss and verdict.missing_versions == 0   # every alert row is there
    check = verdict.incidents
    assert check.checked and not check.ok and not verdict.ok
    assert check.missing_count == 1 and check.missing[0]["host"] == deleted_host
    assert check.missing[0]["wave"] == 0 and len(check.missing[0]["fingerprints"]) == 3
    assert [m["id"] for m in check.mismatched] == [altered]
    assert "status firing, expected resolved" in check.mismatched[0]["problems"]
    # The next wave of the deleted incident's host is not blamed for pointing at it.
    assert check.mismatched_count == 1 and check.surplus_count == 0


def test_incidents_that_differ_exit_with_their_own_code_below_loss():
    from loadgen.cli import DEAD, INCIDENTS, LOSS, _exit_code
    from loadgen.incidents import IncidentCheck

    wrong = verify.Verdict(incidents=IncidentCheck(mismatched_count=1))
    assert _exit_code(runner.Outcome(), wrong, short=True) == INCIDENTS
    wrong.dead = 3
    assert _exit_code(runner.Outcome(), wrong, short=False) == INCIDENTS
    wrong.books = ["alerts_received grew by 2, but ..."]
    assert _exit_code(runner.Outcome(), wrong, short=False) == LOSS
    skipped = verify.Verdict(dead=2, incidents=IncidentCheck(checked=False))
    assert _exit_code(runner.Outcome(), skipped, short=False) == DEAD


def test_a_timeframe_shorter_than_the_fire_phase_is_checked_by_what_holds_however_it_splits(
        tmp_path, redis, redis_url):
    rules = tmp_path / "storm.toml"
    rules.write_text(STORM_RULES.read_text().replace('timeframe = "1h"', "timeframe = 1"))
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url,
                          extra=f'[correlation]\nrules = "{rules}"\n')
    with FarmProcess(config, workers=2):
        # One wave of 8 s: each host's fires are spread over 2.8 s, its incident may expire.
        done = run_cli("--config", str(config), "--rate", "1MB/s", "--duration", "8s",
                       "--profile", "incident-storm", "--storm-hosts", "4", "--storm-alerts",
                       "8", "--storm-waves", "1", "--mix", "prometheus:70,keep:30", "--seed",
                       "12", "--verify", "--json", "--quiet", "--min-achieved", "0",
                       timeout=180)
    assert done.returncode == 0, done.stderr + done.stdout[:3000]
    incidents = json.loads(done.stdout)["verify"]["incidents"]
    assert incidents["checked"] and not incidents["exact"] and incidents["ok"], incidents
    assert "longer than the rule's timeframe (1 s)" in incidents["note"]
    assert incidents["expected"] == 4 <= incidents["stored"] == incidents["stored_resolved"]
