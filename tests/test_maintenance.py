"""Maintenance windows: when a window is active, which alerts it takes, what it does to them, where
windows come from (the rule file, re-read when it changes; the Redis hash `farm maintenance`
writes) and the CLI's answers. Real Redis, no fakes."""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from farm import config as config_mod
from farm.alert import new_alert
from farm.cli import main as cli
from farm.dedup import ContentHasher
from farm.maintenance.cron import Cron, CronError
from farm.maintenance.screen import Verdicts, screen
from farm.maintenance.sources import (
    MaintenanceError,
    Windows,
    add_window,
    end_window,
    load_file,
    read_redis,
)
from farm.maintenance.window import condition_view, instant, parse_window
from farm.redis_keys import Keys
from farm.rules.condition import compile_condition
from farm.rules.files import RuleProblem
from farm.rules.ruleset import RuleError

EXAMPLE = Path(__file__).resolve().parent.parent / "configs" / "maintenance"
T = instant("2026-12-05T02:30:00Z", "t")  # a Saturday
HASHER = ContentHasher(["lastReceived"])


def alert(**fields) -> dict:
    out = new_alert(fields.pop("name", "CPU high"), "2026-12-05T02:30:00.000Z")
    out.update(fields)
    return out


def window(**table) -> object:
    table.setdefault("name", "w")
    table.setdefault("condition", "*")
    if "cron" not in table:
        table.setdefault("start", "2026-12-05T02:00:00Z")
        table.setdefault("end", "2026-12-05T03:00:00Z")
    return parse_window(table, "test")


def takes(w, a: dict) -> bool:
    return w.takes(a)


# -- when a window is active ----------------------------------------------------------------

def test_a_time_range_is_active_from_start_to_end_inclusive():
    w = window(start="2026-12-05T02:00:00Z", end="2026-12-05T03:00:00Z")
    start, end = instant("2026-12-05T02:00:00Z", "s"), instant("2026-12-05T03:00:00Z", "e")
    assert w.active_at(start) and w.active_at(end) and w.active_at(T)
    assert not w.active_at(start - 0.001) and not w.active_at(end + 0.001)


def test_a_duration_counts_from_start_and_a_time_without_offset_is_utc():
    w = parse_window({"name": "d", "condition": "*", "start": "2026-12-05T02:00:00",
                      "duration": "90m"}, "test")
    assert w.end == instant("2026-12-05T03:30:00Z", "e")
    assert w.active_at(instant("2026-12-05T03:29:59Z", "t"))
    assert not w.active_at(instant("2026-12-05T03:30:01Z", "t"))


def test_a_cron_window_opens_at_each_firing_for_its_duration():
    w = window(cron="0 2 * * sat", duration="2h")
    assert w.active_at(instant("2026-12-05T02:00:00Z", "t"))
    assert w.active_at(instant("2026-12-05T04:00:00Z", "t"))
    assert not w.active_at(instant("2026-12-05T04:00:01Z", "t"))
    assert not w.active_at(instant("2026-12-05T01:59:59Z", "t"))
    assert not w.active_at(instant("2026-12-06T02:30:00Z", "t"))  # Sunday
    assert w.active_at(instant("2026-12-12T03:15:00Z", "t"))  # next Saturday
    # asked out of order, as batches of different producers arrive
    assert not w.active_at(instant("2026-12-05T01:00:00Z", "t"))
    assert w.active_at(instant("2026-12-05T02:00:30Z", "t"))


def test_a_cron_window_that_spans_midnight_and_its_bounds():
    w = window(cron="30 23 * * *", duration="1h", start="2026-12-05T00:00:00Z",
               end="2026-12-07T00:00:00Z")
    assert w.active_at(instant("2026-12-06T00:15:00Z", "t"))   # opened the day before
    assert not w.active_at(instant("2026-12-05T00:15:00Z", "t"))  # before start
    assert not w.active_at(instant("2026-12-07T23:45:00Z", "t"))  # after end


