"""The [ingest] section (the HTTP gateway) with its tables [ingest.keys] and [ingest.rates], and the
parsers its keys share with the gateway's code (watermarks, tenant names)."""

from __future__ import annotations

import re

from farm.config.setting import host_port, key, parsed_by, section, size
from farm.units import parse_bytes, parse_request_rate
from farm.wire import PROVIDERS

TENANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TENANT_RULE = "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
WATERMARK_HELP = 'a size ("1GB") or a number of batches ("50000")'


def parse_watermark(text: str) -> tuple[int, str]:
    """'1GB' -> (1_000_000_000, 'bytes'); '50000' or '50000 batches' -> (50000, 'batches').
    Raises ValueError naming what is allowed."""
    body = text.strip().lower()
    for word in (" batches", "batches", " batch"):
        if body.endswith(word):
            body = body[: -len(word)].strip()
            if body.isdigit():
                return int(body), "batches"
    if body.isdigit():
        return int(body), "batches"
    try:
        return parse_bytes(text), "bytes"
    except ValueError:
        raise ValueError(f"{text!r} is not a watermark; write {WATERMARK_HELP}") from None


_watermark = parsed_by(parse_watermark)


def _rate_or_off(value: str) -> str | None:
    if value.strip().lower() == "off":
        return None
    try:
        if parse_request_rate(value) <= 0:
            return 'must be more than zero requests (or "off")'
    except ValueError as exc:
        return f'{exc}, or "off"'
    return None


def _keys_table(table: dict) -> str | None:
    seen: dict[str, str] = {}
    for tenant, digests in table.items():
        if not TENANT_RE.fullmatch(tenant):
            return f"tenant {tenant!r} {TENANT_RULE}"
        for digest in digests:
            if not DIGEST_RE.fullmatch(digest):
                return (f"entry of {tenant!r} must be \"sha256:<64 lowercase hex digits>\" "
                        f"(`farm keys add {tenant}` writes one), got {digest[:16]!r}...")
            if seen.setdefault(digest, tenant) != tenant:
                return f"one key hash is listed under both {seen[digest]!r} and {tenant!r}"
    return None


def _rates_table(table: dict) -> str | None:
    for name, rate in table.items():
        tenant, sep, provider = name.partition("/")
        if not sep or not TENANT_RE.fullmatch(tenant) or provider not in (*PROVIDERS, "*"):
            return (f"entry {name!r} must be named \"<tenant>/<provider>\" with provider one of "
                    f"{', '.join(PROVIDERS)} or *")
        problem = _rate_or_off(rate)
        if problem:
            return f"entry {name!r} = {rate!r} {problem}"
    return None


