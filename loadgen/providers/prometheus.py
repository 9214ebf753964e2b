"""Alertmanager webhook v4 (`POST /alerts/event/prometheus`),
docs/keep-compatibility.md#prometheus.

One group is one Alertmanager notification group: 1-5 alerts sharing an alertname, job and
environment, one per instance. Each alert carries the `fingerprint` Alertmanager computes from
its label set, which is what Keep uses as the fingerprint. All alerts of the group fire and
resolve together; an episode's startsAt is the S stamp, a resolved alert's endsAt the R stamp.
"""

from __future__ import annotations

import random

from loadgen import vocab
from loadgen.providers.group import Identity, Shape, members, pick_severity
from loadgen.templates import placeholder

DEFAULT_MEMBERS = (1, 5)
# Canonical severity -> the label value Alertmanager users write (Keep maps error -> high).
LABEL_SEVERITY = {"critical": "critical", "high": "error", "warning": "warning", "info": "info",
                  "low": "low"}
NEVER = "0001-01-01T00:00:00Z"


class Group:
    provider = "prometheus"

    def __init__(self, rng: random.Random, ident: Identity, shape: Shape):
        self.alertname, metric, summary = rng.choice(vocab.PROBLEMS)
        self.service = rng.choice(vocab.SERVICES)
        self.environment = rng.choice(vocab.ENVIRONMENTS)
        job = rng.choice(vocab.JOBS)
        severity = pick_severity(rng)
        common_extra = vocab.labels(rng, rng.randint(*shape.labels) // 2, shape.label_values)
        self.prometheus = f"prometheus-{rng.randrange(8)}.monitoring.svc"
        self.runbook = rng.random() < 0.5
        self.alerts = []
        for m in range(members(rng, shape, DEFAULT_MEMBERS)):
            host = vocab.host_name(rng, ident.token(m))
            labels = {"alertname": self.alertname, "instance": f"{host}:9100", "job": job,
                      "severity": LABEL_SEVERITY[severity], "environment": self.environment,
                      "service": self.service, **common_extra}
            if m:  # members differ by instance, and sometimes by a few more labels
                labels.update(vocab.labels(rng, rng.randint(0, shape.labels[1] // 2),
                                           shape.label_values))
            self.alerts.append({
                "labels": labels,
                "summary": summary.format(host=host, service=self.service),
                "expr": f"{metric}{{instance=\"{host}:9100\"}}",
                "fingerprint": ident.hex16(m),
            })
        self.common_labels = {k: v for k, v in self.alerts[0]["labels"].items()
                              if all(a["labels"].get(k) == v for a in self.alerts)}
        self.fingerprints = [a["fingerprint"] for a in self.alerts]
        self.severities = [severity] * len(self.alerts)

    def body(self, status: str, pad: int) -> dict:
        share = pad // len(self.alerts)
        alerts = []
        for alert in self.alerts:
            text = vocab.filler(random.Random(alert["fingerprint"]), share)
            alerts.append({
                "status": status,
                "labels": alert["labels"],
                "annotations": self._annotations(alert, text),
                "startsAt": placeholder("S"),
                "endsAt": NEVER if status == "firing" else placeholder("R"),
                "generatorURL": f"http://{self.prometheus}:9090/graph?g0.expr="
                                f"{alert['expr']}&g0.tab=1",
                "fingerprint": alert["fingerprint"],
            })
        return {
            "receiver": "keep",
            "status": status,
            "alerts": alerts,
            "groupLabels": {"alertname": self.alertname},
            "commonLabels": self.common_labels,
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.monitoring.svc:9093",
            "version": "4",
            "groupKey": f"{{}}:{{alertname=\"{self.alertname}\"}}",
            "truncatedAlerts": 0,
        }

    def _annotations(self, alert: dict, text: str) -> dict:
        annotations = {"summary": alert["summary"]}
        if text:
            annotations["description"] = f"{alert['summary']}.\n{text}"
        if self.runbook:
            annotations["runbook_url"] = f"https://runbooks.example.org/{self.alertname.lower()}"
        return annotations

    @staticmethod
    def events(body: dict) -> list:
        """Wire events of one notification: the webhook itself."""
        return [body]
