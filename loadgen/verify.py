"""`--verify`: after a run, wait for the farm to drain, then account for every alert sent.

Expectations come from the generator's own send log, never from farm's code. Every alert sent
belongs to one *version* of one fingerprint (loadgen/stream.py); the copies of a version are
consecutive in the stream and no version repeats earlier content. Under Keep's rules exactly
one copy of each version is stored and the others are full duplicates; which copy is stored is
not fixed (two workers may decide neighbouring batches in either order), so the verifier checks:

- every version with a copy that was not dead-lettered has at least one copy in the store;
  a version with none is *missing* (loss), reported with the eventIds of its copies;
- a version stored more than once is *surplus* (the farm decided an old copy after a newer
  version; not a loss), reported with the stored eventIds;
- a stored eventId the run never produced is *unexpected* (a farm bug);
- dead-lettered alerts (whole batches, single events, or store rejections) are counted apart,
  with their reasons;
- the farm's own counters add up: over the run, alerts_received grew by what the run sent
  (Redis target; a dead-lettered event counts as one, and so does an event that yields no
  alert, as the farm counts them), and indexed + duplicate + dead + maintenance + empty +
  expired grew as much as received. A farm bug that drops a copy nobody stores (a repeat)
  leaves no row to miss, only this gap;
- maintenance windows drop alerts on purpose, and which ones only the farm knows (their
  conditions are the farm's, not the generator's): versions with no stored copy are put down to
  the windows when the farm's alerts_maintenance grew by at least their copies, and are loss
  otherwise;
- over HTTP, a request sent without an answer (timeout, lost connection) has an unknown
  outcome: its alerts are counted apart, and a version whose stored copy may be in it is not
  called missing.

Memory: the send logs (loadgen/record.py), one state per fingerprint in flight and one byte per
alert for the stored/dead flags; the store is streamed.
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field

import msgpack

from farm.redis_keys import SETTLED, Keys
from loadgen.envelope import batch_id as make_batch_id
from loadgen.fingerprints import fingerprints_of, keep_fingerprint_of_doc
from loadgen.http_producer import REFUSED, UNKNOWN
from loadgen.incidents import IncidentCheck, StormLedger, StormRule, check_incidents
from loadgen.population import INDEX_SHIFT, MEMBER_SHIFT, STORM_INDEX
from loadgen.record import SendLog
from loadgen.stores import StoreReader
from loadgen.stream import event_digest

VERSION_MASK = (1 << MEMBER_SHIFT) - 1
IDS_PER_VERSION = 20       # eventIds kept per version for the report
LISTED = 1000              # most versions listed per kind in the report
DLQ_CHUNK = 200
NOT_A_BATCH = ("", REFUSED, UNKNOWN)   # HTTP send log: a request no batch is known to hold


class VerifyError(Exception):
    """Verification could not be done; str() is one line."""


@dataclass
class Verdict:
    sent: int = 0                   # alerts that reached the farm (pushed, or answered 202)
    refused: int = 0                # alerts the gateway refused for good (HTTP)
    dead: int = 0                   # alerts dead-lettered
    dead_reasons: Counter = field(default_factory=Counter)
    expected_new: int = 0           # versions of fingerprints first seen in this run
    expected_partial: int = 0       # later versions of them
    expected_duplicates: int = 0    # the other copies: full duplicates
    stored: int = 0                 # history rows of this run found in the store
    missing: list = field(default_factory=list)       # per lost version: eventIds of copies
    missing_versions: int = 0
    surplus: list = field(default_factory=list)       # per version stored twice: eventIds
    surplus_rows: int = 0
    unexpected: list = field(default_factory=list)    # stored eventIds never produced
    unverifiable: int = 0           # HTTP: accepted without a batch id in the answer
    unknown: int = 0                # HTTP: alerts of requests sent without an answer
    unchecked_versions: int = 0     # HTTP: no stored copy seen, but one may be in those
    farm_received: int | None = None    # Redis: what the farm's alerts_received should grow by
    maintenance: int = 0            # the farm's alerts_maintenance growth: dropped by windows
    missing_copies: int = 0         # copies of the missing versions that reached the farm
    books: list = field(default_factory=list)   # the farm's counters that do not add up
    latencies: array = field(default_factory=lambda: array("d"))
    latency_sent_at: array = field(default_factory=lambda: array("d"))  # each one's send time
    incidents: IncidentCheck | None = None      # --profile incident-storm

    @property
    def expected_stored(self) -> int:
        return self.expected_new + self.expected_partial

    @property
    def dropped_by_windows(self) -> bool:
        """Every missing version may have been dropped by a maintenance window: the farm
        counted at least as many window drops as those versions had copies."""
        return self.missing_versions > 0 and self.missing_copies <= self.maintenance

    @property
    def loss(self) -> bool:
        unexplained = self.missing_versions > 0 and not self.dropped_by_windows
        return unexplained or self.unverifiable > 0 or bool(self.books)

    @property
    def ok(self) -> bool:
        """Every alert stored or dropped as a duplicate as predicted (surplus copies allowed),
        none dead-lettered, refused or of unknown outcome, the farm's counters add up, and
        under --profile incident-storm the incidents are the predicted ones."""
        return not (self.loss or self.unexpected or self.dead or self.refused or self.unknown
                    or (self.incidents is not None and not self.incidents.ok))


# -- waiting for the farm -------------------------------------------------------------------

def wait_for_drain(fetch, before: dict, batches: int | None, timeout: float, stall: float,
                   on_progress=None) -> dict:
    """Poll the farm's /status (`fetch()` returns it, or None) until its queues and inflight
    lists are empty and, if `batches` is given, its batches_received counter has grown by at
    least that much. Returns the last status. Raises VerifyError when no farm answers, or when
    nothing moved for `stall` seconds, or after `timeout` seconds."""
    started = time.monotonic()
    best = None
    best_at = started
    while True:
        doc = fetch()
        if doc is None:
            raise VerifyError("the farm stopped answering while draining")
        if "error" in doc and "counters" not in doc:
            raise VerifyError(f"the farm cannot read its Redis: {doc['error']}")
        queued = doc["queues"]["critical"] + doc["queues"]["normal"] + doc["inflight"]
        received = doc["counters"]["batches_received"] - before["batches_received"]
        short = max(0, batches - received) if batches is not None else 0
        left = max(queued, short)
        if on_progress is not None:
            on_progress(left, received)
        now = time.monotonic()
        if left == 0:
            return doc
        if best is None or left < best:
            best, best_at = left, now
        if now - best_at > stall:
            raise VerifyError(f"the farm stopped draining: {queued} batches queued or in flight "
                              f"and {short} of this run's batches not yet counted, unchanged "
                              f"for {stall:.0f}s (is every worker alive? `farm status`)")
        if now - started > timeout:
            raise VerifyError(f"the farm did not drain within {timeout:.0f}s ({left} batches "
                              f"left); raise --drain-timeout")
        time.sleep(0.25)


def counter_deltas(before: dict, after: dict) -> dict[str, int]:
    return {name: after["counters"][name] - before["counters"][name]
            for name in after["counters"]}


# -- dead letters ---------------------------------------------------------------------------

@dataclass
class DeadLetter:
    batch: str
    stage: str
    reason: str
    payload: object
    provider: str | None = None


def read_dead_letters(redis, keys: Keys, since: float, belongs) -> list[DeadLetter]:
    """This run's dead letters (`belongs(batch_id)`), newest first, from every shard's list.
    Each list is scanned from its newest end and the scan stops at the first letter older than
    `since` (letters are pushed in time order), so older runs' letters cost nothing."""
    out = []
    for shard in keys.all_shards():
        out += _shard_letters(redis, keys.dead_letters(shard), since, belongs)
    return out


