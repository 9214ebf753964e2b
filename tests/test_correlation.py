"""Correlation rules -> incidents, golden cases written from Keep's rules engine as
docs/keep-compatibility.md#correlation describes it; real Redis, real SQLite."""

from __future__ import annotations

import pytest

from farm.held_connection import held_by_this_thread
from farm.pipeline import MeanwhileFailed
from farm.wire import encode_batch
from tests.support.correlation_runs import START, CorrelationRun, alert

BY_HOST = """
[[rule]]
name = "by host"
condition = 'labels.team == "dba"'
grouping_criteria = ["labels.host"]
timeframe = 600
"""


@pytest.fixture
def run_with(tmp_path, redis):
    """Makes a CorrelationRun with the given rule file text; closes them after the test."""
    runs = []

    def make(rules: str, **kw) -> CorrelationRun:
        folder = tmp_path / str(len(runs))
        folder.mkdir()
        run = CorrelationRun(folder, redis, rules, prefix=f"c{len(runs)}", **kw)
        runs.append(run)
        return run
    yield make
    for run in runs:
        run.close()


def dba(fp: str, host: str, status: str = "firing", severity: str = "warning", **kw) -> dict:
    return alert(fp, status, severity, labels={"team": "dba", "host": host}, **kw)


def test_alerts_of_one_group_join_one_incident(run_with):
    run = run_with(BY_HOST)
    run.send(dba("a", "db1"), dba("b", "db1"))
    run.send(dba("c", "db1"), dba("d", "db2"))
    by_group = {i["rule_fingerprint"]: i for i in run.incidents()}
    assert set(by_group) == {"db1", "db2"}
    assert by_group["db1"]["alerts_count"] == 3
    assert run.members(by_group["db1"]["id"]) == {"a", "b", "c"}
    assert by_group["db1"]["name"] == "by host"  # no template: the rule's name
    assert by_group["db1"]["is_visible"]  # threshold 1
    assert run.current("a")["incident"] == by_group["db1"]["id"]


def test_an_alert_that_matches_no_rule_joins_nothing(run_with):
    run = run_with(BY_HOST)
    run.send(alert("x", labels={"team": "web", "host": "db1"}))
    assert run.incidents() == []
    assert "incident" not in run.current("x")


def test_missing_grouping_value_groups_under_none(run_with):
    run = run_with(BY_HOST)
    run.send(alert("a", labels={"team": "dba"}), alert("b", labels={"team": "dba"}))
    [incident] = run.incidents()
    assert incident["rule_fingerprint"] == "none"
    assert incident["alerts_count"] == 2


def test_several_criteria_are_comma_joined(run_with):
    run = run_with(BY_HOST.replace('["labels.host"]', '["labels.host", "service"]'))
    run.send(dba("a", "db1", service="pg"), dba("b", "db1", service="pg"),
             dba("c", "db1", service="mysql"))
    assert sorted(i["rule_fingerprint"] for i in run.incidents()) == ["db1,mysql", "db1,pg"]


def test_multi_level_grouping_fans_out_one_incident_per_value(run_with):
    run = run_with("""
[[rule]]
name = "per pod"
condition = 'service == "api"'
grouping_criteria = ["pods"]
multi_level = true
multi_level_property_name = "name"
""")
    pods = {"a": {"name": "pod-1"}, "b": {"name": "pod-2"}}
    run.send(alert("x", service="api", pods=pods),
             alert("y", service="api", pods={"c": {"name": "pod-2"}}))
    by_group = {i["rule_fingerprint"]: i for i in run.incidents()}
    assert set(by_group) == {"pod-1", "pod-2"}
    assert by_group["pod-2"]["alerts_count"] == 2
    assert by_group["pod-1"]["name"] == "pod-1 - per pod"  # multi-level names lead with it
    assert set(run.current("x")["incident"].split(",")) == {by_group["pod-1"]["id"],
                                                           by_group["pod-2"]["id"]}


def test_threshold_keeps_an_incident_invisible_until_reached(run_with):
    run = run_with(BY_HOST + "threshold = 3\n")
    run.send(dba("a", "db1"), dba("b", "db1"))
    [incident] = run.incidents()
    assert not incident["is_visible"]
    run.send(dba("c", "db1"))
    [incident] = run.incidents()
    assert incident["is_visible"]


def test_threshold_counts_the_unresolved_counters_of_its_alerts(run_with):
    # One fingerprint firing three times has unresolvedCounter 3: Keep counts it as 3.
    run = run_with(BY_HOST + "threshold = 3\n")
    for n in range(3):
        run.send(dba("a", "db1", description=f"again {n}"))
    [incident] = run.incidents()
    assert incident["alerts_count"] == 1
    assert incident["is_visible"]


