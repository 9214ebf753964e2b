"""An Elasticsearch/OpenSearch store written to without a farm, for the engine tests."""

from __future__ import annotations

import uuid

from farm.config import Config, load
from farm.sinks.elastic import ElasticEncoder, ElasticWriter
from farm.sinks.engine_client import Engine

SENT_AT = 1_790_000_000.0  # 2026-09-21


def engine_cfg(url: str, prefix: str | None = None, **store: object) -> Config:
    """A config whose [store] is the engine at url, under prefix (default: a fresh one)."""
    env = {"FARM_STORE_KIND": "elasticsearch", "FARM_STORE_URL": url, "FARM_STORE_REPLICAS": "0",
           "FARM_STORE_INDEX_PREFIX": prefix or f"t{uuid.uuid4().hex[:10]}"}
    env.update({f"FARM_STORE_{k.upper()}": str(v) for k, v in store.items()})
    return load(None, env=env)


class EngineStore:
    """The engine store at url under a fresh index prefix, written to directly (encoder and
    writer, no farm), with the reads the tests check it by; close() deletes its indices."""

    def __init__(self, url: str):
        self.cfg = engine_cfg(url)
        self.prefix = self.cfg.store.index_prefix
        self.encoder = ElasticEncoder(self.cfg)
        self.writer = ElasticWriter(self.cfg)
        self.engine = Engine(self.cfg.store)

    def write(self, items, sent_at=SENT_AT, tenant="t1") -> list:
        rejected = self.writer.write([self.encoder.encode(tenant, sent_at, items)])
        self.engine.request("POST", f"/{self.prefix}-alerts-*/_refresh")
        return rejected

    def get(self, index: str, doc_id: str) -> dict | None:
        status, body = self.engine.request("GET", f"/{index}/_doc/{doc_id}", ok=(200, 404))
        return body["_source"] if status == 200 else None

    def count(self, index: str) -> int:
        return self.engine.request("GET", f"/{index}/_count")[1]["count"]

    def current(self, fp: str = "fp1", tenant: str = "t1") -> dict | None:
        return self.get(f"{self.prefix}-alerts-current", f"{tenant}%2F{fp}")

    def close(self):
        self.engine.request("DELETE", f"/{self.prefix}-alerts-*", ok=(200, 404))
        self.writer.close()
        self.engine.close()


def stored_event_ids(engine: Engine, prefix: str) -> list[str]:
    """Every eventId in the prefix's history indices (refreshed first), in order, paged."""
    engine.request("POST", f"/{prefix}-alerts-*/_refresh")
    ids, after = [], None
    while True:
        body = {"size": 5000, "_source": False, "sort": [{"eventId": "asc"}],
                "query": {"bool": {"must_not": {"term": {"eventId": ""}}}}}
        if after:
            body["search_after"] = after
        hits = engine.request("POST", f"/{prefix}-alerts-2*/_search", body=body)[1]["hits"]["hits"]
        if not hits:
            return ids
        ids += [h["_id"] for h in hits]
        after = hits[-1]["sort"]
