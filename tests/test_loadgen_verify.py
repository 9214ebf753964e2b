"""--verify: the matching rules on hand-made send logs, then end to end against a real farm
(`farm start`, 2 workers, SQLite): a clean run balances, and a deleted row or a copy the farm
never counted is caught."""

from __future__ import annotations

import json
import sqlite3

import msgpack
import pytest

from farm import config as config_mod
from farm.providers import NORMALIZERS
from farm.redis_keys import Keys
from loadgen import runner, verify
from loadgen.envelope import batch_id
from loadgen.http_producer import UNKNOWN
from loadgen.population import INDEX_SHIFT, MEMBER_SHIFT
from loadgen.producer import prepare
from loadgen.record import SendLog
from loadgen.stores import SqliteReader, StoredRow
from loadgen.stream import event_digest
from tests.support.farms import FarmProcess, write_config
from tests.support.loadgen_runs import plan, run_cli

RUN = "0123456789abcdef"
SUPPORTED_MIX = ",".join(f"{p}:{w}" for p, w in (("prometheus", 60), ("grafana", 20),
                                                  ("datadog", 10), ("zabbix", 5), ("keep", 5))
                         if p in NORMALIZERS)


def key(index: int, version: int, member: int = 0) -> int:
    return (index << INDEX_SHIFT) | (member << MEMBER_SHIFT) | version


def eid(batch: int, n: int) -> str:
    return f"{batch_id(RUN, 0, batch)}:{n}"


def rows(*event_ids: str):
    return [StoredRow(e, "fp", 100.0) for e in event_ids]


def make_log(batches: list[list[tuple[dict, list[int]]]]) -> SendLog:
    """batches of events; each event is (payload, version keys of the alerts it yields)."""
    log = SendLog(0, RUN)
    for events in batches:
        log.add_batch(99.0, "prometheus", [len(keys) for _, keys in events],
                      [event_digest(msgpack.packb(payload)) for payload, _ in events],
                      [k for _, keys in events for k in keys])
    return log


def test_one_stored_copy_per_version_balances_whichever_copy_it_is():
    # Alert 1 sent three times (one version), then flapped (version 1); alert 2 once.
    log = make_log([[({"e": 0}, [key(1, 0)]), ({"e": 1}, [key(2, 0)])],
                    [({"e": 2}, [key(1, 0)]), ({"e": 3}, [key(1, 0)])],
                    [({"e": 4}, [key(1, 1)])]])
    verdict = verify.match_batches([log], [], rows(eid(1, 1), eid(0, 1), eid(2, 0)), RUN)
    assert (verdict.sent, verdict.expected_new, verdict.expected_partial) == (5, 2, 1)
    assert verdict.expected_duplicates == 2 and verdict.stored == 3
    assert verdict.ok and not verdict.missing
    assert list(verdict.latencies) == [1.0, 1.0, 1.0]


def test_a_version_with_no_stored_copy_is_missing_with_its_event_ids():
    log = make_log([[({"e": 0}, [key(1, 0)])], [({"e": 1}, [key(1, 0)])],
                    [({"e": 2}, [key(1, 1)])]])
    verdict = verify.match_batches([log], [], rows(eid(2, 0)), RUN)
    assert verdict.loss and verdict.missing_versions == 1
    assert verdict.missing == [[eid(0, 0), eid(1, 0)]]


def test_a_version_stored_twice_is_surplus_not_loss():
    log = make_log([[({"e": 0}, [key(1, 0)])], [({"e": 1}, [key(1, 0)])]])
    verdict = verify.match_batches([log], [], rows(eid(0, 0), eid(1, 0)), RUN)
    assert not verdict.loss and verdict.surplus_rows == 1
    assert verdict.surplus == [[eid(0, 0), eid(1, 0)]]


def test_rows_the_run_never_produced_are_unexpected():
    log = make_log([[({"e": 0}, [key(1, 0)])]])
    verdict = verify.match_batches([log], [], rows(eid(0, 0), eid(0, 1), eid(7, 0)), RUN)
    assert verdict.unexpected == [eid(0, 1), eid(7, 0)]