def _shard_letters(redis, key: str, since: float, belongs) -> list[DeadLetter]:
    out = []
    start = 0
    while True:
        chunk = redis.lrange(key, start, start + DLQ_CHUNK - 1)
        if not chunk:
            return out
        for raw in chunk:
            try:
                letter = msgpack.unpackb(raw, raw=False, strict_map_key=False)
            except Exception:  # an unreadable letter belongs to nobody we can name
                continue
            if not isinstance(letter, dict):
                continue
            if isinstance(letter.get("at"), (int, float)) and letter["at"] < since:
                return out
            batch = letter.get("batch")
            if isinstance(batch, str) and belongs(batch):
                out.append(DeadLetter(batch, str(letter.get("stage")), str(letter.get("reason")),
                                      letter.get("payload"), letter.get("provider")))
        start += DLQ_CHUNK


# -- matching -------------------------------------------------------------------------------

class Tally:
    """Per version of each fingerprint: copies, dead copies, stored copies. With
    `sequential`, a version is settled as soon as the next version of its fingerprint shows
    up (copies of a version are consecutive in a producer's push order), bounding memory by
    the population; otherwise everything is settled at the end."""

    def __init__(self, verdict: Verdict, sequential: bool):
        self.verdict = verdict
        self.sequential = sequential
        self.open: dict = {}
        self.seen: set = set()

    def add(self, producer: int, key: int, state: int, ident) -> None:
        """state: 0 sent and not stored, 1 stored, 2 dead-lettered, 3 sent without an answer
        (HTTP: it may be stored, in a batch nobody named)."""
        index = key >> INDEX_SHIFT
        member = (key >> MEMBER_SHIFT) & 7
        version = key & VERSION_MASK
        alert = (-1 if index == STORM_INDEX else producer, index, member)
        slot = (alert, version) if not self.sequential else alert
        entry = self.open.get(slot)
        if entry is None or entry[0] != version:
            if entry is not None:
                self._settle(entry)
            first = alert not in self.seen
            self.seen.add(alert)
            entry = self.open[slot] = [version, 0, 0, 0, [], [], first, 0]
        entry[1] += 1
        if state == 2:
            entry[2] += 1
        elif state == 3:
            entry[7] += 1
        elif state == 1:
            entry[3] += 1
            if len(entry[5]) < IDS_PER_VERSION:
                entry[5].append(ident)
        if state in (0, 1) and len(entry[4]) < IDS_PER_VERSION:
            entry[4].append(ident)

    def finish(self) -> None:
        for entry in self.open.values():
            self._settle(entry)
        self.open.clear()

    def _settle(self, entry) -> None:
        _version, copies, dead, stored, ids, stored_ids, first, unknown = entry
        alive = copies - dead - unknown   # copies known to have reached the farm
        if not alive:
            return
        v = self.verdict
        if first:
            v.expected_new += 1
        else:
            v.expected_partial += 1
        v.expected_duplicates += alive - 1
        if stored == 0 and unknown:
            v.unchecked_versions += 1   # its stored copy may be the unanswered one
        elif stored == 0:
            v.missing_versions += 1
            v.missing_copies += alive
            if len(v.missing) < LISTED:
                v.missing.append(ids)
        elif stored > 1:
            v.surplus_rows += stored - 1
            if len(v.surplus) < LISTED:
                v.surplus.append(stored_ids)


