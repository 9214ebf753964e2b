"""Enrichment rule files are taken up again when they change, without a restart; a changed file
with problems leaves the rules in force."""

from __future__ import annotations

import os
import textwrap

from farm import config
from farm.pipeline import canonical_alerts, run_enrichment
from farm.rules.reload import ReloadingRules

NOW = "2025-03-04T08:20:00.000Z"

OWNERS = """
    [[mapping]]
    name = "owners"
    matchers = [["service"]]
    csv = "owners.csv"
"""


def write(path, text: str) -> None:
    """Write and move the modification time on, so a change shows even within one clock tick."""
    before = os.stat(path).st_mtime_ns if path.exists() else 0
    path.write_text(textwrap.dedent(text).lstrip())
    stamp = max(os.stat(path).st_mtime_ns, before + 1_000_000)
    os.utime(path, ns=(stamp, stamp))


def setup(tmp_path):
    (tmp_path / "rules").mkdir()
    write(tmp_path / "rules" / "r.toml", OWNERS)
    write(tmp_path / "rules" / "owners.csv", "service,owner\nweb,alice\n")
    (tmp_path / "farm.toml").write_text('[enrichment]\nfiles = ["rules/r.toml"]\n')
    return config.load(tmp_path / "farm.toml", env={})


def owner(rules: ReloadingRules, service: str = "web") -> object:
    batch_rules = rules.current().for_batch("default", "keep")
    [alert] = canonical_alerts({"name": "x", "service": service}, "keep", NOW, batch_rules)
    run_enrichment(alert, batch_rules, NOW)
    return alert.get("owner")


def test_a_changed_csv_table_and_a_changed_rule_file_are_taken_up(tmp_path):
    rules = ReloadingRules(setup(tmp_path), every=0)
    assert owner(rules) == "alice"
    write(tmp_path / "rules" / "owners.csv", "service,owner\nweb,bob\n")
    assert owner(rules) == "bob"
    write(tmp_path / "rules" / "r.toml", OWNERS + """
    [[extraction]]
    name = "everything is owned by carol"
    attribute = "name"
    regex = '^(?P<owner>x)$'
    """)
    rules.current()
    assert len(rules.rules.post) == 1


def test_a_changed_file_with_problems_keeps_the_rules_in_force(tmp_path, caplog):
    rules = ReloadingRules(setup(tmp_path), every=0)
    write(tmp_path / "rules" / "r.toml", "[[mapping]]\nname = 'broken'\n")
    assert owner(rules) == "alice"
    assert "enrichment rules not reloaded" in caplog.text
    caplog.clear()
    assert owner(rules) == "alice" and "not reloaded" not in caplog.text  # once per change


def test_rules_given_ready_made_are_kept(tmp_path):
    cfg = setup(tmp_path)
    given = ReloadingRules(cfg).rules
    rules = ReloadingRules(cfg, given, every=0)
    write(tmp_path / "rules" / "owners.csv", "service,owner\nweb,bob\n")
    assert rules.current() is given and owner(rules) == "alice"