def test_create_on_all_needs_every_subrule(run_with):
    run = run_with("""
[[rule]]
name = "both"
condition = '(labels.kind == "disk") || (labels.kind == "cpu")'
create_on = "all"
""")
    run.send(alert("d", labels={"kind": "disk"}))
    [incident] = run.incidents()
    assert not incident["is_visible"]
    run.send(alert("c", labels={"kind": "cpu"}))
    [incident] = run.incidents()
    assert incident["is_visible"] and incident["alerts_count"] == 2


def test_create_on_all_stays_hidden_while_an_alert_is_not_firing(run_with):
    run = run_with("""
[[rule]]
name = "both"
condition = '(labels.kind == "disk") || (labels.kind == "cpu")'
create_on = "all"
""")
    run.send(alert("d", labels={"kind": "disk"}))
    run.send(alert("d", "acknowledged", labels={"kind": "disk"}))
    run.send(alert("c", labels={"kind": "cpu"}))
    [incident] = run.incidents()
    assert not incident["is_visible"]


def test_create_on_any_is_visible_with_one_subrule(run_with):
    run = run_with("""
[[rule]]
name = "either"
condition = '(labels.kind == "disk") || (labels.kind == "cpu")'
""")
    run.send(alert("d", labels={"kind": "disk"}))
    [incident] = run.incidents()
    assert incident["is_visible"]


@pytest.mark.parametrize("resolve_on", ["all", "all_resolved"])
def test_resolve_on_all_waits_for_every_alert(run_with, resolve_on):
    run = run_with(BY_HOST + f'resolve_on = "{resolve_on}"\n')
    run.send(dba("a", "db1"), dba("b", "db1"))
    run.send(dba("a", "db1", "resolved"))
    [incident] = run.incidents()
    assert incident["status"] == "firing"
    run.send(dba("b", "db1", "resolved"))
    [incident] = run.incidents()
    assert incident["status"] == "resolved"
    assert incident["end_time"]


def test_resolve_on_first_follows_the_first_alert(run_with):
    run = run_with(BY_HOST + 'resolve_on = "first"\n')
    run.send(dba("a", "db1"))
    run.send(dba("b", "db1"))
    run.send(dba("b", "db1", "resolved"))
    assert run.incidents()[0]["status"] == "firing"
    run.send(dba("a", "db1", "resolved"))
    assert run.incidents()[0]["status"] == "resolved"


def test_resolve_on_last_follows_the_most_recent_alert(run_with):
    run = run_with(BY_HOST + 'resolve_on = "last_resolved"\n')
    run.send(dba("a", "db1"))
    run.send(dba("b", "db1"))
    run.send(dba("a", "db1", "resolved"))  # now the most recent one, and resolved
    assert run.incidents()[0]["status"] == "resolved"


def test_resolve_on_never_stays_firing(run_with):
    run = run_with(BY_HOST)
    run.send(dba("a", "db1"))
    run.send(dba("a", "db1", "resolved"))
    assert run.incidents()[0]["status"] == "firing"


def test_an_acknowledged_incident_stays_open_takes_alerts_and_resolves_by_its_rule(run_with):
    run = run_with(BY_HOST + 'resolve_on = "all"\n')
    run.send(dba("a", "db1"))
    [incident] = run.incidents()
    run.by_hand("acknowledge_incident", incident["id"])
    assert run.incidents()[0]["status"] == "acknowledged"
    joined = run.send(dba("b", "db1"))  # joins it: an acknowledged incident is still open
    assert (joined.correlation.opened, joined.correlation.updated) == (0, 1)
    [incident] = run.incidents()
    assert incident["status"] == "acknowledged" and incident["alerts_count"] == 2
    run.send(dba("a", "db1", "resolved"))
    run.send(alert("b", "resolved", labels={"team": "web", "host": "db1"}))  # matches no rule
    [incident] = run.incidents()
    assert incident["status"] == "resolved"
    run.by_hand("acknowledge_incident", incident["id"])  # a resolved one stays resolved
    assert run.incidents()[0]["status"] == "resolved"


def test_a_resolved_member_resolves_its_incident_even_when_it_matches_no_rule(run_with):
    run = run_with(BY_HOST + 'resolve_on = "all"\n')
    run.send(dba("a", "db1"))
    run.send(alert("a", "resolved", labels={"team": "web", "host": "db1"}))
    assert run.incidents()[0]["status"] == "resolved"