class RunIndex:
    """Where each batch's events and alerts start in one producer's log."""

    def __init__(self, log: SendLog):
        self.log = log
        self.event_start = array("Q", [0])
        self.alert_start = array("Q", [0])
        alerts_of_event = log.event_alerts
        e = a = 0
        for n_events in log.events:
            a += sum(alerts_of_event[e:e + n_events])
            e += n_events
            self.event_start.append(e)
            self.alert_start.append(a)

    def event_id(self, ordinal: int) -> str:
        batch = bisect_right(self.alert_start, ordinal) - 1
        return (f"{make_batch_id(self.log.run_id, self.log.producer, batch)}:"
                f"{ordinal - self.alert_start[batch]}")


def match_batches(logs: list[SendLog], letters: list[DeadLetter], rows, run_id: str) -> Verdict:
    """Verdict for the Redis target: eventIds are known exactly (batch ids derive from the
    run, the producer and its batch number; n counts the alerts the batch yields)."""
    return _BatchLedger(logs, run_id).match(letters, rows)


class _BatchLedger:
    """The Redis target's account of a run: one flag per alert sent (0 sent, 1 stored, 2
    dead-lettered), set from the dead letters and then the stored rows, and how far the farm's
    alerts_received count differs from the alerts sent."""

    def __init__(self, logs: list[SendLog], run_id: str):
        self.logs = logs
        self.run_id = run_id
        self.verdict = Verdict()
        self.indexes = {log.producer: RunIndex(log) for log in logs}
        self.flags = {log.producer: bytearray(len(log.keys)) for log in logs}
        # Per-event dead letters remove events from a batch: its later alerts are renumbered.
        self.renumbered: dict[tuple[int, int], list[int]] = {}
        self.dead_events: set[tuple[int, int]] = set()     # (producer, event)
        self.dead_batches: set[tuple[int, int]] = set()    # (producer, batch)
        # The farm counts each event as the alerts it yields, or as one if it yields none
        # (empty), and a dead-lettered event as one whatever it would yield.
        self.received_shift = sum(log.event_alerts.count(0) for log in logs)
        self.matched_all = True

    def match(self, letters: list[DeadLetter], rows) -> Verdict:
        """Apply the dead letters, then the stored rows; the settled verdict."""
        # A store letter names its alert by the eventId the farm gave it, after the batch's dead
    # events were taken out, so every other letter must be applied first. The list's order is
    # no help: a batch's rejections are pushed before its normalize letters (the indexer's,
    # ahead of the worker's ack) or after them (the worker's own, in the same ack).
        for letter in sorted(letters, key=lambda letter: letter.stage == "store"):
            self.mark_dead(letter)
        for row in rows:
            self.mark_stored(row)
        return self.settle()

    def storm_ledger(self) -> StormLedger:
        """What the incident check needs: the logs, the flags, eventId -> version key."""
        def key_of(event_id: str) -> int | None:
            where = _ordinal(event_id, self.run_id, self.indexes, self.renumbered)
            return None if where is None else self.indexes[where[0]].log.keys[where[1]]
        return StormLedger(self.logs, self.flags, key_of)

    def mark_dead(self, letter: DeadLetter) -> None:
        """Flag the alerts one of this run's dead letters stands for."""
        if letter.stage == "store-current":
            return  # the current-state view refused it; the history row is there
        where = _parse_batch(letter.batch, self.run_id)
        if where is None or where[0] not in self.indexes:
            return
        producer, batch = where
        if batch >= self.indexes[producer].log.batches:
            return
        if isinstance(letter.payload, (bytes, bytearray)):
            dead = self._dead_batch(producer, batch)
        elif letter.stage == "store" and isinstance(letter.payload, dict):
            ordinal = _ordinal(letter.payload.get("eventId"), self.run_id, self.indexes,
                               self.renumbered)
            dead = [] if ordinal is None else [ordinal[1]]
        else:
            dead = self._dead_event(producer, batch, letter.payload)
            if dead is None:
                self.verdict.dead_reasons[f"(unmatched) {letter.reason}"] += 1
                self.matched_all = False
                return
        flags = self.flags[producer]
        for ordinal in dead:
            if flags[ordinal] != 2:
                flags[ordinal] = 2
                self.verdict.dead += 1
                self.verdict.dead_reasons[letter.reason] += 1

    def _dead_batch(self, producer: int, batch: int) -> range:
        """A whole batch dead-lettered (the letter holds its raw bytes): all its alerts."""
        index = self.indexes[producer]
        first_event, last_event = index.event_start[batch], index.event_start[batch + 1]
        if (producer, batch) not in self.dead_batches:
            self.dead_batches.add((producer, batch))
            counts = index.log.event_alerts
            self.received_shift += (last_event - first_event) - sum(
                max(1, n) for n in counts[first_event:last_event])
        return range(index.alert_start[batch], index.alert_start[batch + 1])

    def _dead_event(self, producer: int, batch: int, payload) -> range | None:
        """One event of a batch dead-lettered: its alerts, or None when no event of the batch
        that is not dead yet has this payload."""
        index = self.indexes[producer]
        first_event, last_event = index.event_start[batch], index.event_start[batch + 1]
        first_alert = index.alert_start[batch]
        counts = index.log.event_alerts
        # Identical events of one batch (a repeat) each get their own letter: match each
        # letter to an event not yet dead.
        digest = event_digest(msgpack.packb(payload))
        event = next((e for e in range(first_event, last_event)
                      if index.log.digests[e] == digest
                      and (producer, e) not in self.dead_events), None)
        if event is None:
            return None
        self.dead_events.add((producer, event))
        self.received_shift += 1 - max(1, counts[event])
        start = first_alert + sum(counts[first_event:event])
        dead = range(start, start + counts[event])
        alive = self.renumbered.get((producer, batch))
        if alive is None:
            alive = list(range(first_alert, index.alert_start[batch + 1]))
        self.renumbered[(producer, batch)] = [o for o in alive if o not in dead]
        return dead

    def mark_stored(self, row) -> None:
        """Flag the alert a stored row holds (unless dead-lettered), and take its latency."""
        where = _ordinal(row.event_id, self.run_id, self.indexes, self.renumbered)
        if where is None:
            self.verdict.unexpected.append(row.event_id)
            return
        producer, ordinal = where
        self.verdict.stored += 1
        if self.flags[producer][ordinal] == 0:
            self.flags[producer][ordinal] = 1
        if row.committed_at is not None:
            index = self.indexes[producer]
            batch = bisect_right(index.alert_start, ordinal) - 1
            sent_at = index.log.sent_at[batch]
            self.verdict.latencies.append(row.committed_at - sent_at)
            self.verdict.latency_sent_at.append(sent_at)

    def settle(self) -> Verdict:
        """Tally every alert sent by its flag, version by version; the finished verdict."""
        verdict = self.verdict
        tally = Tally(verdict, sequential=True)
        for log in self.logs:
            index, flag = self.indexes[log.producer], self.flags[log.producer]
            verdict.sent += len(log.keys)
            for ordinal, key in enumerate(log.keys):
                tally.add(log.producer, key, flag[ordinal], _LazyId(index, ordinal))
        tally.finish()
        if self.matched_all:
            verdict.farm_received = verdict.sent + self.received_shift
        verdict.missing = [[str(i) for i in ids] for ids in verdict.missing]
        verdict.surplus = [[str(i) for i in ids] for ids in verdict.surplus]
        return verdict


