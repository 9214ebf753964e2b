"""The one way the gateway refuses a request: an HTTP status, one line for people, and headers."""

from __future__ import annotations


class Refused(Exception):
    """Answer the request with `status` and {"detail": detail}; `reason` labels the metric."""

    def __init__(self, status: int, detail: str, reason: str,
                 headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.reason = reason
        self.headers = headers or {}
