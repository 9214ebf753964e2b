"""The Elasticsearch/OpenSearch store over `_bulk`.

Workers encode each batch chunk as ready NDJSON: one `index` action per stored event into the
day's history index (`_id` = eventId, so a redelivery overwrites itself) and one scripted
`update` per fingerprint into the current-state index (see CURRENT_SCRIPT in engine.py). The
indexer only concatenates payloads into requests of about `[store] bulk_bytes` and keeps up to
`[store] in_flight` of them in flight. It retries whole requests on connection errors, 429 and
5xx, and single items on 429/5xx/version conflicts, with exponential backoff and jitter, for as
long as it takes; items the engine rejects for good (400s such as mapping conflicts) become dead
letters carrying the engine's reason, and the rest of the bulk commits.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import msgpack
import orjson

from farm.alert import SEVERITY_ORDER, json_default
from farm.config import Config
from farm.correlation.store import engine_actions
from farm.deadletters import dead_letter
from farm.dedup import FULL
from farm.sinks import raw as raw_events
from farm.sinks.current import coalesce
from farm.sinks.engine_client import (
    CURRENT_SCRIPT_ID,
    Engine,
    EngineError,
    current_index,
    delete_expired,
    history_index,
    setup,
)
from farm.units import parse_bytes

log = logging.getLogger("farm.indexer")

HISTORY, CURRENT, INCIDENT, RAW = 0, 1, 2, 3
NDJSON = {"content-type": "application/x-ndjson", "accept": "application/json"}
BULK_PATH = "/_bulk?filter_path=errors,items.*.status,items.*.error"
RETRY_ITEM = frozenset({409, 429, 500, 502, 503, 504})


class ElasticEncoder:
    """Worker side: a batch chunk's decided alerts -> (NDJSON, item end offsets, item kinds)."""

    def __init__(self, cfg: Config):
        self.prefix = cfg.store.index_prefix
        self.current = current_index(self.prefix)
        self._script = orjson.dumps(CURRENT_SCRIPT_ID)

    def encode(self, tenant: str, sent_at: float, items: list[tuple[dict, str]],
               incidents=None) -> bytes:
        index = history_index(self.prefix, sent_at) if items else ""
        parts: list[bytes] = []
        ends: list[int] = []
        kinds: list[int] = []
        size = 0
        sources: dict[int, bytes] = {}
        for alert, decision in items:
            if decision == FULL:
                continue
            alert["severityOrder"] = SEVERITY_ORDER.get(alert.get("severity"), 2)
            source = orjson.dumps(alert, default=json_default)
            sources[id(alert)] = source
            action = orjson.dumps({"index": {"_index": index, "_id": alert["eventId"]}})
            parts += (action, b"\n", source, b"\n")
            size += len(action) + len(source) + 2
            ends.append(size)
            kinds.append(HISTORY)
        versions, bumps = coalesce(items)
        head = b'{"scripted_upsert":true,"upsert":{},"script":{"id":' + self._script
        for alert, dups in versions:
            action = self._update_action(tenant, alert["fingerprint"])
            body = (head + b',"params":{"kind":"version","sentAt":' + orjson.dumps(sent_at)
                    + b',"dups":' + str(dups).encode() + b',"doc":' + sources[id(alert)]
                    + b"}}}")
            parts += (action, b"\n", body, b"\n")
            size += len(action) + len(body) + 2
            ends.append(size)
            kinds.append(CURRENT)
        for fingerprint, count, seen in bumps:
            action = self._update_action(tenant, fingerprint)
            params = orjson.dumps({"kind": "bump", "dups": count, "seen": seen,
                                   "tenant": tenant, "fingerprint": fingerprint})
            body = head + b',"params":' + params + b"}}"
            parts += (action, b"\n", body, b"\n")
            size += len(action) + len(body) + 2
            ends.append(size)
            kinds.append(CURRENT)
        for item in engine_actions(self.prefix, tenant, incidents):
            parts.append(item)
            size += len(item)
            ends.append(size)
            kinds.append(INCIDENT)
        return msgpack.packb((b"".join(parts), ends, kinds))

    def encode_raw(self, events: list[dict]) -> bytes:
        """A payload of nothing but kept raw events (farm/sinks/raw.py)."""
        items = raw_events.engine_items(self.prefix, events)
        ends, size = [], 0
        for item in items:
            size += len(item)
            ends.append(size)
        return msgpack.packb((b"".join(items), ends, [RAW] * len(items)))

    def _update_action(self, tenant: str, fingerprint: str) -> bytes:
        return orjson.dumps({"update": {"_index": self.current, "_id": f"{tenant}/{fingerprint}",
                                        "retry_on_conflict": 5}})