@section("ingest")
class IngestSettings:
    processes: int = key(2,
            "HTTP gateway processes sharing [ingest] http (SO_REUSEPORT); 0 runs none, like `farm "
            "start --no-ingest`.",
            minimum=0, maximum=256)
    http: str = key("127.0.0.1:8080",
            "Address the gateway listens on for Keep-compatible webhooks (POST /alerts/event...). "
            "Beyond loopback, configure [ingest.keys].",
            check=host_port)
    allow_anonymous: bool = key(False,
            "Accept requests without an API key, as tenant \"default\" (for a trial only; a wrong "
            "key is still refused).")
    rate: str = key("2000/s",
            "Requests per second allowed per tenant and provider, shared by every gateway on this "
            "Redis; \"off\" disables rate limiting. [ingest.rates] overrides it.",
            check=_rate_or_off)
    burst_seconds: float = key(1.0,
            "How many seconds' worth of the rate a client may send at once (the bucket size).",
            minimum=0.001, maximum=3600)
    max_body: str = key("10MB",
            "Largest request body accepted; larger ones get 413.",
            check=size)
    max_depth: int = key(32,
            "Deepest nesting of JSON arrays and objects accepted; deeper bodies get 400.",
            minimum=2, maximum=1000)
    max_items: int = key(100000,
            "Most JSON array elements plus object members in one body; more get 400.",
            minimum=10, maximum=100000000)
    high_water: str = key("1GB",
            "When the queue backlog (both lanes) reaches this, a size (\"1GB\") or a number of "
            "batches (\"50000\"), requests get 429 until it falls below low_water.",
            check=_watermark)
    low_water: str = key("768MB",
            "Backlog below which the gateway accepts requests again after high_water (same unit "
            "as high_water).",
            check=_watermark)
    critical_water: str = key("256MB",
            "While the backlog is above high_water, requests holding a critical alert still enter "
            "the critical lane until that lane holds this much.",
            check=_watermark)
    backlog_check_ms: int = key(250,
            "How often each gateway measures the queue backlog.",
            minimum=10, maximum=60_000)
    flush_ms: int = key(2,
            "How long the first request of a batch waits for others of the same tenant and "
            "provider before the batch is pushed to Redis (longer while an earlier push is on "
            "its way); 0 pushes on the next loop turn.",
            minimum=0, maximum=1000)
    batch_events: int = key(1000,
            "A batch is pushed as soon as it holds this many events...",
            minimum=1, maximum=100_000)
    batch_bytes: str = key("1MB",
            "...or this many bytes of request bodies (a request is never split: the one that "
            "reaches it joins the open batch, which is then pushed).",
            check=size)
    max_inflight: int = key(2000,
            "Requests one gateway process holds at once; beyond that it answers 503 with "
            "Retry-After.",
            minimum=1, maximum=1_000_000)
    max_inflight_bytes: str = key("256MB",
            "Bytes of request bodies one gateway process holds at once (a body counts its "
            "Content-Length, or what was read of it, until it is answered); beyond that it "
            "answers 503 with Retry-After. Bounds memory: parsed bodies take a few times their "
            "size. At least max_body.",
            check=size)
    header_timeout_seconds: float = key(10.0,
            "How long a client may take to send a request's headers, from the request's first "
            "byte (from the connection's opening for its first request); past it the gateway "
            "answers 408 and closes the connection. A webhook's headers come in one packet.",
            minimum=0.1, maximum=3600)
    body_timeout_seconds: float = key(30.0,
            "How long the gateway waits for a request's whole body once it starts reading it; "
            "past it the answer is 408, nothing is kept and the connection is closed. 30 s lets a "
            "body of the default max_body (10 MB) arrive at about 3 Mbit/s.",
            minimum=0.1, maximum=3600)
    request_timeout_seconds: float = key(60.0,
            "Longest time from a request's first byte until its body is read: headers, the "
            "gateway's checks and the body together; past it 408 (or, while the headers are still "
            "coming, 408 and close). Bounds how long one slow request holds a connection; the "
            "default leaves room for both limits above and a slow Redis.",
            minimum=0.1, maximum=3600)
    keepalive_timeout_seconds: float = key(5.0,
            "How long an idle keep-alive connection stays open between requests. Behind a load "
            "balancer, make it longer than the balancer's own idle timeout.",
            minimum=0.1, maximum=3600)
    max_connections: int = key(4096,
            "Open connections one gateway process holds at once; a connection beyond it gets 503 "
            "with Retry-After and is closed at once, so that slow or idle clients cannot exhaust "
            "the process. Keep it above max_inflight: idle keep-alive connections count too.",
            minimum=1, maximum=1_000_000)
    keys: dict[str, list[str]] = key({},
            "API keys per tenant: tenant = [\"sha256:<hex digest of the key>\", ...]. `farm keys "
            "add TENANT` creates a key and writes its hash here.",
            check=_keys_table)
    rates: dict[str, str] = key({},
            "Rate overrides: \"<tenant>/<provider>\" = \"500/s\" (provider * for all of a tenant's "
            "providers; \"off\" for none).",
            check=_rates_table)
