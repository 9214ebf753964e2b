"""Zabbix webhook media type that Keep installs (`POST /alerts/event/zabbix`),
docs/keep-compatibility.md#zabbix.

One group is one trigger on one host; a notification yields one alert. Keep's fingerprint is
sha256(name), so every name is unique within a run (it names the host). The problem event's
{EVENT.ID} is kept by its recovery notification, as Zabbix does; a new episode gets a new one.
An *exact re-send* is a media-type retry: the same parameters, byte for byte (a full duplicate).
"""

from __future__ import annotations

import hashlib
import json
import random

from loadgen import vocab
from loadgen.providers.group import Identity, Shape, pick_severity
from loadgen.templates import placeholder

SEVERITY_NAMES = {"critical": ("Disaster",), "high": ("High",), "warning": ("Average", "Warning"),
                  "info": ("Information",), "low": ("Not classified",)}
ZABBIX = "https://zabbix.example.org"
PROBLEMS = ("High CPU utilization", "Free disk space is less than 10% on volume /",
            "Zabbix agent is not available", "High memory utilization",
            "Too many processes", "Interface eth0: High error rate", "System time is out of sync",
            "Load average is too high", "/etc/passwd has been changed", "Service nginx is down",
            "MySQL: Replication lag is too high", "PostgreSQL: Too many connections")


class Group:
    provider = "zabbix"
    new_id_on_resolve = False  # a recovery notification carries its problem's {EVENT.ID}

    def __init__(self, rng: random.Random, ident: Identity, shape: Shape):
        self.host = vocab.host_name(rng, ident.token())
        self.name = f"{rng.choice(PROBLEMS)} on {self.host}"
        self.trigger_id = str(rng.randrange(10**4, 10**6))
        canonical = pick_severity(rng)
        self.severity = rng.choice(SEVERITY_NAMES[canonical])
        tags = [{"tag": "environment", "value": rng.choice(vocab.ENVIRONMENTS)},
                {"tag": "team", "value": rng.choice(("platform", "sre", "dba", "network"))}]
        tags += [{"tag": k, "value": v} for k, v in
                 vocab.labels(rng, rng.randint(*shape.labels), shape.label_values).items()]
        self.tags = json.dumps(tags, separators=(",", ":"))
        self.ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        self.description = f"{self.name}: threshold exceeded for 5m"
        self.fingerprints = [hashlib.sha256(self.name.encode()).hexdigest()]
        self.severities = [canonical]

    def body(self, status: str, pad: int) -> dict:
        firing = status == "firing"
        text = vocab.filler(random.Random(self.fingerprints[0]), pad)
        if firing:
            head = f"Problem started at {placeholder('ZSTIME')} on {placeholder('ZSDATE')}"
        else:
            head = f"Problem has been resolved at {placeholder('ZNTIME')} on " \
                   f"{placeholder('ZNDATE')}"
        message = (f"{head}\nProblem name: {self.name}\nHost: {self.host}\n"
                   f"Severity: {self.severity}\nOriginal problem ID: {placeholder('ZID')}\n{text}")
        return {
            "id": placeholder("ZID"),
            "triggerId": self.trigger_id,
            "lastReceived": placeholder("ZNOW"),
            "message": message.rstrip(),
            "name": self.name,
            "service": self.host,
            "severity": self.severity,
            "status": "PROBLEM" if firing else "RESOLVED",
            "tags": self.tags,
            "description": self.description,
            "time": placeholder("ZSTIME"),
            "value": "1" if firing else "0",
            "host_ip": self.ip,
            "host_name": self.host,
            "url": ZABBIX,
            "update_action": "",
            "event_ack": "No",
        }

    @staticmethod
    def events(body: dict) -> list:
        return [body]
