"""Keep's generic alert format (`POST /alerts/event/keep`): a list of AlertDto objects,
docs/keep-compatibility.md#keep-generic.

One group is one custom monitor's notification: a list of 1-3 alerts (on the wire, one event per
item). Each alert has a stable `id`, so an identical re-send is a full duplicate; about half carry
their own `fingerprint`, the others get Keep's sha256(name). `lastReceived` is the notification
time (Keep's dedup ignores it); the episode start is in `message`, so a new episode is a new
version.
"""

from __future__ import annotations

import hashlib
import random

from loadgen import vocab
from loadgen.providers.group import Identity, Shape, members, pick_severity
from loadgen.templates import placeholder

DEFAULT_MEMBERS = (1, 3)
CHECKS = ("connection pool exhausted", "certificate expires soon", "backup did not finish",
          "queue consumer stalled", "cron job failed", "synthetic check failed",
          "license usage above 90%", "replication stopped", "batch job overran its window")


class Group:
    provider = "keep"

    def __init__(self, rng: random.Random, ident: Identity, shape: Shape):
        self.alerts = []
        service = rng.choice(vocab.SERVICES)
        environment = rng.choice(vocab.ENVIRONMENTS)
        monitor = rng.choice(("custom-monitor", "cron-watch", "synthetics", "backup-check"))
        for m in range(members(rng, shape, DEFAULT_MEMBERS)):
            host = vocab.host_name(rng, ident.token(m))
            name = f"{service.capitalize()} {rng.choice(CHECKS)} on {host}"
            alert = {
                "id": f"{service}-{ident.token(m)}",
                "name": name,
                "severity": pick_severity(rng),
                "environment": environment,
                "service": service,
                "source": [monitor],
                "url": f"runbooks.example.org/{service}/{name.split()[1]}",
                "labels": {"host": host, **vocab.labels(rng, rng.randint(*shape.labels),
                                                        shape.label_values)},
                "team": f"{service}-oncall",
            }
            if rng.random() < 0.5:
                alert["fingerprint"] = f"{service}-{ident.token(m)}"
            self.alerts.append(alert)
        self.fingerprints = [a.get("fingerprint") or hashlib.sha256(a["name"].encode()).hexdigest()
                             for a in self.alerts]
        self.severities = [a["severity"] for a in self.alerts]

    def body(self, status: str, pad: int) -> list:
        share = pad // len(self.alerts)
        items = []
        for alert, fingerprint in zip(self.alerts, self.fingerprints, strict=True):
            text = vocab.filler(random.Random(fingerprint), share)
            item = {
                "id": alert["id"],
                "name": alert["name"],
                "status": status,
                "severity": alert["severity"],
                "lastReceived": placeholder("N"),
                "environment": alert["environment"],
                "service": alert["service"],
                "source": alert["source"],
                "message": f"{alert['name']} since {placeholder('S')}",
                "description": f"{alert['name']}.\n{text}".rstrip(),
                "url": alert["url"],
                "labels": alert["labels"],
                "team": alert["team"],
            }
            if "fingerprint" in alert:
                item["fingerprint"] = alert["fingerprint"]
            items.append(item)
        return items

    @staticmethod
    def events(body: list) -> list:
        """Wire events of one notification: a Keep list becomes one event per item."""
        return list(body)