def test_cron_fields_names_steps_lists_and_the_day_rule():
    first_monday = Cron("0 9 1-7 * mon")  # both days restricted: either matches (Vixie cron)
    assert first_monday.latest(instant("2026-12-03T09:00:00Z", "t"), 0) == \
        instant("2026-12-03T09:00:00Z", "t")  # a Thursday, but the 3rd
    every_quarter = Cron("*/15 * * jan,dec 0,7")  # Sunday twice, December by name
    assert every_quarter.latest(instant("2026-12-06T10:44:00Z", "t"), 0) == \
        instant("2026-12-06T10:30:00Z", "t")
    assert every_quarter.latest(instant("2026-12-05T10:44:00Z", "t"),
                                instant("2026-12-05T00:00:00Z", "t")) is None


@pytest.mark.parametrize("text, says", [
    ("0 2 * *", "needs 5 fields"),
    ("60 2 * * *", "minute 60 is outside 0-59"),
    ("0 2 * * funday", "day of week 'funday' is not a number or a name"),
    ("0 5-2 * * *", "runs backwards"),
    ("*/0 * * * *", "step '0' must be a whole number above 0"),
])
def test_bad_cron_says_which_part(text, says):
    with pytest.raises(CronError, match=says):
        Cron(text)


# -- which alerts a window takes --------------------------------------------------------------

def test_severity_literals_compare_by_order_and_source_is_its_first_item():
    below_critical = window(condition='severity < "critical"')
    assert takes(below_critical, alert(severity="high"))
    assert not takes(below_critical, alert(severity="critical"))
    at_least_warning = window(condition="severity >= 'WARNING'")
    assert takes(at_least_warning, alert(severity="warning"))
    assert not takes(at_least_warning, alert(severity="info"))
    assert takes(window(condition='severity == "info"'), alert())
    # only the alert's own severity is rewritten, never a label of that name
    assert takes(window(condition='labels.severity == "high"'),
                 alert(labels={"severity": "high"}))
    by_source = window(condition='source == "grafana"')
    assert takes(by_source, alert(source=["grafana", "keep"]))
    assert not takes(by_source, alert(source=["keep", "grafana"]))
    assert not takes(by_source, alert(source=[]))


def test_condition_errors_and_ignored_statuses_leave_the_alert_alone():
    w = window(condition='labels.team == "db"', ignore_statuses=["resolved", "acknowledged"])
    assert takes(w, alert(labels={"team": "db"}))
    assert not takes(w, alert(labels={"team": "db"}, status="resolved"))
    assert not takes(w, alert(labels={}))  # a missing field: the condition does not hold
    assert takes(window(condition="*"), alert(status="pending"))


# -- what it does ---------------------------------------------------------------------------

def digests(alerts: list[dict]) -> list[bytes]:
    return [HASHER.digest(a) for a in alerts]


def test_a_dropping_window_removes_what_it_takes_and_counts_it():
    w = window(name="db work", condition='service == "db"')
    batch = [alert(service="db"), alert(service="web"), alert(service="db")]
    out = screen([w], batch, digests(batch), HASHER)
    assert [a["service"] for a in out.alerts] == ["web"]
    assert out.digests == [HASHER.digest(batch[1])]
    assert out.dropped == 2 and out.effects == {("db work", "dropped"): 2}
    assert out.signature


def test_a_suppressing_window_keeps_the_alert_as_suppressed_with_a_new_digest():
    w = window(name="quiet", suppress=True)
    batch = [alert()]
    before = HASHER.digest(batch[0])
    out = screen([w], batch, digests(batch), HASHER)
    assert out.dropped == 0 and out.alerts[0]["status"] == "suppressed"
    assert "previous_status" not in out.alerts[0]
    assert out.digests == [HASHER.digest(out.alerts[0])] != [before]
    assert out.effects == {("quiet", "suppressed"): 1}


def test_recover_previous_status_marks_maintenance_and_keeps_the_original():
    w = window(suppress=True, recover_previous_status=True)
    out = screen([w], [alert(status="acknowledged")], [b""], HASHER)
    assert out.alerts[0]["status"] == "maintenance"
    assert out.alerts[0]["previous_status"] == "acknowledged"


