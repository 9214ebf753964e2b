"""Talking to an Elasticsearch or OpenSearch cluster: the connection, which engine it is, and the
one-time setup farm needs there (index template, the current-state script, retention).

farm uses `elastic_transport` (the transport layer under the official Elasticsearch client)
rather than the `elasticsearch` client itself: the client refuses servers that are not
Elasticsearch, while farm speaks only `_bulk` and a handful of stable endpoints that
Elasticsearch 7/8/9 and OpenSearch 1/2/3 share. The transport brings connection pooling,
several hosts, TLS, auth headers and gzip; farm does its own retries (it must never give up on a
batch it has not acked).
"""

from __future__ import annotations

import base64
import logging
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from elastic_transport import Transport, TransportError
from elastic_transport.client_utils import url_to_node_config

from farm.correlation.store import setup_engine as setup_incidents
from farm.sinks import raw as raw_events

log = logging.getLogger("farm.engine")

CURRENT_SCRIPT_ID = "farm-current-state"

# The current-state document of a fingerprint. A version replaces it only if it is not older
# than what is there (sentAt), so a redelivered old batch never wins; duplicates only raise the
# counter and lastReceived. A placeholder (eventId '') holds duplicates whose version has not
# been committed yet; the version then takes over its count.
CURRENT_SCRIPT = """
def src = ctx._source;
if (params.kind == 'version') {
  if (src.sentAt != null && params.sentAt < src.sentAt) { ctx.op = 'none'; return; }
  long carried = 0;
  String seen = params.doc.lastReceived;
  if (src.eventId == '' && src.duplicates != null) {
    carried = src.duplicates;
    if (src.lastReceived != null && src.lastReceived.compareTo(seen) > 0) {
      seen = src.lastReceived;
    }
  }
  src.clear();
  src.putAll(params.doc);
  src.duplicates = params.dups + carried;
  src.sentAt = params.sentAt;
  src.lastReceived = seen;
} else {
  if (src.duplicates == null) {
    src.eventId = ''; src.duplicates = 0L; src.sentAt = 0.0;
    src.tenant = params.tenant; src.fingerprint = params.fingerprint;
  }
  src.duplicates += params.dups;
  if (src.lastReceived == null || params.seen.compareTo(src.lastReceived) > 0) {
    src.lastReceived = params.seen;
  }
}
"""


class EngineError(Exception):
    """The engine refused a setup request or cannot be reached; str() says what to check."""


@dataclass
class EngineInfo:
    """Which engine answered at [store] url, as `Engine.detect` found out."""

    distribution: str   # "elasticsearch" or "opensearch"
    version: str        # "8.19.2", or "" when the engine does not say

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0]) if self.version[:1].isdigit() else 0


def template_path() -> Path:
    """configs/elasticsearch/alerts-template.json from a checkout, or as installed."""
    name = Path("configs") / "elasticsearch" / "alerts-template.json"
    for base in (Path(__file__).resolve().parents[2], Path(sys.prefix) / "share" / "farm"):
        if (base / name).exists():
            return base / name
    raise EngineError(f"cannot find {name}; reinstall farm")


def history_index(prefix: str, sent_at: float) -> str:
    return f"{prefix}-alerts-{datetime.fromtimestamp(sent_at, UTC):%Y.%m.%d}"


def current_index(prefix: str) -> str:
    return f"{prefix}-alerts-current"