class _LazyId:
    """An eventId computed only if it is reported."""

    __slots__ = ("index", "ordinal")

    def __init__(self, index: RunIndex, ordinal: int):
        self.index = index
        self.ordinal = ordinal

    def __str__(self) -> str:
        return self.index.event_id(self.ordinal)


def _parse_batch(batch: str, run_id: str) -> tuple[int, int] | None:
    if len(batch) != 32 or not batch.startswith(run_id):
        return None
    try:
        return int(batch[16:20], 16), int(batch[20:], 16)
    except ValueError:
        return None


def _ordinal(event_id, run_id: str, indexes: dict, renumbered: dict) -> tuple[int, int] | None:
    """(producer, alert ordinal) of one of this run's eventIds, or None if the run never
    produced it."""
    if not isinstance(event_id, str):
        return None
    batch_text, _, n_text = event_id.partition(":")
    where = _parse_batch(batch_text, run_id)
    if where is None or not n_text.isdigit():
        return None
    producer, batch = where
    index = indexes.get(producer)
    if index is None or batch >= index.log.batches:
        return None
    n = int(n_text)
    alive = renumbered.get((producer, batch))
    if alive is not None:
        return (producer, alive[n]) if n < len(alive) else None
    ordinal = index.alert_start[batch] + n
    return (producer, ordinal) if ordinal < index.alert_start[batch + 1] else None


