"""The alert table's filters: the query string <-> farm.search.Query, and the links that keep
them (the next page, the newest page)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from farm.alert import SEVERITY_ORDER, STATUSES
from farm.search import Query
from farm.wire import PROVIDERS

SINCE = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86_400, "7d": 7 * 86_400,
         "30d": 30 * 86_400}
SEVERITIES = tuple(sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.get, reverse=True))
CHOICES = {"status": STATUSES, "severity": SEVERITIES, "provider": PROVIDERS}
TEXTS = ("q", "tenant", "environment", "service")
MAX_TEXT = 500


@dataclass
class Filters:
    """What the person asked for: several values per choice, one per text, a time range."""

    chosen: dict[str, tuple[str, ...]]
    texts: dict[str, str]
    since: str
    before: str | None

    @classmethod
    def read(cls, params: QueryParams) -> Filters:
        chosen = {name: tuple(v for v in params.getlist(name) if v in allowed)
                  for name, allowed in CHOICES.items()}
        texts = {name: params.get(name, "").strip()[:MAX_TEXT] for name in TEXTS}
        since = params.get("since", "")
        return cls(chosen, texts, since if since in SINCE else "",
                   params.get("before") or None)

    def query(self, limit: int, deadline_seconds: float) -> Query:
        return Query(text=self.texts["q"], since_seconds=SINCE.get(self.since),
                     severities=self.chosen["severity"], tenant=self.texts["tenant"] or None,
                     limit=limit, statuses=self.chosen["status"],
                     providers=self.chosen["provider"],
                     environment=self.texts["environment"] or None,
                     service=self.texts["service"] or None, before=self.before,
                     deadline_seconds=deadline_seconds)

    def link(self, before: str | None = None) -> str:
        """The query string of these filters, on the page after `before` (first page: None)."""
        pairs = [(name, value) for name, values in self.chosen.items() for value in values]
        pairs += [(name, value) for name, value in self.texts.items() if value]
        if self.since:
            pairs.append(("since", self.since))
        if before:
            pairs.append(("before", before))
        return "?" + urlencode(pairs) if pairs else "?"

    @property
    def active(self) -> bool:
        return any(self.chosen.values()) or any(self.texts.values()) or bool(self.since)
