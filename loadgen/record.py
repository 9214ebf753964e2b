"""What a producer sent, compactly, for the verifier: one row per batch, per wire event and per
alert, in push order.

Memory: 8 bytes per alert (its version key), 9 per wire event (digest, alert count), about 30
per batch. Over HTTP a "batch" row is one request, with the batch id the gateway answered, and
the fingerprints of every group sent (the gateway shares batches between requests, so the
verifier matches stored rows by batch and fingerprint there). At 600 GB/day
for 60 s that is about 4 MB; it grows linearly with the run.
"""

from __future__ import annotations

import pickle
from array import array
from dataclasses import dataclass, field

from farm.wire import PROVIDERS

PROVIDER_INDEX = {p: i for i, p in enumerate(PROVIDERS)}


@dataclass
class SendLog:
    producer: int
    run_id: str
    sent_at: array = field(default_factory=lambda: array("d"))
    provider: array = field(default_factory=lambda: array("B"))
    events: array = field(default_factory=lambda: array("I"))        # wire events per batch
    event_alerts: array = field(default_factory=lambda: array("B"))  # alerts per wire event
    digests: array = field(default_factory=lambda: array("Q"))       # per wire event
    keys: array = field(default_factory=lambda: array("Q"))          # per alert
    batch_ids: list[str] | None = None     # HTTP only: the gateway's batch of each request
    fingerprints: dict | None = None       # HTTP only: group index -> its alerts' fingerprints
    storm_tag: str | None = None           # --profile incident-storm: the run's storm tag

    def add_batch(self, sent_at: float, provider: str, event_alerts, digests, keys,
                  batch_id: str | None = None) -> None:
        self.sent_at.append(sent_at)
        self.provider.append(PROVIDER_INDEX[provider])
        self.events.append(len(event_alerts))
        self.event_alerts.extend(event_alerts)
        self.digests.extend(digests)
        self.keys.extend(keys)
        if batch_id is not None:
            if self.batch_ids is None:
                self.batch_ids = []
            self.batch_ids.append(batch_id)

    @property
    def batches(self) -> int:
        return len(self.sent_at)

    def dumps(self) -> bytes:
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(data: bytes) -> SendLog:
        return pickle.loads(data)
