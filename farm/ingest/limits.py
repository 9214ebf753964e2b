"""Request bodies: the size limit and the process's byte budget (kept as the body is read, by
farm/ingest/incoming.py), parsing (JSON or form) within the depth and item limits, and the
provider's raw events.

An object body is one event; an array body is one event per item (Keep's generic list, or a
list of provider payloads). Each event stays exactly as the provider sent it.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

import orjson

from farm.ingest.errors import Refused

FORM_URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


def too_large(limit: int) -> Refused:
    return Refused(413, f"request body is larger than the {limit:,}-byte limit "
                        f"([ingest] max_body)", "too_large")


class BodyBudget:
    """Bytes of request bodies one process holds at once ([ingest] max_inflight_bytes), so that
    max_inflight requests of max_body each cannot exhaust its memory."""

    def __init__(self, limit: int, retry_after: int):
        self.limit = limit
        self.retry_after = retry_after
        self.held = 0

    def hold(self) -> Hold:
        return Hold(self)


class Hold:
    """One request's share of the budget: `cover(n)` makes it at least n bytes or refuses (503
    with Retry-After); `release()` gives it all back once the request is answered."""

    __slots__ = ("budget", "size")

    def __init__(self, budget: BodyBudget):
        self.budget = budget
        self.size = 0

    def cover(self, n: int) -> None:
        more = n - self.size
        if more <= 0:
            return
        budget = self.budget
        if budget.held + more > budget.limit:
            raise Refused(503, f"this gateway process holds {budget.held:,} bytes of request "
                               f"bodies already ([ingest] max_inflight_bytes is "
                               f"{budget.limit:,}); retry after {budget.retry_after}s",
                          "overloaded", {"Retry-After": str(budget.retry_after)})
        budget.held += more
        self.size = n

    def release(self) -> None:
        self.budget.held -= self.size
        self.size = 0


def declared_length(declared: str | None, limit: int) -> int | None:
    """The body's Content-Length, or None when it is not declared (chunked). Refuses (413) a
    body declared larger than limit and (400) a length that is not a number, before reading
    any of it."""
    if declared is None:
        return None
    try:
        length = int(declared)
    except ValueError:
        raise Refused(400, f"Content-Length {declared[:40]!r} is not a number",
                      "bad_request") from None
    if length > limit:
        raise too_large(limit)
    return length


def check_structure(doc: object, max_depth: int, max_items: int) -> None:
    """Refuse (400) a document nested deeper than max_depth or holding more than max_items
    array elements and object members in all. Visits each value once, without recursion."""
    items = 0
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise Refused(400, f"JSON is nested deeper than {max_depth} levels "
                               f"([ingest] max_depth)", "too_deep")
        items += len(node)
        if items > max_items:
            raise Refused(400, f"JSON holds more than {max_items:,} array items and object "
                               f"members ([ingest] max_items)", "too_many_items")
        for value in (node.values() if type(node) is dict else node):
            kind = type(value)
            if kind is dict or kind is list:
                stack.append((value, depth + 1))


def events_of(doc: object) -> list[dict]:
    """The raw events a parsed body holds; refuses (400) anything but an object or a list of
    objects."""
    if type(doc) is dict:
        return [doc]
    if type(doc) is list and all(type(item) is dict for item in doc):
        return doc
    raise Refused(400, "the body must be a JSON object or a list of JSON objects",
                  "bad_body")


def within_limits_by_size(body: bytes, max_depth: int, max_items: int) -> bool:
    """True when the raw body cannot break either limit, so the parsed document need not be
    walked: every level of nesting opens with a '{' or '[' and every item or member takes at
    least one byte, so a body with at most max_depth brackets (strings' included) and at most
    max_items bytes is within both. Most webhooks are."""
    return (len(body) <= max_items
            and body.count(b"{") + body.count(b"[") <= max_depth)


def parse_json(body: bytes, max_depth: int, max_items: int) -> list[dict]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, f"the body is not valid JSON: {exc}", "bad_json") from None
    if (type(doc) is dict or type(doc) is list) and not within_limits_by_size(
            body, max_depth, max_items):
        check_structure(doc, max_depth, max_items)
    return events_of(doc)


def parse_urlencoded(body: bytes, max_items: int) -> list[dict]:
    try:
        fields = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=max_items)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused(400, f"the form body cannot be read: {exc}", "bad_form") from None
    return [dict(fields)]


async def parse_multipart(headers, body: bytes, max_items: int) -> list[dict]:
    """`headers`: Starlette's Headers of the request (the parser reads its boundary)."""
    from python_multipart.exceptions import FormParserError
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def stream():
        yield body

    parser = MultiPartParser(headers, stream(), max_files=0, max_fields=max_items,
                             max_part_size=len(body) + 1)
    try:
        form = await parser.parse()
    except (MultiPartException, FormParserError) as exc:
        raise Refused(400, f"the multipart body cannot be read: {exc}", "bad_form") from None
    return [{name: value for name, value in form.multi_items() if isinstance(value, str)}]


async def parse_body(content_type: str, headers_of: Callable[[], object], body: bytes,
                     max_depth: int, max_items: int) -> list[dict]:
    """Events of a body: form bodies as Keep accepts them, anything else as JSON. A "form" body
    that is plainly JSON is read as JSON: `curl -d '{...}'` labels JSON as a form."""
    media = content_type.partition(";")[0].strip().lower()
    if media == FORM_URLENCODED:
        if body.lstrip()[:1] in (b"{", b"["):
            return parse_json(body, max_depth, max_items)
        return parse_urlencoded(body, max_items)
    if media == MULTIPART:
        return await parse_multipart(headers_of(), body, max_items)
    return parse_json(body, max_depth, max_items)