def test_the_first_window_that_takes_an_alert_decides():
    suppress_db = window(name="a", condition='service == "db"', suppress=True)
    drop_all = window(name="b")
    batch = [alert(service="db"), alert(service="web")]
    out = screen([suppress_db, drop_all], batch, digests(batch), HASHER)
    assert [(a["service"], a["status"]) for a in out.alerts] == [("db", "suppressed")]
    assert out.effects == {("a", "suppressed"): 1, ("b", "dropped"): 1}


def test_an_untouched_batch_comes_back_as_it_was_and_signatures_follow_the_effect():
    w = window(condition='service == "db"')
    batch = [alert(service="web")]
    out = screen([w], batch, [b"x"], HASHER)
    assert out.alerts is batch and out.signature == "" and not out.effects
    one = screen([w], [alert(service="db"), alert()], [b"1", b"2"], HASHER).signature
    again = screen([w], [alert(service="db"), alert()], [b"1", b"2"], HASHER).signature
    other = screen([w], [alert(), alert(service="db")], [b"1", b"2"], HASHER).signature
    assert one == again != other


def varied_alerts(rng: random.Random, n: int) -> list[dict]:
    """Alerts drawn from a small space, so that many are copies of one another."""
    return [alert(service=rng.choice(["db", "web", "mainframe", None]),
                  status=rng.choice(["firing", "resolved", "acknowledged"]),
                  labels=rng.choice([{}, {"team": "storage"}, {"team": "web"},
                                     {"instance": "lab-3", "team": "storage"}]),
                  severity=rng.choice(["info", "warning", "critical"]),
                  source=rng.choice([["nagios"], ["prometheus"], []]))
            for _ in range(n)]


@pytest.mark.parametrize("condition", [
    'labels.team == "storage" && severity < "critical"',
    'service == "db" && severity == "critical"',      # severity is an order in the view
    'service == "mainframe"',
    'source == "nagios"',
    'labels.instance.startsWith("lab-")',
    'labels.team.contains("tor") && status == "firing"',
    '(service == "db") && (labels.team == "web" || labels.team == "storage")',
    'service == "web" || service == "db"',             # no field test to use
])
def test_a_window_checks_its_field_tests_as_its_condition_would(condition):
    """Windows refuse an alert on a failed `field == "x"` (or startsWith...) before running the
    condition; that must change no verdict, odd values included."""
    w = window(condition=condition)
    plain = compile_condition(condition, severity_order=True)
    odd = [alert(service=5), alert(labels="storage"), alert(labels={"team": ["storage"]}),
           alert(source=[None]), alert(service="db", severity="unknown"), alert(labels=None)]
    taken = 0
    for a in varied_alerts(random.Random(7), 400) + odd:
        view = condition_view(a)
        assert w.holds(view) == plain(view), a
        taken += plain(view)
    assert taken > 0


def test_remembered_verdicts_are_the_verdicts_of_the_windows():
    """Whatever is remembered, each alert goes where the windows themselves would send it."""
    windows = [window(name="storage",
                      condition='labels.team == "storage" && severity < "critical"'),
               window(name="mainframe", condition='service == "mainframe"', suppress=True),
               window(name="nagios", condition='source == "nagios"',
                      ignore_statuses=["resolved"]),
               window(name="lab", condition='labels.instance.startsWith("lab-")', suppress=True,
                      recover_previous_status=True)]
    rng = random.Random(5)
    verdicts = Verdicts()
    for _ in range(20):
        batch = varied_alerts(rng, 50)
        plain = screen(windows, [dict(a) for a in batch], digests(batch), HASHER)
        remembered = screen(windows, batch, digests(batch), HASHER, verdicts)
        assert remembered.alerts == plain.alerts and remembered.effects == plain.effects
        assert remembered.digests == plain.digests and remembered.signature == plain.signature
    assert 0 < verdicts.size < 20 * 50  # copies were looked up, not evaluated again


def test_a_window_that_reads_an_ignored_field_is_evaluated_for_every_alert():
    """lastReceived is not in the digest: two alerts differing only there share a digest, and a
    window reading it must still see each one."""
    w = window(name="late", condition='lastReceived > "2026-12-05T02:00:00"')
    early = alert(lastReceived="2026-12-05T01:00:00.000Z")
    late = alert(lastReceived="2026-12-05T02:30:00.000Z")
    assert HASHER.digest(early) == HASHER.digest(late)
    verdicts = Verdicts()
    assert screen([w], [early], digests([early]), HASHER, verdicts).dropped == 0
    assert screen([w], [late], digests([late]), HASHER, verdicts).dropped == 1
    assert verdicts.size == 0


