"""One batch through the stages: decode -> normalize -> fingerprint -> maintenance -> dedup ->
enrich -> correlate -> encode.

Pure CPU work plus two Redis calls per chunk (the dedup script; with correlation rules the
correlation script, whose reply the worker may read after preparing its next batch), and at
most once a second a GET of the maintenance windows' version. The result is what the worker
hands to the ring (records) and what it reports when the batch is acked (counts, dead letters).

The stages run in Keep's order (docs/keep-compatibility.md#processing-order): pre-extraction on the
raw event, provider formatting, the dedup rule's fingerprint fields, the envelope's fingerprint
override, maintenance windows (active at the batch's sent_at), deduplication, then for every
alert that is not a full duplicate post-extraction and mapping. Enrichment therefore never changes
a fingerprint or a dedup decision.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack
from redis.exceptions import RedisError

from farm.alert import fields_fingerprint, iso_ms, keep_url, normalize_time, severity_of, status_of
from farm.config import Config
from farm.correlation.stage import Correlated, Correlation, CorrelationCounts
from farm.deadletters import dead_letter
from farm.dedup import DECISION_NAMES, FULL, NEW, PARTIAL, SKIPPED, Deduplicator
from farm.maintenance.release import RELEASE, release_alerts
from farm.maintenance.screen import Verdicts, screen
from farm.maintenance.sources import Windows
from farm.notify.entries import alert_entry, incident_entry
from farm.providers import normalizer_for
from farm.rules.extraction import run as run_extraction
from farm.rules.reload import ReloadingRules
from farm.rules.ruleset import PROTECTED_FIELDS, BatchRules, Rules
from farm.sinks import encoder_for
from farm.sinks.raw import RawSampler, raw_event
from farm.wire import BadBatch, Batch, decode_batch, peek_batch_id

log = logging.getLogger("farm.pipeline")
NO_PROTECTION: frozenset[str] = frozenset()
ENRICH_ERROR_LOG_SECONDS = 60.0
# The cyclic collector's first generation runs every 700 container allocations by default: a
# batch allocates tens of thousands (every alert is a few dicts and lists) that are all freed
# when it is done, so the collector kept moving live batches into older generations and then
# traversing them, a full collection every few batches. Profiled (bench/pipeline.py with every
# stage on) that was 5-10% of a worker's CPU; with these thresholds a batch is mostly freed
# before any collection runs. Reference cycles are still collected.
GC_THRESHOLDS = (20_000, 20, 20)


@dataclass
class Outcome:
    """What one batch produced."""

    records: list[bytes] = field(default_factory=list)   # ring records, in order
    memo_ids: list[str] = field(default_factory=list)    # dedup memos to drop on ack
    tenant: str = "default"                              # whose incident memo they include
    dead_letters: list[bytes] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)  # per decision letter
    provider: str = "unknown"
    correlation: CorrelationCounts = field(default_factory=CorrelationCounts)
    maintenance: Counter = field(default_factory=Counter)  # (window, action) -> alerts
    # Pushed to the notify list in the ack (farm/notify/entries.py); empty without [notify] url.
    notifications: list[bytes] = field(default_factory=list)
    raw: list[dict] = field(default_factory=list)  # kept raw events ([store] raw_sample)
    released: int = 0  # alerts a release batch stored again with their own status
    # Set while a correlation call runs in Redis: Pipeline.finish completes the outcome.
    unfinished: Callable[[], Outcome] | None = None



class MeanwhileFailed(BaseException):
    """What Pipeline.process's `meanwhile` raised, as its __cause__: carried past the batch's
    guard, which turns an Exception into the batch's dead letter."""


class _Meanwhile:
    """Runs a function at most once; its errors come out as MeanwhileFailed."""

    def __init__(self, fn: Callable[[], None] | None):
        self._fn = fn

    def __call__(self) -> None:
        fn, self._fn = self._fn, None
        if fn is not None:
            try:
                fn()
            except Exception as exc:
                raise MeanwhileFailed() from exc


