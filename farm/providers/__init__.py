"""Provider normalizers: one module per provider, each with one function.

    normalize(event: dict, now: str) -> list[dict]

takes one raw event exactly as the provider sends it and returns the canonical alerts it holds
(see farm/alert.py), with `fingerprint` set. `now` is the ingestion time (the batch's sent_at,
ISO). A normalizer raises BadEvent (or any exception) for an event it cannot read; the pipeline
dead-letters that event alone and goes on.
"""

from __future__ import annotations

from collections.abc import Callable

from farm.providers import datadog, grafana, keep, prometheus, zabbix
from farm.providers.errors import BadEvent

Normalizer = Callable[[dict, str], list]


__all__ = ["BadEvent", "NORMALIZERS", "normalizer_for"]

NORMALIZERS: dict[str, Normalizer] = {
    "prometheus": prometheus.normalize,
    "grafana": grafana.normalize,
    "datadog": datadog.normalize,
    "zabbix": zabbix.normalize,
    "keep": keep.normalize,
}


def normalizer_for(provider: str) -> Normalizer | None:
    return NORMALIZERS.get(provider)