def test_remembered_verdicts_follow_the_windows_that_are_active():
    db = window(name="db work", condition='service == "db"')
    verdicts = Verdicts()
    batch = [alert(service="db")]
    assert screen([db], batch, digests(batch), HASHER, verdicts).dropped == 1
    other = window(name="web work", condition='service == "web"')
    batch = [alert(service="db")]
    assert screen([other], batch, digests(batch), HASHER, verdicts).dropped == 0


def test_remembered_verdicts_keep_none_of_the_batch_objects_alive():
    """The memo outlives every batch; holding a batch's digest objects slowed other work in the
    process (the allocator could not reuse their memory whole), so it keeps numbers of its own."""
    w = window(condition='service == "db"')
    verdicts = Verdicts()
    batch = [alert(service="db"), alert(service="web")]
    held = digests(batch)
    before = [sys.getrefcount(d) for d in held]
    screen([w], batch, held, HASHER, verdicts)
    assert verdicts.size == 2
    assert [sys.getrefcount(d) for d in held] == before


def test_remembered_verdicts_stay_bounded():
    w = window(condition='service == "db"')
    verdicts = Verdicts(limit=10)
    for n in range(30):
        batch = [alert(service=f"s{n}")]
        screen([w], batch, digests(batch), HASHER, verdicts)
        assert verdicts.size <= 10


# -- the rule file --------------------------------------------------------------------------

def test_the_shipped_example_loads():
    windows, problems = load_file(EXAMPLE / "example.toml")
    assert problems == []
    by_name = {w.name: w for w in windows}
    assert set(by_name) == {"database migration", "weekly patching", "load test environment"}
    assert by_name["weekly patching"].active_at(T)
    assert not by_name["load test environment"].active_at(T)  # enabled = false


def test_every_problem_in_a_window_file_is_one_line(tmp_path):
    path = tmp_path / "windows.toml"
    path.write_text("""
[[window]]
name = "end and duration"
start = "2026-12-05T02:00:00Z"
end = "2026-12-05T03:00:00Z"
duration = "1h"
condition = "*"

[[window]]
name = "bad cron"
cron = "0 2 * *"
duration = "2h"
condition = "*"

[[window]]
name = "recover without suppress"
start = "2026-12-05T02:00:00Z"
duration = "1h"
condition = "*"
recover_previous_status = true

[[window]]
name = "typo"
start = "2026-12-05T02:00:00Z"
duration = "1h"
condition = "*"
supress = true

[[window]]
name = "bad condition"
start = "2026-12-05T02:00:00Z"
duration = "1h"
condition = 'service = "db"'

[[window]]
name = "bad status"
start = "yesterday"
duration = "1h"
condition = "*"

[[window]]
name = "ok"
start = "2026-12-05T02:00:00Z"
duration = "1h"
condition = "*"

[[window]]
name = "ok"
start = "2026-12-05T02:00:00Z"
duration = "1h"
condition = "*"

[windows]
""")
    windows, problems = load_file(path)
    assert [w.name for w in windows] == ["ok"]
    assert len(problems) == 8 and all("\n" not in p for p in problems)
    text = "\n".join(problems)
    for says in ("unknown table 'windows'",
                 "#1 ('end and duration'): give end or duration, not both",
                 "#2 ('bad cron'): cron '0 2 * *' needs 5 fields",
                 "#3 ('recover without suppress'): recover_previous_status needs suppress",
                 "#4 ('typo'): unknown key 'supress'", "#5 ('bad condition'): condition",
                 "#6 ('bad status'): start 'yesterday' is not an ISO 8601 time",
                 "#8 ('ok'): another window is named 'ok'"):
        assert says in text