def pack_record(sent_at: float, n_alerts: int, body: bytes) -> bytes:
    return msgpack.packb((sent_at, n_alerts, body))


def unpack_record(record: bytes) -> tuple[float, int, bytes]:
    return msgpack.unpackb(record)


def canonical_alerts(event: object, provider: str, now: str, rules: BatchRules,
                     provider_id: str | None = None, fingerprint: str | None = None
                     ) -> list[dict]:
    """The canonical alerts of one raw event, fingerprinted, before deduplication.

    Pre-extraction rules run on (a copy of) the raw event; the provider's normalizer maps it;
    providerType/providerId come from the batch; a dedup rule's fingerprint_fields replace the
    provider's fingerprint, and the envelope's `fingerprint` (Keep's query parameter) replaces
    any. Raises whatever the normalizer raises for an unreadable event.
    """
    if rules.pre and isinstance(event, dict):
        event = dict(event)
        run_extraction(rules.pre, event, NO_PROTECTION)
    alerts = normalizer_for(provider)(event, now)
    paths = rules.fingerprint_paths
    for alert in alerts:
        alert["providerType"] = provider
        alert["providerId"] = provider_id  # Keep's wrapper sets both, even over a sent value
        if paths is not None:
            alert["fingerprint"] = fields_fingerprint(alert, paths)
        if fingerprint:
            alert["fingerprint"] = fingerprint[:255]
    return alerts


def _revalidate(alert: dict, keys: list[str], before: tuple, now: str) -> None:
    """Keep rebuilds its AlertDto after extraction, so its validators see what rules set; the
    store's mapping needs the same of mapping rules. `before` is (name, labels, source) as they
    were before any rule ran: a value no validator can repair gives way to it."""
    for key in keys:
        value = alert[key]
        if key == "severity":
            alert[key] = severity_of(value)
        elif key == "status":
            alert[key] = status_of(value)
        elif key == "url":
            alert[key] = keep_url(value)
        elif key == "lastReceived":
            alert[key] = normalize_time(value, now)
        elif key == "name" and not value:
            alert[key] = before[0]  # Keep drops an extraction that empties the name
        elif key == "labels" and not isinstance(value, dict):
            alert[key] = {} if value is None else before[1]  # a map, or null read as {}
        elif key == "source":
            if isinstance(value, str):
                value = [value]  # as the keep provider reads a single source
            ok = isinstance(value, list) and bool(value) and all(isinstance(s, str) for s in value)
            alert[key] = value if ok else before[2]


def run_enrichment(alert: dict, rules: BatchRules, now: str) -> None:
    """Post-extraction, then mapping rules, on one alert in place (Keep's order: see above)."""
    before = (alert["name"], alert.get("labels"), alert.get("source"))
    if rules.post:
        changed = run_extraction(rules.post, alert, PROTECTED_FIELDS)
        if changed:
            _revalidate(alert, changed, before, now)
    for rule in rules.mapping:
        found = rule.enrichments(alert)
        if found:
            changed = [k for k in found if k not in PROTECTED_FIELDS]
            for key in changed:
                alert[key] = found[key]
            _revalidate(alert, changed, before, now)
            # Keep lists an alert's enrichment keys in enriched_fields (the console shows them)
            if changed:
                alert["enriched_fields"] = sorted({*alert.get("enriched_fields", ()), *changed})


