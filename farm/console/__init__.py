"""The web console at /ui on the supervisor's HTTP server (docs/console.md): the current alerts
with filters and full-text search, one alert's versions, enrichments and kept raw payloads,
incidents, dead letters, and the account in the header.

It only reads, through farm/search.py and farm/correlation/queries.py on read-only connections
of its own (or the engine's search API), in bounded pages and with a deadline per query
([console] query_seconds), off the event loop; replaying dead letters is its one write, and
needs the admin key (farm/console/access.py).
"""

from __future__ import annotations

from farm.console.app import console_routes

__all__ = ["console_routes"]
