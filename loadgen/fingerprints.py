"""Keep's fingerprint of an alert, written from docs/keep-compatibility.md#fingerprinting,
independently of farm's normalizers: from a raw provider event (what the generator claims, checked
by the tests), and from a stored canonical document (how the HTTP verifier recognises its alerts,
whatever fingerprint the farm chose: farm deliberately fingerprints Zabbix by name and host)."""

from __future__ import annotations

import hashlib
import json

from loadgen.providers.datadog import fingerprint as datadog_fingerprint


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprints_of(provider: str, event) -> list[str]:
    """Fingerprints of the alerts one wire event yields, in order."""
    if provider in ("prometheus", "grafana"):
        alerts = event.get("alerts", [event])
        return [a.get("fingerprint") or _sha(a.get("labels", {}).get("alertname", ""))
                for a in alerts]
    if provider == "datadog":
        return [datadog_fingerprint(event.get("scopes", ""), event.get("monitor_id"))]
    if provider == "zabbix":
        return [_sha(event["name"])]
    items = event if isinstance(event, list) else [event]
    return [str(item["fingerprint"])[:255] if item.get("fingerprint") else _sha(item["name"])
            for item in items]


def keep_fingerprint_of_doc(doc: dict) -> str:
    """Keep's fingerprint of a stored canonical alert, recomputed from the fields Keep builds it
    from (docs/keep-compatibility.md#fingerprinting)."""
    provider = doc.get("providerType")
    if provider == "datadog":
        return hashlib.sha256((json.dumps(doc.get("groups") or ["*"])
                               + str(doc.get("monitor_id"))).encode()).hexdigest()
    if provider == "zabbix":
        return _sha(str(doc.get("name")))
    return str(doc.get("fingerprint"))