def match_requests(logs: list[SendLog], letters: list[DeadLetter], rows) -> Verdict:
    """Verdict for the HTTP target. The gateway puts several requests in one batch and does
    not say where, so alerts are matched by (batch, Keep's fingerprint recomputed from the
    stored document): within one batch, all copies of a fingerprint are one version (a version
    change waits for the stream's guard)."""
    verdict = Verdict()
    dead_batches, dead_pairs = _dead_in_requests(letters, verdict)
    stored = _stored_pairs(rows, logs, verdict)
    tally = Tally(verdict, sequential=False)
    expected_pairs: set[tuple[str, str]] = set()
    for log in logs:
        expected_pairs |= _tally_requests(log, verdict, tally, stored, dead_batches, dead_pairs)
    tally.finish()
    verdict.unexpected = [f"{b}:? (fingerprint {fp})" for (b, fp), n in stored.items()
                          if n > 0 and (b, fp) not in expected_pairs]
    verdict.surplus_rows += sum(n for pair, n in stored.items() if n > 0
                                and pair in expected_pairs)
    return verdict


def _dead_in_requests(letters: list[DeadLetter], verdict: Verdict
                      ) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """The HTTP target's dead letters: {batch: reason} for whole batches, {(batch, Keep's
    fingerprint): reason} for single alerts. A letter no fingerprint can be read from is
    counted in the verdict as unmatched."""
    dead_batches: dict[str, str] = {}
    dead_pairs: dict[tuple[str, str], str] = {}
    for letter in letters:
        if letter.stage == "store-current":
            continue
        if isinstance(letter.payload, (bytes, bytearray)):
            dead_batches[letter.batch] = letter.reason
        elif letter.stage == "store" and isinstance(letter.payload, dict):
            dead_pairs[(letter.batch, str(letter.payload.get("fingerprint")))] = letter.reason
        else:
            try:
                for fp in fingerprints_of(letter.provider, letter.payload):
                    dead_pairs[(letter.batch, fp)] = letter.reason
            except (KeyError, TypeError, AttributeError):
                verdict.dead_reasons[f"(unmatched) {letter.reason}"] += 1
    return dead_batches, dead_pairs