class Items:
    """NDJSON items of one bulk request, sliceable so failed items can be resent alone."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.spans: list[tuple[int, int, int, int]] = []  # (chunk, start, end, kind)
        self.size = 0

    def add(self, ndjson: bytes, ends: list[int], kinds: list[int]) -> None:
        chunk = len(self.chunks)
        self.chunks.append(ndjson)
        start = 0
        for end, kind in zip(ends, kinds, strict=True):
            self.spans.append((chunk, start, end, kind))
            start = end
        self.size += len(ndjson)

    def body(self) -> bytes:
        return b"".join(self.chunks)

    def item(self, span) -> bytes:
        chunk, start, end, _ = span
        return self.chunks[chunk][start:end]

    def subset(self, spans) -> Items:
        out = Items()
        for span in spans:
            data = self.item(span)
            out.chunks.append(data)
            out.spans.append((len(out.chunks) - 1, 0, len(data), span[3]))
            out.size += len(data)
        return out


class ElasticWriter:
    """Indexer side: bounded, retried `_bulk` requests. `submit` returns a Future of the dead
    letters [(msgpack letter, counts_as_alert)], resolved once every item is committed or
    rejected for good."""

    def __init__(self, cfg: Config, check: bool = False):
        self.store = cfg.store
        self.engine = Engine(cfg.store)
        self.lifecycle: str | None = None
        self._setup_lock = threading.Lock()
        if check:  # at start-up: an unreachable engine or a refused template is one clear line
            self._ensure_setup()
        self.max_in_flight = cfg.store.in_flight
        self.flush_bytes = parse_bytes(cfg.store.bulk_bytes)
        self.pool = ThreadPoolExecutor(max_workers=self.max_in_flight,
                                       thread_name_prefix="farm-bulk")
        self.stopping = threading.Event()
        self._last_warning = 0.0
        self._last_maintenance = 0.0

    def submit(self, payloads: list[bytes]) -> Future:
        return self.pool.submit(self._commit, payloads)

    def write(self, payloads: list[bytes]) -> list:
        return self._commit(payloads)

    def _ensure_setup(self) -> None:
        """Detect the engine and install template, script and retention (idempotent), once; an
        indexer started while the engine is down does this with its first flush, retried."""
        with self._setup_lock:
            if self.lifecycle is None:
                self.engine.detect()
                self.lifecycle = setup(self.engine, self.store)

    def _commit(self, payloads: list[bytes]) -> list:
        self._ensure_setup()
        rejected = []
        request = Items()
        for payload in payloads:
            ndjson, ends, kinds = msgpack.unpackb(payload)
            if not ends:
                continue
            request.add(ndjson, ends, kinds)
            if request.size >= self.flush_bytes:
                rejected += self._send(request)
                request = Items()
        if request.spans:
            rejected += self._send(request)
        return rejected

    def _send(self, items: Items) -> list:
        """Send until every item is committed or rejected for good."""
        rejected = []
        attempt = 0
        while items.spans:
            try:
                status, answer = self.engine.request("POST", BULK_PATH, body=items.body(),
                                                     headers=NDJSON, ok=None)
            except EngineError as exc:
                status, answer = None, str(exc)
            if status == 200 and isinstance(answer, dict):
                if not answer.get("errors"):
                    return rejected
                retry = []
                for span, result in zip(items.spans, answer["items"], strict=True):
                    info = next(iter(result.values()))
                    code = info.get("status", 500)
                    if code < 300:
                        continue
                    if code in RETRY_ITEM or code >= 500:
                        retry.append(span)
                    else:
                        rejected.append(self._letter(items.item(span), span[3], info))
                items = items.subset(retry)
                if not retry:
                    return rejected
                reason = f"{len(retry)} items to retry"
            elif status == 413 and len(items.spans) > 1:
                half = len(items.spans) // 2
                return (rejected + self._send(items.subset(items.spans[:half]))
                        + self._send(items.subset(items.spans[half:])))
            elif status is not None and 400 <= status < 500 and status != 429:
                # The whole request is refused (not one item): nothing in it can commit.
                reason = f"bulk refused with {status}: {answer}"
                rejected += [self._letter(items.item(s), s[3], {"error": {"reason": reason}})
                             for s in items.spans]
                return rejected
            else:
                reason = f"engine answered {status}" if status else str(answer)
            attempt += 1
            self._backoff(attempt, reason)
        return rejected

    def _backoff(self, attempt: int, reason: str) -> None:
        delay = min(0.1 * 2 ** min(attempt, 10), 30.0) * random.uniform(0.5, 1.5)
        now = time.monotonic()
        if now - self._last_warning > 10:
            self._last_warning = now
            log.warning("engine write not done (%s); retrying, attempt %d, next in %.1fs",
                        reason, attempt, delay)
        self.stopping.wait(delay)

    def _letter(self, item: bytes, kind: int, info: dict) -> tuple[bytes, bool]:
        action, _, source = item.partition(b"\n")
        error = info.get("error") or {}
        reason = f"{error.get('type', 'rejected')}: {error.get('reason', error)}"
        try:
            doc = orjson.loads(source)
        except orjson.JSONDecodeError:
            doc = source
        if kind == CURRENT and isinstance(doc, dict):
            doc = doc.get("script", {}).get("params", {}).get("doc", doc)
        batch = doc.get("batchId") if isinstance(doc, dict) else None
        tenant = doc.get("tenant") if isinstance(doc, dict) else None
        stage = {HISTORY: "store", CURRENT: "store-current", RAW: "store-raw"}.get(
            kind, "store-incident")
        letter = dead_letter(reason, stage, doc, batch, tenant, "keep")
        return letter, kind == HISTORY

    def maintain(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if now - self._last_maintenance < 600:
            return
        self._last_maintenance = now
        raw_cutoff = raw_events.retention_cutoff(self.store, now)
        try:
            if raw_cutoff is not None:
                raw_events.expire_engine(self.engine, self.store.index_prefix, raw_cutoff)
        except EngineError as exc:
            log.warning("raw retention: %s", exc)
        if self.lifecycle != "farm":
            return
        try:
            deleted = delete_expired(self.engine, self.store.index_prefix,
                                     self.store.retention_days, now)
        except EngineError as exc:
            log.warning("retention: %s", exc)
            return
        if deleted:
            log.info("retention: deleted %s", ", ".join(deleted))

    def close(self) -> None:
        self.stopping.set()
        self.pool.shutdown(wait=True)
        self.engine.close()