def test_bad_values_name_the_key():
    for table, says in (
            ({"ignore_statuses": ["firing", "gone"]}, "ignore_statuses must be a list"),
            ({"suppress": "yes"}, "suppress must be true or false"),
            ({"condition": ""}, "condition is required"),
            ({"cron": "0 2 * * *"}, "a cron window needs duration"),
            ({"cron": "0 2 * * *", "duration": "40d"}, "at most 31d"),
            ({"end": "2026-12-05T01:00:00Z"}, "end is before start")):
        with pytest.raises(RuleProblem, match=says):
            window(**table)


def config_with(tmp_path: Path, redis_url: str, rules: str = "") -> config_mod.Config:
    path = tmp_path / "farm.toml"
    path.write_text(f'[redis]\nurl = "{redis_url}"\nprefix = "mw"\n[maintenance]\n'
                    f'rules = "{rules}"\n')
    return config_mod.load(path, env={})


def test_workers_reread_the_file_when_it_changes_and_keep_the_old_windows_on_a_mistake(
        tmp_path, redis, redis_url):
    shutil.copy(EXAMPLE / "example.toml", tmp_path / "windows.toml")
    cfg = config_with(tmp_path, redis_url, "windows.toml")
    windows = Windows(cfg, redis, Keys("mw"), refresh_seconds=0)
    assert len(windows.current()) == 3
    path = tmp_path / "windows.toml"
    path.write_text('[[window]]\nname = "only"\nstart = "2026-01-01T00:00:00Z"\n'
                    'duration = "1h"\ncondition = "*"\n')
    os.utime(path, ns=(1, 1))  # a different stamp even on a coarse clock
    assert [w.name for w in windows.current()] == ["only"]
    path.write_text('[[window]]\nname = "broken"\n')
    assert [w.name for w in windows.current()] == ["only"]


def test_a_bad_file_stops_the_worker_at_start(tmp_path, redis, redis_url):
    (tmp_path / "windows.toml").write_text("[[window]]\nname = 'x'\n")
    cfg = config_with(tmp_path, redis_url, "windows.toml")
    with pytest.raises(RuleError, match="condition is required"):
        Windows(cfg, redis, Keys("mw"))


# -- Redis windows --------------------------------------------------------------------------

def test_added_windows_reach_workers_and_end_keeps_them_for_redelivered_batches(
        tmp_path, redis, redis_url):
    keys = Keys("mw")
    windows = Windows(config_with(tmp_path, redis_url), redis, keys, refresh_seconds=0)
    assert windows.current() == ()
    add_window(redis, keys, {"name": "deploy", "condition": 'service == "api"',
                             "start": "2026-12-05T02:00:00Z", "duration": "4h"}, set(), T)
    [deploy] = windows.current()
    assert deploy.name == "deploy" and deploy.active_at(T)
    with pytest.raises(MaintenanceError, match="already exists and has not ended"):
        add_window(redis, keys, {"name": "deploy", "condition": "*", "start": "2026-12-05",
                                 "duration": "1h"}, set(), T)
    assert end_window(redis, keys, "deploy", set(), T + 60) == "ended window 'deploy'"
    [ended] = windows.current()
    assert ended.active_at(T) and ended.active_at(T + 60) and not ended.active_at(T + 61)
    with pytest.raises(MaintenanceError, match="already ended"):
        end_window(redis, keys, "deploy", set(), T + 120)
    # once ended, the name can be used again
    add_window(redis, keys, {"name": "deploy", "condition": "*", "start": "2026-12-06",
                             "duration": "1h"}, set(), T + 120)
    assert read_redis(redis, keys)[1][0].schedule().startswith("from 2026-12-06")


def test_a_window_without_end_lasts_until_it_is_ended(redis):
    keys = Keys("mw")
    add_window(redis, keys, {"name": "open", "condition": "*", "start": "2026-12-05T02:00:00Z"},
               set(), T)
    [window] = read_redis(redis, keys)[1]
    assert window.active_at(T + 10 * 365 * 86_400) and window.state_at(T) == "active"
    end_window(redis, keys, "open", set(), T)
    [window] = read_redis(redis, keys)[1]
    assert window.active_at(T) and not window.active_at(T + 1)


