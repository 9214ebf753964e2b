"""What a producer process and its parent share: the spec it runs (ProducerSpec), the slots of
its shared progress array (Stat), and the result it sends back at the end (Result)."""

from __future__ import annotations

from dataclasses import dataclass, field

from loadgen.population import PopulationSpec
from loadgen.record import SendLog
from loadgen.stream import StreamSpec


class Stat:
    """Indices into the shared progress array."""

    PAYLOAD, ALERTS, NOTIFICATIONS, BATCHES, WIRE, THROTTLED, STATE, START, LAST, KNOWN = range(10)
    SIZE = 10
    BUILDING, READY, RUNNING, DONE, FAILED = range(5)


@dataclass(frozen=True)
class HttpSpec:
    url: str
    api_key: str | None
    concurrency: int = 128
    timeout: float = 30.0


@dataclass(frozen=True)
class ProducerSpec:
    run_id: str
    producer: int
    producers: int
    population: PopulationSpec
    stream: StreamSpec
    tenant: str
    redis_url: str | None
    prefix: str
    http: HttpSpec | None
    batch_events: int
    batch_bytes: int
    batch_wait: float
    duration: float | None            # seconds of wall time, or None
    total: float | None               # this producer's share, in stream.unit, or None
    max_backlog: int                  # bytes queued in Redis above which pushing pauses
    record: bool
    shards: int = 0                   # [redis] shards (0: the default for the Redis kind)


@dataclass
class Result:
    producer: int
    error: str | None = None
    kinds: dict = field(default_factory=dict)
    shifted: float = 0.0
    refused: dict = field(default_factory=dict)     # HTTP: status -> count
    refusal: str | None = None                      # HTTP: the first refusal's detail
    retried: int = 0                                # HTTP: 429/503 answers honoured
    unknown: int = 0                                # HTTP: requests sent without an answer
    unknown_detail: str | None = None               # HTTP: the first one's error
    log: SendLog | None = None