def test_name_template_lists_distinct_values_and_prefix_numbers(run_with):
    run = run_with(BY_HOST.replace('["labels.host"]', '["labels.team"]')
                   + 'incident_name_template = "DB trouble on {{ alert.labels.host }} '
                     '({{ alert.labels.rack }})"\nincident_prefix = "DB"\n')
    run.send(dba("a", "db1"), dba("b", "db2"), dba("c", "db1"))
    [incident] = run.incidents()
    assert incident["name"] == "DB-1 - DB trouble on db1,db2 (N/A)"
    assert incident["running_number"] == 1


def test_require_approve_makes_candidates_that_never_show(run_with):
    run = run_with(BY_HOST + "require_approve = true\n")
    run.send(dba("a", "db1"), dba("b", "db1"))
    [incident] = run.incidents()
    assert incident["is_candidate"] and not incident["is_visible"]


def test_only_a_firing_alert_opens_an_incident(run_with):
    run = run_with(BY_HOST)
    run.send(dba("a", "db1", "resolved"), dba("b", "db1", "acknowledged"))
    assert run.incidents() == []
    run.send(dba("c", "db1"))
    run.send(dba("a", "db1", "resolved", description="joins an open one"))
    [incident] = run.incidents()
    assert run.members(incident["id"]) == {"a", "c"}


def test_an_incident_expires_after_its_timeframe_and_the_next_links_back(run_with):
    run = run_with(BY_HOST)
    run.send(dba("a", "db1"))
    run.send(dba("b", "db1"), after=599)  # within 600 s of the newest alert: joins
    run.send(dba("c", "db1"), after=601)  # too late: a new incident
    first, second = run.incidents()
    assert run.members(first["id"]) == {"a", "b"}
    assert run.members(second["id"]) == {"c"}
    assert second["same_incident_in_the_past_id"] == first["id"]
    assert first["status"] == "firing"  # expiry is not resolution


def test_a_resolved_incident_is_not_joined_again(run_with):
    run = run_with(BY_HOST + 'resolve_on = "all"\n')
    run.send(dba("a", "db1"))
    run.send(dba("a", "db1", "resolved"))
    run.send(dba("a", "db1", description="back"))
    first, second = run.incidents()
    assert first["status"] == "resolved" and second["status"] == "firing"
    assert second["same_incident_in_the_past_id"] == first["id"]


def test_severity_is_the_highest_and_sources_and_services_are_unions(run_with):
    run = run_with(BY_HOST)
    run.send(dba("a", "db1", "firing", "warning", service="pg", source=["grafana"]),
             dba("b", "db1", "firing", "critical", service="pgbouncer", source=["zabbix"]),
             dba("c", "db1", "firing", "info", service="pg"))
    [incident] = run.incidents()
    assert incident["severity"] == "critical"
    assert sorted(incident["services"]) == ["pg", "pgbouncer"]
    assert sorted(incident["sources"]) == ["grafana", "keep", "zabbix"]  # c's default source


def test_source_is_matched_as_its_first_element(run_with):
    run = run_with("""
[[rule]]
name = "grafana"
condition = 'source == "grafana"'
""")
    run.send(alert("a", source=["grafana", "other"]), alert("b", source=["other", "grafana"]))
    [incident] = run.incidents()
    assert run.members(incident["id"]) == {"a"}


def test_full_duplicates_are_not_correlated_again(run_with):
    run = run_with(BY_HOST + "threshold = 2\n")
    same = dba("a", "db1")
    run.send(same)
    run.send(same)  # a full duplicate: Keep runs no rule on it
    [incident] = run.incidents()
    assert incident["alerts_count"] == 1 and not incident["is_visible"]


def test_a_redelivered_batch_replays_its_incidents(run_with):
    run = run_with(BY_HOST + "threshold = 2\n")
    first = run.send(dba("a", "db1"), batch_id="one", commit=False)
    run.send(dba("b", "db1"), dba("c", "db2"))
    again = run.pipeline.process(encode_batch([dba("a", "db1")], "keep", sent_at=START + 1,
                                              batch_id="one"))
    # The same incident rows and links, not a second opening.
    assert _incident_rows(again) == _incident_rows(first)
    run.commit(again)
    run.commit(first)
    [db1, db2] = sorted(run.incidents(), key=lambda i: i["rule_fingerprint"])
    assert db1["alerts_count"] == 2 and run.members(db1["id"]) == {"a", "b"}
    assert db1["is_visible"]  # the later snapshot won over the replayed older one
    assert len(run.incidents()) == 2