class Engine:
    """A connection to one cluster (one or more comma-separated URLs) built from [store]."""

    def __init__(self, store):
        headers = {}
        if store.api_key:
            headers["authorization"] = f"ApiKey {store.api_key}"
        elif store.username:
            token = base64.b64encode(f"{store.username}:{store.password}".encode()).decode()
            headers["authorization"] = f"Basic {token}"
        nodes = []
        for url in (u.strip() for u in store.url.split(",") if u.strip()):
            try:
                node = url_to_node_config(url, use_default_ports_for_scheme=True)
            except ValueError as exc:
                raise EngineError(f"[store] url {url!r} is not an engine URL ({exc}); write for "
                                  f"example http://127.0.0.1:9200") from None
            extra = {"http_compress": store.gzip, "request_timeout": store.request_timeout,
                     "headers": {**dict(node.headers), **headers}}
            if node.scheme == "https":
                extra["verify_certs"] = store.verify_certs
                extra["ca_certs"] = store.ca_certs or None
            nodes.append(node.replace(**extra))
        self.url = store.url
        self.transport = Transport(nodes, max_retries=0, retry_on_timeout=False,
                                   serializers=_serializers())
        self.info: EngineInfo | None = None

    def request(self, method: str, path: str, body=None, headers=None, ok=(200, 201)):
        """One request; returns (status, body). Raises EngineError on a connection failure or
        a status outside `ok` (pass ok=None to accept any)."""
        try:
            response = self.transport.perform_request(method, path, body=body,
                                                      headers=headers or _JSON)
        except TransportError as exc:
            raise EngineError(f"cannot reach the engine at {self.url}: {exc}") from None
        status = response.meta.status
        if ok is not None and status not in ok:
            raise EngineError(f"{method} {path} answered {status}: {_reason(response.body)}")
        return status, response.body

    def detect(self) -> EngineInfo:
        """Which engine this is. Some builds answer `GET /` with 405; they say who they are
        in the X-elastic-product header of other answers."""
        status, body = self.request("GET", "/", ok=None)
        if status == 200 and isinstance(body, dict):
            version = body.get("version", {})
            dist = version.get("distribution", "elasticsearch")
            self.info = EngineInfo(dist, version.get("number", ""))
        else:
            response = self.transport.perform_request("GET", "/_cluster/health", headers=_JSON)
            if response.meta.status != 200:
                raise EngineError(f"{self.url} does not look like Elasticsearch or OpenSearch "
                                  f"(GET / answered {status})")
            product = response.meta.headers.get("x-elastic-product", "")
            self.info = EngineInfo("elasticsearch" if product else "opensearch", "")
        return self.info

    def close(self) -> None:
        self.transport.close()


_JSON = {"content-type": "application/json", "accept": "application/json"}


def _serializers():
    from elastic_transport import JsonSerializer, NdjsonSerializer, TextSerializer

    try:
        from elastic_transport import OrjsonSerializer

        json_serializer = OrjsonSerializer()
    except ImportError:
        json_serializer = JsonSerializer()
    return {"application/json": json_serializer, "application/x-ndjson": NdjsonSerializer(),
            "text/plain": TextSerializer()}


def _reason(body) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return f"{err.get('type')}: {err.get('reason')}"
    return str(body)[:300]


# -- one-time setup ------------------------------------------------------------------------

def setup(engine: Engine, store) -> str:
    """Install the index template, the current-state script and retention; idempotent.
    Returns the retention method in use ("ilm", "ism" or "farm")."""
    info = engine.info or engine.detect()
    prefix = store.index_prefix
    # Keys of labels and tags are unbounded: one field each, whatever the keys. Values past
    # ignore_above stay in _source unindexed (OpenSearch's flat_object has no such limit).
    labels = {"type": "flat_object"} if info.distribution == "opensearch" else \
        {"type": "flattened", "ignore_above": 8191}
    if info.distribution == "opensearch" and 0 < info.major < 2:
        labels = {"type": "object", "enabled": False}  # no flat_object before 2.7: stored only
    lifecycle = _setup_lifecycle(engine, store, info)
    settings = {"index.lifecycle.name": f"{prefix}-alerts"} if lifecycle == "ilm" else {}
    _put_template(engine, prefix, store.replicas, labels, settings)
    engine.request("PUT", f"/_scripts/{CURRENT_SCRIPT_ID}",
                   body={"script": {"lang": "painless", "source": CURRENT_SCRIPT}})
    engine.request("PUT", f"/{current_index(prefix)}", ok=(200, 201, 400))  # 400: exists
    setup_incidents(engine, prefix, store.replicas,
                    template_path().with_name("incidents-template.json"))
    raw_events.setup_engine(engine, prefix, store.replicas)
    return lifecycle