def _stored_pairs(rows, logs: list[SendLog], verdict: Verdict) -> Counter:
    """Stored rows counted by (batch, Keep's fingerprint); counts them and their latency (from
    the last request the batch holds) into the verdict."""
    stored: Counter = Counter()
    sent_at: dict[str, float] = {}
    for log in logs:
        for batch, at in zip(log.batch_ids or (), log.sent_at, strict=False):
            sent_at[batch] = max(sent_at.get(batch, 0.0), at)
    for row in rows:
        fingerprint = keep_fingerprint_of_doc(row.doc) if row.doc else row.fingerprint
        stored[(row.event_id.partition(":")[0], fingerprint)] += 1
        verdict.stored += 1
        batch = row.event_id.partition(":")[0]
        if row.committed_at is not None and batch in sent_at:
            verdict.latencies.append(row.committed_at - sent_at[batch])
            verdict.latency_sent_at.append(sent_at[batch])
    return stored


def _tally_requests(log: SendLog, verdict: Verdict, tally: Tally, stored: Counter,
                    dead_batches: dict, dead_pairs: dict) -> set[tuple[str, str]]:
    """Tally one producer's alerts: refused, of unknown outcome, unverifiable, or sent and
    then dead-lettered, stored (taking one stored copy of its pair) or not. Returns the
    (batch, fingerprint) pairs it sent."""
    fps = log.fingerprints or {}
    sent_pairs = set()
    for batch, n_alerts, keys in _requests(log):
        if batch == REFUSED:
            verdict.refused += n_alerts
            continue
        if batch == UNKNOWN:
            verdict.unknown += n_alerts
            for key in keys:
                tally.add(log.producer, key, 3, "")
            continue
        if not batch:
            verdict.unverifiable += n_alerts
            continue
        verdict.sent += n_alerts
        for key in keys:
            fp = fps[key >> INDEX_SHIFT][(key >> MEMBER_SHIFT) & 7]
            pair = (batch, fp)
            sent_pairs.add(pair)
            reason = dead_batches.get(batch) or dead_pairs.get(pair)
            if reason is not None:
                state = 2
                verdict.dead += 1
                verdict.dead_reasons[reason] += 1
            elif stored[pair] > 0:
                state = 1
                stored[pair] -= 1
            else:
                state = 0
            tally.add(log.producer, key, state, f"{batch}:? (fingerprint {fp})")
    return sent_pairs


def _requests(log: SendLog):
    """(the batch the gateway named or REFUSED/UNKNOWN/"", alerts, their keys) per request."""
    k = e = 0
    for b, batch in enumerate(log.batch_ids or ()):
        n_alerts = sum(log.event_alerts[e:e + log.events[b]])
        e += log.events[b]
        yield batch, n_alerts, log.keys[k:k + n_alerts]
        k += n_alerts


