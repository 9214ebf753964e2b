"""The [notify] section (the outbound webhook, farm/notify/) with its table [notify.headers]."""

from __future__ import annotations

from farm.config.setting import key, section


def _url(value: str) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        return "must be an http:// or https:// URL, or empty to send no notifications"
    return None


@section("notify")
class NotifySettings:
    url: str = key("",
            "Receiver of outbound notifications: every stored alert version (and incident "
            "change) is POSTed there in JSON batches. Empty: nothing is collected or sent.",
            check=_url)
    secret: str = key("",
            "When set, each request carries X-Farm-Signature-256: sha256=<hex HMAC-SHA256 of "
            "the body with this secret> (docs/operations.md#notifications).")
    batch_max: int = key(500,
            "Most notifications in one request.",
            minimum=1, maximum=100_000)
    linger_ms: int = key(200,
            "How long the sender waits for more notifications to fill a request once it has "
            "one.",
            minimum=0, maximum=60_000)
    timeout_seconds: float = key(10.0,
            "Longest a request may take, connecting to the last byte of the answer; a slower "
            "receiver counts as a failure and the request is retried.",
            minimum=0.1, maximum=600)
    retry_seconds: int = key(300,
            "A request still failing this long after its first attempt is given up: its "
            "notifications go to the dead-letter list with the last failure as the reason.",
            minimum=1, maximum=7 * 86_400)
    backoff_max_seconds: float = key(30.0,
            "Longest wait between two attempts (the wait doubles from 0.2 s, with jitter).",
            minimum=0.2, maximum=3600)
    max_queue: int = key(1_000_000,
            "Most notifications waiting in Redis. Beyond it a worker's ack never waits: the "
            "overflow goes to the dead-letter list (reason \"notify: queue full\") and is "
            "counted in farm_notify_overflowed.",
            minimum=1, maximum=1_000_000_000)
    headers: dict[str, str] = key({},
            "Extra request headers: name = \"value\" (for example an Authorization token).")