def test_ending_a_window_that_has_not_started_removes_it(redis):
    keys = Keys("mw")
    add_window(redis, keys, {"name": "later", "condition": "*", "start": "2027-01-01",
                             "duration": "1h"}, set(), T)
    assert "not started" in end_window(redis, keys, "later", set(), T)
    assert read_redis(redis, keys)[1] == []


def test_long_ended_windows_are_pruned_on_the_next_change(redis):
    keys = Keys("mw")
    add_window(redis, keys, {"name": "old", "condition": "*", "start": "2026-01-01",
                             "duration": "1h"}, set(), T)
    add_window(redis, keys, {"name": "new", "condition": "*", "start": "2026-12-05",
                             "duration": "1h"}, set(), T)
    assert [w.name for w in read_redis(redis, keys)[1]] == ["new"]


def test_names_of_file_windows_are_refused(redis):
    keys = Keys("mw")
    with pytest.raises(MaintenanceError, match="defined in the maintenance file"):
        add_window(redis, keys, {"name": "x", "condition": "*", "start": "2026-12-05",
                                 "duration": "1h"}, {"x"}, T)
    with pytest.raises(MaintenanceError, match="comes from the maintenance file"):
        end_window(redis, keys, "x", {"x"}, T)
    with pytest.raises(MaintenanceError, match="no window named 'y'"):
        end_window(redis, keys, "y", set(), T)


# -- the CLI --------------------------------------------------------------------------------

def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_add_list_end(tmp_path, redis, redis_url):
    shutil.copy(EXAMPLE / "example.toml", tmp_path / "windows.toml")
    config_with(tmp_path, redis_url, "windows.toml")
    conf = ("--config", str(tmp_path / "farm.toml"))
    code, out, err = run("maintenance", "add", "--name", "deploy", "--duration", "1h",
                         "--condition", 'service == "api"', "--suppress", *conf)
    assert code == 0 and "added window 'deploy' (active" in out and err == ""
    code, out, _ = run("maintenance", "list", "--json", *conf)
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == {"database migration", "weekly patching", "load test environment",
                         "deploy"}
    assert rows["deploy"]["state"] == "active" and rows["deploy"]["from"] == "redis"
    assert rows["deploy"]["action"] == "suppressed"
    assert rows["load test environment"]["state"] == "disabled"
    code, out, _ = run("maintenance", "list", *conf)
    assert code == 0 and "deploy" in out and "weekly" in out  # a table (wrapped at 80)
    code, out, _ = run("maintenance", "end", "deploy", *conf)
    assert code == 0 and out.strip() == "ended window 'deploy'"
    code, out, _ = run("maintenance", "list", "--json", *conf)
    assert {r["name"]: r["state"] for r in json.loads(out)}["deploy"] == "ended"
    # A window that held alerts in status maintenance says when they come back.
    run("maintenance", "add", "--name", "hold", "--condition", "*", "--suppress",
        "--recover-previous-status", *conf)
    code, out, _ = run("maintenance", "end", "hold", *conf)
    assert code == 0 and out.strip() == (
        "ended window 'hold'; the alerts it holds in status maintenance get their own status "
        "back within 60s unless another window takes them")


@pytest.mark.parametrize("args, says", [
    (("--name", "x", "--condition", "*", "--end", "2027-01-01", "--duration", "1h"),
     "give end or duration, not both"),
    (("--name", "x", "--condition", "service ==", "--duration", "1h"), "condition"),
    (("--name", "x", "--condition", "*", "--cron", "0 2 * *", "--duration", "1h"),
     "needs 5 fields"),
    (("--name", "x", "--condition", "*", "--duration", "1h", "--ignore-status", "nope"),
     "ignore_statuses must be a list of statuses"),
    (("--name", "weekly patching", "--condition", "*", "--duration", "1h"),
     "defined in the maintenance file"),
])
def test_cli_mistakes_are_one_line(tmp_path, redis, redis_url, args, says):
    shutil.copy(EXAMPLE / "example.toml", tmp_path / "windows.toml")
    config_with(tmp_path, redis_url, "windows.toml")
    code, out, err = run("maintenance", "add", *args, "--config", str(tmp_path / "farm.toml"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("farm: maintenance: ") and says in err