def percentiles(values: array, points=(50, 95, 99)) -> dict[str, float | None]:
    """Nearest-rank percentiles in seconds (None when there are no values)."""
    if not values:
        return {f"p{p}": None for p in points}
    ordered = sorted(values)
    return {f"p{p}": ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]
            for p in points}


def history_rows(reader: StoreReader, run_id: str | None, logs: list[SendLog]):
    """The store rows of this run: by the run's eventId prefix (Redis target) or by the
    batches the gateway named (HTTP target)."""
    if run_id is not None:
        return reader.history(prefix=run_id)
    batches = {b for log in logs for b in (log.batch_ids or ()) if b not in NOT_A_BATCH}
    return reader.history(batch_ids=batches, docs=True)


def account(plan, outcome, fetch_status, before: dict, redis, reader: StoreReader,
            keys: Keys, drain_timeout: float, on_progress=None,
            storm_rule: StormRule | None = None) -> tuple[Verdict, dict, float]:
    """The whole of --verify after a run: wait for the drain, read this run's dead letters and
    stored rows, match them; under --profile incident-storm (with the farm's `storm_rule`)
    also its incidents. Returns (verdict, the farm's counter deltas, drain seconds).
    Raises VerifyError (and StoreError from the reader)."""
    by_redis = plan.target == "redis"
    started = time.monotonic()
    after = wait_for_drain(fetch_status, before["counters"],
                           int(outcome.batches) if by_redis else None, drain_timeout,
                           stall=60.0, on_progress=on_progress)
    drained = time.monotonic() - started
    if by_redis:
        belongs = _starts_with(plan.run_id)
    else:
        belongs = {b for log in outcome.logs for b in (log.batch_ids or ())
                   if b not in NOT_A_BATCH}.__contains__
    letters = read_dead_letters(redis, keys, outcome.start - 1, belongs)
    rows = history_rows(reader, plan.run_id if by_redis else None, outcome.logs)
    if by_redis:
        ledger = _BatchLedger(outcome.logs, plan.run_id)
        verdict = ledger.match(letters, rows)
    else:
        verdict = match_requests(outcome.logs, letters, rows)
    if plan.storm is not None and storm_rule is not None:
        if by_redis:
            verdict.incidents = check_incidents(ledger.storm_ledger(), plan.storm, plan.planned,
                                                storm_rule, reader, plan.producers[0].tenant)
        else:
            verdict.incidents = IncidentCheck(
                checked=False, note="over HTTP the gateway does not say which request a stored "
                                    "alert came from, so incidents are not checked")
    deltas = counter_deltas(before, after)
    check_counters(verdict, deltas)
    if verdict.incidents is not None and verdict.incidents.checked and verdict.maintenance:
        verdict.incidents.skip(f"maintenance windows dropped {verdict.maintenance:,} alerts "
                               f"during the run, so which storm alerts reached correlation "
                               f"cannot be predicted: incidents not checked")
    return verdict, deltas, drained


def check_counters(verdict: Verdict, deltas: dict[str, int]) -> None:
    """Hold the farm's own counters (their growth over the run) against the run; what does not
    add up goes to `verdict.books`, one line each, and counts as loss."""
    received = deltas.get("alerts_received", 0)
    if verdict.farm_received is not None and received != verdict.farm_received:
        verdict.books.append(
            f"alerts_received grew by {received:,}, but this run's batches hold "
            f"{verdict.farm_received:,} alerts (a dead-lettered or empty event counting as one)")
    verdict.maintenance = deltas.get("alerts_maintenance", 0)
    settled = sum(deltas.get(name, 0) for name in SETTLED)
    if settled < received:
        verdict.books.append(
            f"alerts_received grew by {received:,}, but indexed + duplicate + dead + "
            f"maintenance + empty + expired only by {settled:,}: {received - settled:,} alerts "
            f"neither stored, dropped as duplicates, dead-lettered, dropped by a maintenance "
            f"window, counted as empty events nor expired ([redis] max_batch_age)")


def _starts_with(prefix: str):
    def test(batch: str) -> bool:
        return batch.startswith(prefix)
    return test
