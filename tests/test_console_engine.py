"""The console on an Elasticsearch/OpenSearch store: the same pages read the engine through
the same read side (farm/search.py, farm/correlation/queries.py)."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request

import pytest

from farm.search import Query, search_page
from tests.support.console_farm import (
    GENERIC_ALERTS,
    HOSTILE_FINGERPRINT,
    drop_engine_indices,
    start_console_farm,
)

ROW = re.compile(r'<tr data-fingerprint="([^"]*)"')


@pytest.fixture(scope="module")
def console(tmp_path_factory, redis_url, engine_node):
    started = start_console_farm(tmp_path_factory.mktemp("console-engine"), redis_url,
                                 engine_url=engine_node.url)
    yield started
    started.farm.terminate()
    drop_engine_indices(started)


def get(console, path: str) -> str:
    with urllib.request.urlopen(console.url + path, timeout=60) as response:
        return response.read().decode()


@pytest.mark.parametrize("query, asked", [
    ("", Query()),
    ("?status=resolved&provider=prometheus", Query(statuses=("resolved",),
                                                    providers=("prometheus",))),
    ("?q=zanzibar", Query(text="zanzibar")),
    ("?environment=production&service=postgres", Query(environment="production",
                                                        service="postgres")),
])
def test_the_alert_table_shows_what_the_engine_holds(console, query, asked):
    asked.limit = console.cfg.console.page_size
    expected = [a["fingerprint"] for a in search_page(console.cfg, asked).alerts]
    assert expected
    assert ROW.findall(get(console, "/ui" + query)) == expected


def test_older_links_walk_every_current_alert_once(console):
    seen, path = [], "/ui"
    while path:
        html = get(console, path)
        seen += ROW.findall(html)
        found = re.search(r'<a href="(/ui\?[^"]*)" id="older">', html)
        path = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == len(set(seen)) == GENERIC_ALERTS + 3 + 1


def test_alert_page_reads_versions_and_raw_payload_from_the_engine(console):
    html = get(console, "/ui/alert?" + urllib.parse.urlencode(
        {"tenant": "default", "fingerprint": HOSTILE_FINGERPRINT}))
    versions = html[html.index('id="versions"'):html.index("Raw payloads")]
    assert re.findall(r'status status-(\w+)"', versions) == ["firing", "resolved", "firing"]
    assert "&lt;script&gt;window.__pwned" in html and "<script>window" not in html
    assert "&#34;fingerprint&#34;: &#34;console-hostile&#34;" in html[html.index("Raw payloads"):]


def test_incidents_from_the_engine(console):
    html = get(console, "/ui/incidents")
    link = re.search(r'<a href="(/ui/incident\?id=[^"]+)">Critical on postgres</a>', html)
    assert link
    assert sorted(ROW.findall(get(console, link.group(1)))) == ["db-0", "db-1", "db-2"]
