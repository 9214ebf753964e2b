"""Which requests hold a critical alert, by the payload's own severity field (the same values the
worker maps to Keep's `critical`, docs/keep-compatibility.md#providers). Cheap on purpose: a few
dict lookups per event, no normalization. Critical requests go to the critical lane."""

from __future__ import annotations


def _labels_critical(alert: object) -> bool:
    labels = alert.get("labels") if type(alert) is dict else None
    return type(labels) is dict and labels.get("severity") == "critical"


def _alerts_critical(event: dict) -> bool:
    """Alertmanager and Grafana: alerts[].labels.severity, or a bare alert's labels."""
    alerts = event.get("alerts")
    if type(alerts) is list:
        return any(_labels_critical(alert) for alert in alerts)
    return _labels_critical(event)


def _grafana(event: dict) -> bool:
    # Keep maps every legacy (evalMatches) Grafana alert to critical.
    return "evalMatches" in event or _alerts_critical(event)


def _datadog(event: dict) -> bool:
    return event.get("severity") in ("P1", "1", 1)


def _zabbix(event: dict) -> bool:
    severity = event.get("severity")
    if type(severity) is str:
        return severity == "5" or severity.lower() == "disaster"
    return severity == 5


def _keep(event: dict) -> bool:
    severity = event.get("severity")
    return severity == "critical" or (severity == 5 and type(severity) is int)


_BY_PROVIDER = {
    "prometheus": _alerts_critical,
    "grafana": _grafana,
    "datadog": _datadog,
    "zabbix": _zabbix,
    "keep": _keep,
}


def is_critical(provider: str, events: list[dict]) -> bool:
    """True if any event holds an alert that its provider marks critical."""
    check = _BY_PROVIDER[provider]
    return any(check(event) for event in events)
