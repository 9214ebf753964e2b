"""One batch through the stages: decode -> normalize -> fingerprint -> dedup -> enrich -> encode.

Pure CPU work plus one Redis call per chunk (the dedup script). The result is what the worker
hands to the ring (records) and what it reports when the batch is acked (counts, dead letters).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import msgpack

from farm.alert import iso_ms
from farm.dedup import FULL, ContentHasher, Deduplicator
from farm.providers import normalizer_for
from farm.sinks import encoder_for
from farm.wire import BadBatch, decode_batch, peek_batch_id


@dataclass
class Outcome:
    """What one batch produced."""

    records: list[bytes] = field(default_factory=list)   # ring records, in order
    memo_ids: list[str] = field(default_factory=list)    # dedup memos to drop on ack
    dead_letters: list[bytes] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)  # per decision letter
    provider: str = "unknown"


def dead_letter(reason: str, stage: str, payload: object, batch_id: str | None = None,
                tenant: str | None = None, provider: str | None = None) -> bytes:
    """A dead-letter record as stored in `<prefix>:dlq`."""
    return msgpack.packb({"reason": reason, "stage": stage, "at": time.time(), "batch": batch_id,
                          "tenant": tenant, "provider": provider, "payload": payload},
                         default=repr)


def pack_record(sent_at: float, n_alerts: int, body: bytes) -> bytes:
    return msgpack.packb((sent_at, n_alerts, body))


def unpack_record(record: bytes) -> tuple[float, int, bytes]:
    return msgpack.unpackb(record)


class Pipeline:
    def __init__(self, cfg, redis, keys):
        self.encoder = encoder_for(cfg)
        self.hasher = ContentHasher(cfg.dedup.ignore_fields)
        self.dedup = Deduplicator(redis, keys, cfg.dedup.ttl_seconds)
        self.batch_max = cfg.workers.batch_max

    def process(self, raw: bytes) -> Outcome:
        """Run one raw batch through every stage. Raises only Redis errors (the batch stays
        in flight and the caller retries); bad input becomes dead letters."""
        out = Outcome()
        try:
            batch = decode_batch(raw)
        except BadBatch as exc:
            return self.dead_batch(raw, str(exc), "decode")
        out.provider = batch.provider
        normalize = normalizer_for(batch.provider)
        if normalize is None:
            return self.dead_batch(raw, f"provider {batch.provider!r} is not supported by this "
                                   f"farm version", "normalize")
        now = iso_ms(batch.sent_at)
        processed = iso_ms(time.time())
        alerts: list[dict] = []
        bad_events = 0
        for event in batch.events:
            try:
                produced = normalize(event, now)
            except Exception as exc:  # a provider's bad event must not stop its batch
                bad_events += 1
                out.dead_letters.append(dead_letter(
                    f"{type(exc).__name__}: {exc}", "normalize", event, batch.id, batch.tenant,
                    batch.provider))
                continue
            for alert in produced:
                alert["eventId"] = f"{batch.id}:{len(alerts)}"
                alert["tenant"] = batch.tenant
                alert["batchId"] = batch.id
                alert["receivedAt"] = now
                alert["processedAt"] = processed
                alert["providerType"] = batch.provider
                alerts.append(alert)

        decided = {"n": 0, "p": 0, "f": 0}
        for index, start in enumerate(range(0, max(len(alerts), 1), self.batch_max)):
            chunk = alerts[start:start + self.batch_max]
            memo_id = f"{batch.id}/{index}"
            digests = [self.hasher.digest(alert) for alert in chunk]
            decisions = self.dedup.decide(memo_id, batch.tenant, chunk, digests)
            if chunk:
                out.memo_ids.append(memo_id)
            for letter in decisions:
                decided[letter] += 1
            items = list(zip(chunk, decisions, strict=True))
            body = self.encoder.encode(batch.tenant, batch.sent_at, items)
            out.records.append(pack_record(batch.sent_at, len(chunk), body))

        out.decisions = decided
        out.counts = {
            "alerts_received": len(alerts) + bad_events,
            "alerts_indexed": decided["n"] + decided["p"],
            "alerts_duplicate": decided[FULL],
            "alerts_dead": bad_events,
            "batches_received": 1,
        }
        return out

    def dead_batch(self, raw: bytes, reason: str, stage: str) -> Outcome:
        """The whole batch goes to the dead-letter list; one empty record keeps ack order."""
        try:
            batch = decode_batch(raw)
            batch_id, tenant, provider, sent_at = batch.id, batch.tenant, batch.provider, \
                batch.sent_at
            events = len(batch.events)
        except BadBatch:
            batch_id, tenant, provider, sent_at = peek_batch_id(raw), None, None, 0.0
            events = 0
        out = Outcome(provider=provider or "unknown")
        out.dead_letters.append(dead_letter(reason, stage, raw, batch_id, tenant, provider))
        out.records.append(pack_record(sent_at, 0, self.encoder.encode(tenant or "", sent_at, [])))
        # Each event of a dead batch counts as one dead alert: what it would have yielded is
        # unknown.
        out.counts = {"batches_received": 1, "batches_dead": 1, "alerts_received": events,
                      "alerts_dead": events}
        return out