def test_dead_letters_account_for_their_alerts_and_renumber_the_batch():
    # Batch 0 dies whole; in batch 1 the middle event (2 alerts) is dead-lettered alone, so
    # the farm numbers the last event's alert 1, not 3.
    log = make_log([[({"e": 0}, [key(1, 0)])],
                    [({"e": 1}, [key(2, 0)]), ({"e": 2}, [key(3, 0), key(3, 0, 1)]),
                     ({"e": 3}, [key(4, 0)])]])
    letters = [verify.DeadLetter(batch_id(RUN, 0, 0), "normalize", "provider unsupported",
                                 b"raw batch"),
               verify.DeadLetter(batch_id(RUN, 0, 1), "normalize", "BadEvent: no alerts",
                                 {"e": 2})]
    verdict = verify.match_batches([log], letters, rows(eid(1, 0), eid(1, 1)), RUN)
    assert verdict.dead == 3 and not verdict.loss and not verdict.unexpected
    assert verdict.dead_reasons == {"provider unsupported": 1, "BadEvent: no alerts": 2}
    # The farm counts each dead-lettered event as one alert received: 5 sent, 4 counted.
    assert verdict.farm_received == 4


def test_an_event_that_yields_no_alert_counts_once_as_the_farm_counts_it():
    # Batch 0 holds an empty event; batch 1, with another, dies whole; in batch 2 an event the
    # log says yields nothing is dead-lettered alone. The farm counts each event once.
    log = make_log([[({"e": 0}, [key(1, 0)]), ({"alerts": []}, [])],
                    [({"alerts": [], "n": 1}, []), ({"e": 2}, [key(2, 0)])],
                    [({"alerts": "bad"}, []), ({"e": 3}, [key(3, 0)])]])
    letters = [verify.DeadLetter(batch_id(RUN, 0, 1), "pipeline", "boom", b"raw batch"),
               verify.DeadLetter(batch_id(RUN, 0, 2), "normalize", "bad", {"alerts": "bad"})]
    verdict = verify.match_batches([log], letters, rows(eid(0, 0), eid(2, 0)), RUN)
    assert verdict.sent == 3 and verdict.dead == 1 and verdict.stored == 2
    assert verdict.farm_received == 6
    verify.check_counters(verdict, {**deltas(received=6, indexed=2, dead=3), "events_empty": 1})
    assert verdict.books == []


def test_identical_events_dead_lettered_in_one_batch_are_each_matched_once():
    # A repeat inside one batch, both copies refused by normalize: the farm numbers the
    # surviving alert 0.
    log = make_log([[({"e": 1}, [key(1, 0)]), ({"e": 1}, [key(1, 0)]),
                     ({"e": 2}, [key(2, 0)])]])
    letters = [verify.DeadLetter(batch_id(RUN, 0, 0), "normalize", "bad", {"e": 1})] * 2
    verdict = verify.match_batches([log], letters, rows(eid(0, 0)), RUN)
    assert verdict.dead == 2 and verdict.dead_reasons == {"bad": 2}
    assert not verdict.loss and not verdict.missing and not verdict.unexpected


@pytest.mark.parametrize("newest_first", [True, False])
def test_a_store_rejection_names_its_alert_as_numbered_after_the_batchs_dead_events(
        newest_first):
    # e1 is dead-lettered by normalize, so e2 becomes :0 (stored) and e3 :1, which the store
    # rejects; whichever letter the list holds first.
    log = make_log([[({"e": 1}, [key(1, 0)]), ({"e": 2}, [key(2, 0)]),
                     ({"e": 3}, [key(3, 0)])]])
    letters = [verify.DeadLetter(batch_id(RUN, 0, 0), "store", "mapper", {"eventId": eid(0, 1)}),
               verify.DeadLetter(batch_id(RUN, 0, 0), "normalize", "bad", {"e": 1})]
    if not newest_first:
        letters.reverse()
    verdict = verify.match_batches([log], letters, rows(eid(0, 0)), RUN)
    assert verdict.dead == 2 and verdict.dead_reasons == {"bad": 1, "mapper": 1}
    assert not verdict.loss and not verdict.missing and verdict.stored == 1


