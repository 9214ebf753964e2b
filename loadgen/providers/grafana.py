"""Grafana unified alerting webhook (`POST /alerts/event/grafana`),
docs/keep-compatibility.md#grafana.

One group is one Grafana notification: 1-4 alerts of one alert rule, each with the
`fingerprint` Grafana computes (Keep's id and fingerprint). The top-level `status`, `state` and
`title` follow the group's status, as Grafana's default template renders them. Keep ignores
startsAt for Grafana, so what makes each version new content is what Grafana itself sends anew:
the dashboard and panel links' time range around the episode (`from` an hour before it starts,
`to` its start or its resolution: GFROM and LU stamps) and the evaluated value (VAL).
"""

from __future__ import annotations

import random

from loadgen import vocab
from loadgen.providers.group import Identity, Shape, members, pick_severity
from loadgen.templates import placeholder

DEFAULT_MEMBERS = (1, 4)
# Canonical severity -> label value; Grafana's mapping in Keep turns anything else into info.
LABEL_SEVERITY = {"critical": "critical", "high": "high", "warning": "warning", "info": "info",
                  "low": "info"}
NEVER = "0001-01-01T00:00:00Z"
GRAFANA = "https://grafana.example.org/"


class Group:
    provider = "grafana"

    def __init__(self, rng: random.Random, ident: Identity, shape: Shape):
        self.alertname, _metric, summary = rng.choice(vocab.PROBLEMS)
        self.folder = rng.choice(("API", "Infra", "Databases", "Kubernetes", "Edge"))
        self.service = rng.choice(vocab.SERVICES)
        environment = rng.choice(vocab.ENVIRONMENTS)
        severity = LABEL_SEVERITY[pick_severity(rng)]
        self.rule_uid = ident.token()
        self.dashboard = f"{GRAFANA}d/{ident.token()[:8]}"
        self.panel = rng.randint(1, 40)
        self.alerts = []
        for m in range(members(rng, shape, DEFAULT_MEMBERS)):
            host = vocab.host_name(rng, ident.token(m))
            labels = {"alertname": self.alertname, "grafana_folder": self.folder,
                      "service": self.service, "severity": severity,
                      "deployment_environment": environment, "instance": host}
            labels.update(vocab.labels(rng, rng.randint(*shape.labels) // 2 + (1 if m else 0),
                                       shape.label_values))
            self.alerts.append({
                "labels": labels,
                "summary": summary.format(host=host, service=self.service),
                "fingerprint": ident.hex16(m),
            })
        self.common_labels = {"alertname": self.alertname, "grafana_folder": self.folder}
        self.fingerprints = [a["fingerprint"] for a in self.alerts]
        self.severities = [{"critical": "critical", "high": "high", "warning": "warning"}
                           .get(severity, "info")] * len(self.alerts)

    def body(self, status: str, pad: int) -> dict:
        share = pad // len(self.alerts)
        span = f"from={placeholder('GFROM')}&to={placeholder('LU')}"
        alerts = []
        for alert in self.alerts:
            text = vocab.filler(random.Random(alert["fingerprint"]), share)
            alerts.append({
                "status": status,
                "labels": alert["labels"],
                "annotations": {"summary": alert["summary"], **(
                    {"description": f"{alert['summary']}.\n{text}"} if text else {})},
                "startsAt": placeholder("S"),
                "endsAt": NEVER if status == "firing" else placeholder("R"),
                "generatorURL": f"alerting/grafana/{self.rule_uid}/view",
                "fingerprint": alert["fingerprint"],
                "silenceURL": f"{GRAFANA}alerting/silence/new?alertmanager=grafana",
                "dashboardURL": f"{self.dashboard}?{span}&orgId=1",
                "panelURL": f"{self.dashboard}?{span}&orgId=1&viewPanel={self.panel}",
                "values": {"C": 1 if status == "firing" else 0},
                "valueString": f"[ var='A' labels={{instance={alert['labels']['instance']}}} "
                               f"value={placeholder('VAL')} ]",
            })
        count = len(alerts)
        if status == "firing":
            title = f"[FIRING:{count}] {self.alertname} {self.folder} ({self.service})"
        else:
            title = f"[RESOLVED] {self.alertname} {self.folder} ({self.service})"
        return {
            "receiver": "keep",
            "status": status,
            "orgId": 1,
            "alerts": alerts,
            "groupLabels": {"alertname": self.alertname},
            "commonLabels": self.common_labels,
            "commonAnnotations": {},
            "externalURL": GRAFANA,
            "version": "1",
            "groupKey": f"{{}}:{{alertname=\"{self.alertname}\"}}",
            "truncatedAlerts": 0,
            "title": title,
            "state": "alerting" if status == "firing" else "ok",
            "message": f"**{status.capitalize()}**\n\nValue: {alerts[0]['valueString']}",
        }

    @staticmethod
    def events(body: dict) -> list:
        return [body]
