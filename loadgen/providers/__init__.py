"""Alert groups in each provider's real webhook shape (docs/keep-compatibility.md#providers).

A provider module defines one class; an instance is one *alert group*: what one webhook
notification is about (an Alertmanager group with 1-5 alerts, one Datadog monitor/scope, one
Zabbix trigger on one host, a list of 1-3 Keep alerts). It is built from a seeded Random and a
run-unique Identity, and renders its notification body for a status ('firing' or 'resolved') with
stamp placeholders (loadgen/templates.py) where per-version values go. It also states, computed from
the body by the provider's own rule (docs/keep-compatibility.md#fingerprinting), the fingerprint and
the canonical severity of each alert the notification yields.
"""

from __future__ import annotations

from loadgen.providers import datadog, grafana, keep, prometheus, zabbix

# Provider name -> alert group class, in the order of farm.wire.PROVIDERS.
GROUPS: dict[str, type] = {"prometheus": prometheus.Group, "grafana": grafana.Group,
                           "datadog": datadog.Group, "zabbix": zabbix.Group, "keep": keep.Group}