class Pipeline:
    """The stages one worker runs on a raw batch: decode, normalize, fingerprint, maintenance,
    dedup, enrich, encode (see the module docstring for the order and why).

    `process(raw)` returns an Outcome: the ring records, the counts and dead letters to report
    on ack, the dedup memos to drop. It raises only Redis errors (the batch stays in flight and
    is retried, its decisions replayed); any bad input becomes dead letters, never an exception.
    """

    def __init__(self, cfg: Config, redis, keys, rules: Rules | None = None, *,
                 max_record_bytes: int | None = None):
        """Builds the encoder and compiles every rule (raises farm.rules.ruleset.RuleError on
        bad rules: `farm.rules.validate(cfg)` reports the same problems before start).
        `max_record_bytes` bounds every record `process` returns (the ring's max_record); None
        means no bound."""
        self.encoder = encoder_for(cfg)
        self.rules = ReloadingRules(cfg, rules, cfg.enrichment.reload_seconds)
        self.dedup = Deduplicator(redis, keys, cfg.dedup.ttl_seconds)
        self.correlation = Correlation(cfg, redis, keys)
        self.maintenance = Windows(cfg, redis, keys)
        self.verdicts = Verdicts()
        self.batch_max = cfg.workers.batch_max
        self.max_record_bytes = max_record_bytes
        self.notify = bool(cfg.notify.url)
        gc.set_threshold(*GC_THRESHOLDS)  # the process runs batches from now on: see above
        self.raw_sampler = RawSampler(cfg.store.raw_sample) if cfg.store.raw_sample else None
        self._enrich_errors = 0
        self._enrich_logged = 0.0

    def process(self, raw: bytes, ahead: bool = False,
                meanwhile: Callable[[], None] | None = None) -> Outcome:
        """Run one raw batch through every stage. Raises only Redis errors (the batch stays
        in flight and the caller retries); bad input becomes dead letters: a bad event alone,
        before any dedup decision; an alert that cannot be stored (too big for a record even by
        itself) alone, after it.

        With `ahead`, a batch whose correlation call is still running in Redis comes back
        unfinished (`Outcome.unfinished`): the worker prepares its next batch meanwhile, and
        `finish` then reads the call's reply and fills in the records, counts and
        notifications. Nothing else of the outcome may be used before that.

        `meanwhile` (the worker finishing the batch before this one) runs once, while this
        batch's first dedup call runs in Redis, or before the batch ends if it makes none. What
        it raises comes out as the __cause__ of a MeanwhileFailed, which is not an Exception:
        it is not this batch's fault."""
        step = _Meanwhile(meanwhile)
        out = self._guarded(raw, lambda: self._process(raw, step))
        step()
        return out if ahead else self.finish(out)

    def finish(self, out: Outcome) -> Outcome:
        """The outcome of an unfinished batch (see process), or `out` itself if it is finished.
        Raises only Redis errors."""
        step, out.unfinished = out.unfinished, None
        return out if step is None else step()

    def _guarded(self, raw: bytes, step: Callable[[], Outcome]) -> Outcome:
        try:
            return step()
        except RedisError:
            raise
        except Exception as exc:  # no input may crash-loop a worker: the batch becomes a letter
            log.exception("batch dead-lettered by an unexpected error")
            return self.dead_batch(raw, f"{type(exc).__name__}: {exc}", "pipeline")

    def _process(self, raw: bytes, meanwhile: _Meanwhile) -> Outcome:
        out = Outcome()
        try:
            batch = decode_batch(raw)
        except BadBatch as exc:
            return self.dead_batch(raw, str(exc), "decode")
        out.provider, out.tenant = batch.provider, batch.tenant
        if batch.control is not None and RELEASE in batch.control:
            return self.release(batch, raw, out, meanwhile)
        if batch.control is not None:
            incidents = self.correlation.control(batch)
            out.records.append(pack_record(batch.sent_at, 0, self.encoder.encode(
                batch.tenant, batch.sent_at, [], incidents)))
            self.collect_notifications(out, [], incidents)
            out.memo_ids.append(batch.id)
            return out
        if normalizer_for(batch.provider) is None:
            return self.dead_batch(raw, f"provider {batch.provider!r} is not supported by this "
                                   f"farm version", "normalize")
        try:
            now = iso_ms(batch.sent_at)
        except (OverflowError, OSError, ValueError):
            return self.dead_batch(raw, f"'sent_at' {batch.sent_at!r} is not a time farm can "
                                   f"store", "decode")
        rules = self.rules.current().for_batch(batch.tenant, batch.provider,
                                               batch.provider_id)
        alerts, digests, bad_events, empty_events = self.canonical(batch, rules, now, out)
        received = len(alerts)
        alerts, digests, memo_id = self.maintain(batch, rules, alerts, digests, out)

        decided, chunks = self.decide_chunks(batch, rules, now, alerts, digests, memo_id, out,
                                             meanwhile)
        if alerts:
            out.memo_ids.append(memo_id)
        out.decisions = decided

        def finish() -> Outcome:
            lost = self.encode_chunks(batch, chunks, out)
            # The account's unit (docs/architecture.md, "Correctness"): each alert an event
            # yields, or the event itself when it yields none, so every event counts once.
            out.counts = {
                "alerts_received": received + bad_events + empty_events,
                "alerts_indexed": (decided[NEW] + decided[PARTIAL] - lost[NEW] - lost[PARTIAL]),
                "alerts_duplicate": decided[FULL] - lost[FULL],
                "alerts_dead": bad_events + sum(lost.values()),
                "alerts_maintenance": received - len(alerts),
                "events_empty": empty_events,
                "batches_received": 1,
            }
            return out

        return self._when_correlated(raw, chunks, out, finish)

    def release(self, batch: Batch, raw: bytes, out: Outcome, meanwhile: _Meanwhile) -> Outcome:
        """A release batch (farm/maintenance/release.py): each held version it carries is stored
        again with its own status, unless its fingerprint was stored again since it was read.
        Not counted as received (the alert was, when it came), nor enriched again."""
        alerts, expect, ignored = release_alerts(batch.events, batch.control[RELEASE])
        if ignored:
            log.warning("release batch %s: %d events are not held stored versions; left alone",
                        batch.id, ignored)
        now = iso_ms(batch.sent_at)
        processed = iso_ms(time.time())
        rules = self.rules.current().for_batch(batch.tenant, batch.provider,
                                               batch.provider_id)
        for position, alert in enumerate(alerts):
            alert.update(eventId=f"{batch.id}:{position}", tenant=batch.tenant,
                         batchId=batch.id, receivedAt=now, processedAt=processed)
        digests = [rules.hasher.digest(alert) for alert in alerts]
        decided, chunks = self.decide_chunks(batch, rules, now, alerts, digests, batch.id, out,
                                             meanwhile, expect)
        out.memo_ids.append(batch.id)
        out.released = decided[NEW] + decided[PARTIAL]

        def finish() -> Outcome:
            lost = self.encode_chunks(batch, chunks, out)
            out.released -= lost[NEW] + lost[PARTIAL]
            return out

        return self._when_correlated(raw, chunks, out, finish)

    def _when_correlated(self, raw: bytes, chunks: list[tuple[list, Callable | None]],
                         out: Outcome, finish: Callable[[], Outcome]) -> Outcome:
        """`finish()` now, or, while a chunk's correlation call runs, left to Pipeline.finish."""
        if any(correlated for _, correlated in chunks):
            out.unfinished = lambda: self._guarded(raw, finish)
            return out
        return finish()

    def decide_chunks(self, batch: Batch, rules: BatchRules, now: str, alerts: list[dict],
                      digests: list[bytes], memo_id: str, out: Outcome,
                      meanwhile: _Meanwhile, expect: list[str] | None = None
                      ) -> tuple[dict[str, int], list[tuple[list, Callable | None]]]:
        """Dedup, enrich and correlate the alerts, `[workers] batch_max` at a time, their
        decisions memoised under `memo_id`. Returns the decisions per letter and each chunk's
        (alert, decision) pairs with the function that reads its correlation call's outcome
        (None: no call), for `encode`. The next chunk's dedup call goes while the one before
        correlates, and `meanwhile` runs while the first dedup call does. With `expect` (a
        release: Deduplicator.send) nothing is enriched and the SKIPPED alerts are left out of
        the pairs."""
        decided = dict.fromkeys(DECISION_NAMES, 0)
        if expect is not None:
            decided[SKIPPED] = 0
        chunks = []
        for start in range(0, max(len(alerts), 1), self.batch_max):
            chunk = alerts[start:start + self.batch_max]
            read_decisions = self.dedup.send(
                memo_id, start, batch.tenant, chunk, digests[start:start + self.batch_max],
                None if expect is None else expect[start:start + self.batch_max])
            meanwhile()  # the first chunk's call runs; later chunks find it done
            decisions = read_decisions()
            for letter in decisions:
                decided[letter] += 1
            items = list(zip(chunk, decisions, strict=True))
            if expect is not None:
                items = [(alert, letter) for alert, letter in items if letter != SKIPPED]
            elif rules.enriches:
                for alert, decision in items:
                    if decision != FULL:  # Keep runs no rule on a full duplicate
                        self.enrich(alert, rules, now)
            chunks.append((items, self.correlate(batch, memo_id, start, items, out)))
        return decided, chunks

    def canonical(self, batch: Batch, rules: BatchRules, now: str, out: Outcome
                  ) -> tuple[list[dict], list[bytes], int, int]:
        """Every event's alerts with their content digests, the number of bad events and the
        number of empty ones. An event whose alerts cannot be normalized, digested or encoded
        (a map key that is not a string, nesting beyond 254 levels) is dead-lettered alone,
        before any decision; an event its provider reads as holding no alert (an Alertmanager
        webhook with an empty `alerts`) is empty."""
        digest = rules.hasher.digest
        processed = iso_ms(time.time())
        alerts: list[dict] = []
        digests: list[bytes] = []
        bad_events = empty_events = 0
        kept = self.raw_sampler.positions(batch.id, len(batch.events)) if self.raw_sampler \
            else ()
        for position, event in enumerate(batch.events):
            try:
                produced = canonical_alerts(event, batch.provider, now, rules, batch.provider_id,
                                            batch.fingerprint)
                produced_digests = [digest(alert) for alert in produced]
            except Exception as exc:  # a provider's bad event must not stop its batch
                bad_events += 1
                out.dead_letters.append(dead_letter(
                    f"{type(exc).__name__}: {exc}", "normalize", event, batch.id, batch.tenant,
                    batch.provider))
                continue
            if not produced:
                empty_events += 1
                continue
            for alert in produced:
                alert["eventId"] = f"{batch.id}:{len(alerts)}"
                alert["tenant"] = batch.tenant
                alert["batchId"] = batch.id
                alert["receivedAt"] = now
                alert["processedAt"] = processed
                alerts.append(alert)
            digests += produced_digests
            if position in kept:
                out.raw.append(raw_event(batch, position, event, produced, now))
        return alerts, digests, bad_events, empty_events

    def maintain(self, batch: Batch, rules: BatchRules, alerts: list[dict],
                 digests: list[bytes], out: Outcome) -> tuple[list[dict], list[bytes], str]:
        """The maintenance step (farm/maintenance/): the windows active at the batch's sent_at
        drop or suppress the alerts they take, before any dedup decision. Returns the alerts
        left, their digests, and the id their decisions are memoised under: the batch's own,
        or, when windows took alerts, one that also names what they did, so a redelivery whose
        windows did something else (the file or Redis changed meanwhile) decides afresh rather
        than replaying decisions made for other positions."""
        windows = self.maintenance.active_at(batch.sent_at) if alerts else ()
        if not windows:
            return alerts, digests, batch.id
        screened = screen(windows, alerts, digests, rules.hasher, self.verdicts)
        if not screened.effects:
            return alerts, digests, batch.id
        out.maintenance = screened.effects
        return screened.alerts, screened.digests, f"{batch.id}~{screened.signature}"

    def correlate(self, batch: Batch, memo_id: str, start: int, items: list[tuple[dict, str]],
                  out: Outcome) -> Callable[[], Correlated] | None:
        """The correlation step (farm/correlation/stage.py): sends the decision on the incidents
        of one chunk, and returns the function that reads it (None: nothing to decide)."""
        if not self.correlation.enabled or not items:
            return None
        return self.correlation.run(batch, start, items, out.correlation, memo_id)

    def encode_chunks(self, batch: Batch, chunks: list[tuple[list, Callable | None]],
                      out: Outcome) -> dict[str, int]:
        """Append the records of every chunk (decide_chunks' pairs, with the incidents their
        correlation calls decided) and of the kept raw events; returns the alerts lost by
        decision letter (`encode`)."""
        lost = dict.fromkeys(DECISION_NAMES, 0)
        for items, correlated in chunks:
            self.encode(batch, items, out, lost, correlated() if correlated else None)
        if out.raw:
            self.encode_raw(batch, out)
        if not out.records:  # every item was dead-lettered; the worker needs one to ack
            self.encode(batch, [], out, lost)
        return lost

    def encode(self, batch: Batch, items: list[tuple[dict, str]], out: Outcome,
               lost: dict[str, int], incidents: Correlated | None = None) -> None:
        """Append the records of one chunk's decided alerts to `out`. A record over
        max_record_bytes is split in halves, re-encoded (the store's writes are the same however
        a batch is cut, as with batch_max chunks); an alert that cannot be encoded or fit by
        itself is dead-lettered alone (counted in `lost`) and its digest forgotten."""
        try:
            body = self.encoder.encode(batch.tenant, batch.sent_at, items, incidents)
        except Exception as exc:  # the digest checked what the encoders reject: a safety net
            if not items:
                raise  # nothing to split off: process() reports it
            problem = f"{type(exc).__name__}: {exc}"
        else:
            record = pack_record(batch.sent_at, len(items), body)
            limit = self.max_record_bytes
            if not items or limit is None or len(record) <= limit:
                out.records.append(record)
                self.collect_notifications(out, items, incidents)
                return
            problem = (f"{len(record)} bytes encoded, more than a ring record holds ({limit}); "
                       f"raise [workers] ring_mb")
        if len(items) > 1:
            half = len(items) // 2
            self.encode(batch, items[:half], out, lost, incidents)
            self.encode(batch, items[half:], out, lost)
            return
        [(alert, decision)] = items
        self.dedup.forget(batch.tenant, alert)
        out.dead_letters.append(dead_letter(problem, "store", alert, batch.id, batch.tenant,
                                            batch.provider))
        lost[decision] += 1

    def encode_raw(self, batch: Batch, out: Outcome) -> None:
        """One record of the batch's kept raw events, when it fits a ring record (a sample
        may lose an event; an alert may not)."""
        events = [e for e in out.raw if e is not None]
        record = pack_record(batch.sent_at, 0, self.encoder.encode_raw(events))
        if self.max_record_bytes is None or len(record) <= self.max_record_bytes:
            out.records.append(record)
        else:
            log.warning("batch %s: %d kept raw events (%d bytes) do not fit a ring record; "
                        "not kept", batch.id, len(events), len(record))

    def collect_notifications(self, out: Outcome, items: list[tuple[dict, str]],
                              incidents: Correlated | None) -> None:
        """What a record that is sure to be stored notifies ([notify] url): each stored alert
        version, and each incident snapshot it carries. The worker pushes them in the ack."""
        if not self.notify:
            return
        out.notifications += [alert_entry(alert, decision)
                              for alert, decision in items if decision != FULL]
        if incidents:
            out.notifications += [incident_entry(snapshot) for snapshot in incidents.snapshots]

    def enrich(self, alert: dict, rules: BatchRules, now: str) -> None:
        """`run_enrichment`, where a failing rule is logged (at most once a minute) and the
        alert goes on with what the rules before it set, as in Keep."""
        try:
            run_enrichment(alert, rules, now)
        except Exception:  # a rule must never cost an alert
            self._enrich_errors += 1
            if time.monotonic() - self._enrich_logged >= ENRICH_ERROR_LOG_SECONDS:
                self._enrich_logged = time.monotonic()
                log.exception("enrichment failed for alert %s (%d failures so far); the alert "
                              "is stored as enriched so far", alert.get("eventId"),
                              self._enrich_errors)

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
        # unknown. A batch whose envelope cannot be read has no events to count.
        out.counts = {"batches_received": 1, "batches_dead": 1, "alerts_received": events,
                      "alerts_dead": events}
        return out