def test_a_worker_preparing_its_next_batch_decides_as_one_that_waits(run_with):
    """A worker sends each chunk's correlation call ahead and prepares its next batch while it
    runs (Pipeline.process with ahead), then finishes it while the next batch's first dedup call
    runs (`meanwhile`): the same incident rows, incidents and members as waiting for every
    call, with batches cut into several chunks."""
    rules = BY_HOST + "threshold = 2\nresolve_on = \"all\"\n"
    chunks = "[workers]\nbatch_max = 3\n"
    waits, ahead = run_with(rules, extra=chunks), run_with(rules, extra=chunks)
    waves = [[dba(f"{host}-{n}", host, "resolved" if (wave + n) % 3 == 0 else "firing")
              for host in ("db1", "db2", "db3") for n in range(wave % 3 + 1)]
             for wave in range(9)]
    waited = [waits.send(*alerts, after=400, batch_id=f"w{i}") for i, alerts in enumerate(waves)]
    prepared, before = [], None
    for i, alerts in enumerate(waves):
        def finish_before(before=before) -> None:
            # This batch's dedup request is written and its reply not read yet.
            assert held_by_this_thread(ahead.redis).owed
            prepared.append(ahead.pipeline.finish(before))
        outcome = ahead.pipeline.process(ahead.batch(*alerts, after=400, batch_id=f"w{i}"),
                                         ahead=True,
                                         meanwhile=None if before is None else finish_before)
        assert outcome.unfinished is not None  # its calls are still running in Redis
        assert len(prepared) == i  # the batch before was finished meanwhile, once
        before = outcome
    prepared.append(ahead.pipeline.finish(before))
    for outcome in prepared:
        ahead.commit(outcome)
    assert [_incident_rows(o) for o in prepared] == [_incident_rows(o) for o in waited]
    assert [o.counts for o in prepared] == [o.counts for o in waited]
    assert ahead.incidents() == waits.incidents() and len(waits.incidents()) >= 3
    for incident in waits.incidents():
        assert ahead.members(incident["id"]) == waits.members(incident["id"])


def test_the_batch_before_is_finished_once_and_its_errors_are_not_this_batchs(run_with):
    """`meanwhile` runs exactly once, whether the batch makes a dedup call or none (it is
    unreadable); what it raises comes out as MeanwhileFailed and leaves the batch undecided,
    not dead-lettered."""
    run = run_with(BY_HOST)
    calls = []
    out = run.pipeline.process(b"not a batch", ahead=True, meanwhile=lambda: calls.append(1))
    assert calls == [1] and out.dead_letters
    run.pipeline.finish(run.pipeline.process(run.batch(dba("a", "db1", "firing"), batch_id="m0"),
                                             ahead=True, meanwhile=lambda: calls.append(2)))
    assert calls == [1, 2]

    def broken() -> None:
        raise ValueError("the ring is gone")
    with pytest.raises(MeanwhileFailed) as raised:
        run.pipeline.process(run.batch(dba("b", "db1", "firing"), batch_id="m1"), ahead=True,
                             meanwhile=broken)
    assert isinstance(raised.value.__cause__, ValueError)
    again = run.pipeline.finish(run.pipeline.process(
        run.batch(dba("b", "db1", "firing"), batch_id="m1")))  # redelivered
    assert again.counts["alerts_indexed"] == 1 and not again.dead_letters


def _incident_rows(outcome) -> list:
    import msgpack

    from farm.pipeline import unpack_record

    return [msgpack.unpackb(unpack_record(r)[2])[3:] for r in outcome.records]


def test_bad_rules_are_reported_one_line_each(tmp_path):
    from farm.correlation.rules import load_file

    path = tmp_path / "bad.toml"
    path.write_text("""
[[rule]]
name = "no condition"
[[rule]]
name = "bad"
condition = 'a =='
threshold = 0
[[rule]]
name = "odd"
condition = "true"
resolve_on = "sometimes"
timeframe = "soon"
""")
    rules, problems = load_file(path)
    assert rules == []
    assert len(problems) == 3
    assert "condition is required" in problems[0]
    assert "threshold must be at least 1" in problems[1]
    assert "resolve_on must be one of" in problems[2]
    assert all("\n" not in p for p in problems)


def test_the_example_rule_file_is_valid():
    from pathlib import Path

    from farm.correlation.rules import load_file

    rules, problems = load_file(Path(__file__).parents[1] / "configs/correlation/example.toml")
    assert problems == [] and len(rules) == 3


def test_a_batch_redelivered_after_its_incident_resolved_opens_nothing_new(run_with):
    run = run_with(BY_HOST + 'resolve_on = "all"\n')
    first = run.send(dba("a", "db1"), batch_id="early", commit=False)  # its worker dies here
    run.send(dba("a", "db1", "resolved"))
    again = run.pipeline.process(encode_batch([dba("a", "db1")], "keep", sent_at=START + 1,
                                              batch_id="early"))
    assert _incident_rows(again) == _incident_rows(first)
    run.commit(again)
    [incident] = run.incidents()
    assert incident["status"] == "resolved"