def deltas(received: int, indexed: int = 0, duplicate: int = 0, dead: int = 0) -> dict:
    return {"alerts_received": received, "alerts_indexed": indexed,
            "alerts_duplicate": duplicate, "alerts_dead": dead, "batches_received": 2}


def test_farm_counters_that_do_not_add_up_are_loss_though_no_row_is_missing():
    # Alert 1 sent twice, byte for byte: one copy stored, the other a full duplicate.
    log = make_log([[({"e": 0}, [key(1, 0)])], [({"e": 0}, [key(1, 0)])]])

    def checked(counters: dict) -> verify.Verdict:
        verdict = verify.match_batches([log], [], rows(eid(0, 0)), RUN)
        verify.check_counters(verdict, counters)
        return verdict

    honest = checked(deltas(received=2, indexed=1, duplicate=1))
    assert honest.ok and not honest.books
    # The farm dropped the repeat without counting it as a duplicate...
    uncounted = checked(deltas(received=2, indexed=1))
    assert uncounted.loss and not uncounted.missing_versions
    assert uncounted.books == ["alerts_received grew by 2, but indexed + duplicate + dead + "
                               "maintenance + empty + expired only by 1: 1 alerts neither "
                               "stored, dropped as duplicates, dead-lettered, dropped by a "
                               "maintenance window, counted as empty events nor expired "
                               "([redis] max_batch_age)"]
    # ...or never counted it as received at all.
    unseen = checked(deltas(received=1, indexed=1))
    assert unseen.loss and len(unseen.books) == 1
    assert unseen.books[0].startswith("alerts_received grew by 1, but this run's batches hold 2")


def test_versions_the_farm_says_its_windows_dropped_are_not_loss_and_others_are():
    # Alert 1 stored; alert 2 sent twice (one version) and never stored.
    log = make_log([[({"e": 0}, [key(1, 0)])], [({"e": 1}, [key(2, 0)]), ({"e": 1}, [key(2, 0)])]])

    def checked(counters: dict) -> verify.Verdict:
        verdict = verify.match_batches([log], [], rows(eid(0, 0)), RUN)
        verify.check_counters(verdict, counters)
        return verdict

    dropped = checked({**deltas(received=3, indexed=1), "alerts_maintenance": 2})
    assert dropped.missing_versions == 1 and dropped.missing_copies == 2
    assert dropped.dropped_by_windows and not dropped.books and not dropped.loss and dropped.ok
    # One copy dropped by a window, the other counted as a duplicate of nothing stored: loss.
    short = checked({**deltas(received=3, indexed=1, duplicate=1), "alerts_maintenance": 1})
    assert short.missing_versions == 1 and not short.dropped_by_windows and short.loss
    # Without windows a missing version is loss, as always.
    assert checked(deltas(received=3, indexed=1, duplicate=2)).loss


def test_an_unanswered_request_is_unknown_and_only_its_own_versions_go_unchecked():
    log = SendLog(0, RUN)
    log.fingerprints = {1: ["fp-1"], 2: ["fp-2"], 3: ["fp-3"]}
    # Alert 1: the first copy got no answer (and was stored, in a batch nobody named); the
    # repeat in batch b1 was then a duplicate. Alert 2 was stored in b1; alert 3 was not.
    log.add_batch(99.0, "keep", [1], (), [key(1, 0)], batch_id=UNKNOWN)
    log.add_batch(99.0, "keep", [1, 1, 1], (), [key(1, 0), key(2, 0), key(3, 0)],
                  batch_id="b1")
    verdict = verify.match_requests([log], [], [StoredRow("b1:0", "fp-2", 100.0)])
    assert verdict.unknown == 1 and verdict.sent == 3
    assert verdict.unchecked_versions == 1
    assert verdict.missing_versions == 1 and verdict.missing == [["b1:? (fingerprint fp-3)"]]
    assert not verdict.ok


