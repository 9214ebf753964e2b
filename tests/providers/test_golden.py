"""Golden cases: each `<provider>/<case>.json` is one raw event exactly as the provider sends it;
`<case>.expected.json` beside it holds the canonical alerts farm makes of it (fingerprint
included) and each alert's content digest (the dedup hash) under the default rule.

`FARM_REGEN_GOLDEN=1 pytest tests/providers` rewrites the expected files from the code: do that only
to add a case, then read the new file against docs/keep-compatibility.md#providers before keeping
it.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from farm import config, rules
from farm.pipeline import canonical_alerts

HERE = Path(__file__).parent
# The batch's sent_at, 2025-03-04T08:20:00Z: "now" for every case.
NOW = "2025-03-04T08:20:00.000Z"
CASES = sorted(p for p in HERE.glob("*/*.json") if not p.name.endswith(".expected.json"))


def _rules():
    return rules.load(config.load(None, env={}))


def produce(case: Path) -> dict:
    provider = case.parent.name
    batch_rules = _rules().for_batch("default", provider)
    event = orjson.loads(case.read_bytes())
    alerts = canonical_alerts(event, provider, NOW, batch_rules)
    return {"alerts": alerts, "digests": [batch_rules.hasher.hexdigest(a) for a in alerts]}


def test_every_provider_has_golden_cases():
    assert {c.parent.name for c in CASES} == {"prometheus", "grafana", "datadog", "zabbix",
                                              "keep"}


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden(case: Path):
    expected_path = case.with_suffix(".expected.json")
    got = produce(case)
    if os.environ.get("FARM_REGEN_GOLDEN"):
        expected_path.write_bytes(orjson.dumps(got, option=orjson.OPT_INDENT_2) + b"\n")
    expected = orjson.loads(expected_path.read_bytes())
    assert got["alerts"] == expected["alerts"]
    assert [a["fingerprint"] for a in got["alerts"]] == \
        [a["fingerprint"] for a in expected["alerts"]]
    assert got["digests"] == expected["digests"]


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_case_is_deterministic(case: Path):
    """A redelivered batch must yield identical documents: no clock, no random ids."""
    assert produce(case) == produce(case)