def _put_template(engine: Engine, prefix: str, replicas: int, labels: dict,
                  settings: dict) -> None:
    """Install configs/elasticsearch/alerts-template.json for this prefix and engine; an engine
    without the labels field type gets labels stored but not indexed (with a warning)."""
    shipped = orjson.loads(template_path().read_bytes())
    for kind in (labels, {"type": "object", "enabled": False}):
        body = orjson.loads(orjson.dumps(shipped))  # a deep copy per attempt
        body["index_patterns"] = [f"{prefix}-alerts-*"]
        template = body["template"]
        template["settings"].update({"number_of_replicas": replicas, **settings})
        properties = template["mappings"]["properties"]
        for name, mapping in properties.items():
            if mapping.get("type") == "flattened":
                properties[name] = kind
        status, answer = engine.request("PUT", f"/_index_template/{prefix}-alerts",
                                        body=body, ok=None)
        if status in (200, 201):
            if kind is not labels:
                log.warning("this engine has no %s field type; labels are stored but not "
                            "searchable by key", labels["type"])
            return
        if "mapper_parsing_exception" not in str(answer) and "No handler" not in str(answer):
            break
    raise EngineError(f"the engine refused farm's index template: {_reason(answer)}")


def _setup_lifecycle(engine: Engine, store, info: EngineInfo) -> str:
    prefix, days = store.index_prefix, store.retention_days
    wanted = store.lifecycle
    if wanted in ("auto", "ilm") and info.distribution == "elasticsearch":
        policy = {"policy": {"phases": {"delete": {"min_age": f"{days}d",
                                                   "actions": {"delete": {}}}}}}
        status, _ = engine.request("PUT", f"/_ilm/policy/{prefix}-alerts", body=policy, ok=None)
        if status in (200, 201):
            return "ilm"
    if wanted in ("auto", "ism") and info.distribution == "opensearch":
        policy = {"policy": {"description": "farm alert history retention",
                             "default_state": "hot",
                             "states": [{"name": "hot", "actions": [], "transitions": [
                                 {"state_name": "delete", "conditions": {"min_index_age":
                                                                         f"{days}d"}}]},
                                        {"name": "delete", "actions": [{"delete": {}}],
                                         "transitions": []}],
                             "ism_template": [{"index_patterns": [f"{prefix}-alerts-2*"],
                                               "priority": 100}]}}
        status, _ = engine.request("PUT", f"/_plugins/_ism/policies/{prefix}-alerts",
                                   body=policy, ok=None)
        if status in (200, 201, 409):
            return "ism"
    if wanted in ("ilm", "ism"):
        log.warning("[store] lifecycle = %r is not available on this %s; farm deletes daily "
                    "indices older than %d days itself", wanted, info.distribution, days)
    return "farm"


# -- retention done by farm ----------------------------------------------------------------

_DAILY = re.compile(r"-alerts-(\d{4})\.(\d{2})\.(\d{2})$")


def delete_expired(engine: Engine, prefix: str, days: int, now: float | None = None) -> list[str]:
    """Delete daily history indices older than `days`, and current-state documents not seen
    for as long. Returns the deleted index names."""
    if days <= 0:
        return []
    now = time.time() if now is None else now
    cutoff = datetime.fromtimestamp(now, UTC) - timedelta(days=days)
    _, body = engine.request("GET", f"/_cat/indices/{prefix}-alerts-2*?format=json&h=index")
    expired = []
    for row in body or []:
        m = _DAILY.search(row["index"])
        if m and datetime(*map(int, m.groups()), tzinfo=UTC) + timedelta(days=1) < cutoff:
            expired.append(row["index"])
    for name in expired:
        engine.request("DELETE", f"/{name}", ok=(200, 404))
    query = {"query": {"range": {"lastReceived": {"lt": cutoff.isoformat()}}}}
    engine.request("POST", f"/{current_index(prefix)}/_delete_by_query?conflicts=proceed",
                   body=query, ok=None)
    return expired