def test_a_clean_run_balances_against_a_real_farm(tmp_path, redis, redis_url):
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url)
    with FarmProcess(config, workers=2):
        # --min-achieved 0: the account is checked here, not the rate a busy machine reaches.
        done = run_cli("--config", str(config), "--rate", "1MB/s", "--duration", "4s",
                       "--mix", SUPPORTED_MIX, "--verify", "--json", "--quiet", "--seed", "7",
                       "--min-achieved", "0")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    checked = doc["verify"]
    assert checked["missing"] == checked["unexpected"] == checked["dead_lettered"] == 0
    assert checked["sent"] == doc["sent"]["alerts"] > 1000
    assert checked["counter_problems"] == []
    assert checked["farm_received_expected"] == checked["sent"]
    assert checked["stored"] == checked["expected_stored"] + checked["surplus"]
    counters = checked["farm_counters"]
    assert counters["alerts_received"] == checked["sent"]
    assert counters["alerts_indexed"] == checked["stored"]
    assert counters["alerts_duplicate"] == checked["expected_duplicates"] - checked["surplus"]
    assert counters["batches_received"] == doc["sent"]["batches"]
    assert 0 < checked["latency_seconds"]["p50"] <= checked["latency_seconds"]["p99"]


def test_verify_catches_a_deleted_row(tmp_path, redis, redis_url):
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url)
    cfg = config_mod.load(config)
    the_plan = plan(redis_url=redis_url, rate="1MB/s", duration="3s", producers=1,
                    mix=SUPPORTED_MIX, verify=True)
    with FarmProcess(config, workers=2) as farm:
        before = farm.status()
        outcome = runner.run(the_plan)
        farm.wait_drained()
        db = sqlite3.connect(cfg.sqlite_path)
        # A fingerprint with one row: one version, stored once (not a surplus copy).
        victim = db.execute("SELECT min(eventId) FROM alerts GROUP BY fingerprint "
                            "HAVING count(*) = 1 ORDER BY random() LIMIT 1").fetchone()[0]
        with db:
            db.execute("DELETE FROM alerts WHERE eventId = ?", (victim,))
        db.close()
        reader = SqliteReader(cfg.sqlite_path)
        verdict, counters, _ = verify.account(the_plan, outcome, farm.status, before, redis,
                                              reader, Keys("farm"), 60)
        reader.close()
    assert verdict.loss and verdict.missing_versions == 1
    assert victim in verdict.missing[0]
    assert verdict.stored == counters["alerts_indexed"] - 1


def test_verify_catches_a_repeat_copy_the_farm_never_counted(tmp_path, redis, redis_url):
    config = write_config(tmp_path / "farm.toml", tmp_path / "data", redis_url)
    cfg = config_mod.load(config)
    the_plan = plan(redis_url=redis_url, rate="1MB/s", duration="3s", producers=1,
                    mix=SUPPORTED_MIX, verify=True)
    with FarmProcess(config, workers=2) as farm:
        before = farm.status()
        outcome = runner.run(the_plan)
        farm.wait_drained()
        # As if a worker had dropped one full duplicate on the floor: every version is still
        # stored, so no row is missing; only the farm's own counters are short.
        redis.decr(Keys("farm").stat("alerts_duplicate"))
        reader = SqliteReader(cfg.sqlite_path)
        verdict, counters, _ = verify.account(the_plan, outcome, farm.status, before, redis,
                                              reader, Keys("farm"), 60)
        reader.close()
    assert verdict.missing_versions == 0 and not verdict.unexpected and not verdict.dead
    assert verdict.loss and len(verdict.books) == 1
    assert ("1 alerts neither stored, dropped as duplicates, dead-lettered, dropped by a "
            "maintenance window, counted as empty events nor expired") in verdict.books[0]


def test_known_fingerprints_are_counted_only_when_the_epoch_is_pinned(redis, redis_url):
    def run(epoch: str | None) -> float:
        the_plan = plan(redis_url=redis_url, rate="50k/s", duration=None, total="100 alerts",
                        producers=1, verify=True, epoch=epoch)
        return runner.run(the_plan).known

    # The farm already holds a content hash for every fingerprint of producer 0.
    spec = plan(redis_url=redis_url, producers=1).producers[0]
    fingerprints = {fp for groups in prepare(spec).order.values() for group in groups
                    for fp in group.fingerprints}
    redis.mset({Keys("farm").dedup("default", fp): b"known" for fp in fingerprints})
    assert run(epoch=None) == 0
    assert run(epoch="1700000000") == len(fingerprints)
