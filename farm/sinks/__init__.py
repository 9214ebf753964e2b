"""Stores the indexer writes to. Each store has two halves:

- an encoder, used by workers, that turns a batch's decided alerts into a sink-ready payload
  (row tuples for SQLite, `_bulk` NDJSON for Elasticsearch/OpenSearch), so that the indexer
  does I/O, not CPU work;
- a writer, used by the indexer, that commits many payloads in one transaction or bulk request.
  `submit(payloads)` returns a Future of the dead letters [(msgpack letter, counts_as_alert)]
  for items the store rejected for good; at most `max_in_flight` are outstanding, and the
  indexer flushes once `flush_bytes` of payload is pending.
"""

from __future__ import annotations

from farm.config import Config


def encoder_for(cfg: Config):
    if cfg.store.kind == "sqlite":
        from farm.sinks.sqlite import SqliteEncoder

        return SqliteEncoder()
    from farm.sinks.elastic import ElasticEncoder

    return ElasticEncoder(cfg)


def writer_for(cfg: Config, check: bool = False, fts_report=None):
    """The store's writer; with check, also prove now that the store can be written (the
    supervisor does at start, so a bad path or URL is one clear line). `fts_report` receives
    the SQLite full-text index's freshness after each catch-up pass."""
    if cfg.store.kind == "sqlite":
        from farm.sinks.sqlite import SqliteWriter

        return SqliteWriter(cfg.sqlite_path, retention_days=cfg.store.retention_days,
                            fts_history=cfg.store.fts_history, fts_report=fts_report,
                            raw_retention_days=(cfg.store.raw_retention_days
                                                or cfg.store.retention_days))
    from farm.sinks.elastic import ElasticWriter

    return ElasticWriter(cfg, check=check)
