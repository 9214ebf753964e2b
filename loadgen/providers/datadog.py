"""Datadog monitor webhook in the JSON template Keep installs (`POST /alerts/event/datadog`),
docs/keep-compatibility.md#datadog.

One group is one monitor on one scope; a notification yields one alert. Keep's fingerprint is
sha256(json.dumps(groups) + monitor_id), groups being the comma-split `scopes`. Datadog gives
each notification its own `id` ($ID) and `last_updated`, so a re-notification is a new version
(a partial duplicate in Keep's terms); an *exact re-send* is a webhook delivery retry, which
repeats the same id and timestamps byte for byte (a full duplicate).
"""

from __future__ import annotations

import hashlib
import json
import random
import re

from loadgen import vocab
from loadgen.providers.group import Identity, Shape, pick_severity
from loadgen.templates import placeholder

PRIORITY = {"critical": "P1", "high": "P2", "warning": "P3", "info": "P4", "low": "P5"}
# Keep's mapping back: P5 (and anything unknown) is info.
CANONICAL = {"P1": "critical", "P2": "high", "P3": "warning", "P4": "info", "P5": "info"}
APP = "https://app.datadoghq.com"


def fingerprint(scopes: str, monitor_id: str) -> str:
    """Keep's Datadog fingerprint (docs/keep-compatibility.md#fingerprinting)."""
    groups = scopes.split(",") if scopes else ["*"]
    return hashlib.sha256((json.dumps(groups) + str(monitor_id)).encode()).hexdigest()


class Group:
    provider = "datadog"

    def __init__(self, rng: random.Random, ident: Identity, shape: Shape):
        name, metric, summary = rng.choice(vocab.PROBLEMS)
        self.role = rng.choice(vocab.ROLES)
        self.host = f"{self.role}-{ident.token()}"
        self.service = rng.choice(vocab.SERVICES)
        env = rng.choice(("prod", "staging", "dev"))
        self.monitor_id = str(rng.randrange(10**6, 10**8))
        self.scopes = f"host:{self.host}" + (f",env:{env}" if rng.random() < 0.3 else "")
        self.priority = PRIORITY[pick_severity(rng)]
        self.title = f"{re.sub(r'(?<=[a-z])(?=[A-Z])', ' ', name)} on {self.role} tier"
        self.summary = summary.format(host=self.host, service=self.service)
        self.query = f"avg(last_5m):avg:{metric.replace('_', '.')}{{role:{self.role}}} " \
                     f"by {{host}} > {rng.choice((80, 90, 95))}"
        extra = vocab.labels(rng, rng.randint(*shape.labels), shape.label_values)
        self.tags = ",".join([f"env:{env}", "monitor", f"role:{self.role}",
                              f"service:{self.service}", *(f"{k}:{v}" for k, v in extra.items())])
        self.org = {"id": str(rng.randrange(1000, 99999)), "name": "Example"}
        self.snapshot = ident.hex16()
        self.fingerprints = [fingerprint(self.scopes, self.monitor_id)]
        self.severities = [CANONICAL[self.priority]]

    def body(self, status: str, pad: int) -> dict:
        firing = status == "firing"
        transition = "Triggered" if firing else "Recovered"
        monitor = f"{APP}/monitors/{self.monitor_id}"
        text = vocab.filler(random.Random(self.fingerprints[0]), pad)
        body = (f"%%%\n@slack-ops {'' if firing else 'Recovered: '}{self.summary}\n{text}\n\n"
                f"[![Metric Graph](https://p.datadoghq.com/snapshot/view/dd-snapshots-prod/"
                f"org_{self.org['id']}/{self.snapshot}.png)]({monitor})\n\n"
                f"The monitor was last triggered at {placeholder('DDTRIG')}.\n\n- - -\n\n"
                f"[[Monitor Status]({monitor})] · [[Edit Monitor]({monitor}/edit)] · "
                f"[[Related Logs]({APP}/logs?query=host%3A{self.host})]\n%%%")
        return {
            "body": body,
            "last_updated": placeholder("LU"),
            "event_type": "query_alert_monitor",
            "title": f"[{transition} on {{host:{self.host}}}] {self.title}",
            "severity": self.priority,
            "alert_type": ("error" if self.priority in ("P1", "P2") else "warning")
            if firing else "success",
            "alert_query": self.query,
            "alert_transition": transition,
            "date": placeholder("LU"),
            "scopes": self.scopes,
            "org": self.org,
            "url": monitor,
            "tags": self.tags,
            "id": placeholder("DDID"),
            "monitor_id": self.monitor_id,
        }

    @staticmethod
    def events(body: dict) -> list:
        return [body]
