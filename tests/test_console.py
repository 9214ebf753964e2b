"""The web console at /ui against a real farm with data: what each page shows is what the store
holds, alert text is escaped, pages walk the table once, and the key rules hold."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request

import pytest

from farm.search import Query, search_page
from farm.sinks.sqlite_schema import open_reader
from tests.support.console_farm import (
    GENERIC_ALERTS,
    HOSTILE_FINGERPRINT,
    start_console_farm,
)

ROW = re.compile(r'<tr data-fingerprint="([^"]*)" data-tenant="([^"]*)">')


@pytest.fixture(scope="module")
def console(tmp_path_factory, redis_url):
    started = start_console_farm(tmp_path_factory.mktemp("console"), redis_url)
    yield started
    started.farm.terminate()


def get(console, path: str) -> tuple[int, str, dict]:
    try:
        with urllib.request.urlopen(console.url + path, timeout=30) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def shown_fingerprints(html: str) -> list[str]:
    return [fp for fp, _tenant in ROW.findall(html)]


def test_hostile_alert_text_is_shown_as_text_never_as_markup(console):
    for path in ("/ui?q=zanzibar", "/ui/alert?" + urllib.parse.urlencode(
            {"tenant": "default", "fingerprint": HOSTILE_FINGERPRINT})):
        status, html, headers = get(console, path)
        assert status == 200
        assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
        assert "<script>window" not in html and "<img src=x" not in html
        assert "<b>latency</b>" not in html and "Checkout &lt;b&gt;latency&lt;/b&gt;" in html
        assert "script-src 'self'" in headers["content-security-policy"]


@pytest.mark.parametrize("query, asked", [
    ("", Query()),
    ("?status=resolved", Query(statuses=("resolved",))),
    ("?severity=critical&provider=keep", Query(severities=("critical",), providers=("keep",))),
    ("?q=description", Query(text="description")),
    ("?environment=production&service=postgres", Query(environment="production",
                                                        service="postgres")),
    ("?since=15m&tenant=default&status=firing", Query(since_seconds=900, tenant="default",
                                                      statuses=("firing",))),
])
def test_the_alert_table_shows_what_the_store_holds(console, query, asked):
    asked.limit = console.cfg.console.page_size
    expected = [a["fingerprint"] for a in search_page(console.cfg, asked).alerts]
    assert expected, "the data set has alerts for every filter here"
    status, html, _ = get(console, "/ui" + query)
    assert status == 200
    assert shown_fingerprints(html) == expected


def test_older_links_walk_every_current_alert_exactly_once(console):
    db = open_reader(console.cfg.sqlite_path)
    stored = {fp for (fp,) in db.execute("SELECT fingerprint FROM alerts_current")}
    db.close()
    assert len(stored) == GENERIC_ALERTS + 3 + 1
    seen, path = [], "/ui"
    while path:
        _, html, _ = get(console, path)
        seen += shown_fingerprints(html)
        found = re.search(r'<a href="(/ui\?[^"]*)" id="older">', html)
        path = found.group(1).replace("&amp;", "&") if found else None
    assert len(seen) == len(stored) and set(seen) == stored


def test_alert_page_shows_versions_enrichments_and_the_raw_payload(console):
    _, html, _ = get(console, "/ui/alert?tenant=default&fingerprint=" + HOSTILE_FINGERPRINT)
    versions = html[html.index('id="versions"'):html.index("Raw payloads")]
    statuses = re.findall(r'<span class="status status-(\w+)">', versions)
    assert statuses == ["firing", "resolved", "firing"]  # newest first
    enrichments = html[html.index('id="enrichments"'):]
    assert "owner" in enrichments and "payments" in enrichments  # service_owners.csv
    raw = html[html.index("Raw payloads"):]
    assert "&#34;fingerprint&#34;: &#34;console-hostile&#34;" in raw


def test_incident_list_and_page_show_the_incident_and_its_alerts(console):
    _, html, _ = get(console, "/ui/incidents")
    link = re.search(r'<a href="(/ui/incident\?id=[^"]+)">Critical on postgres</a>', html)
    assert link, html[-2000:]
    _, page, _ = get(console, link.group(1))
    assert sorted(shown_fingerprints(page)) == ["db-0", "db-1", "db-2"]


def test_dead_letters_show_their_reason_and_replay_needs_the_admin_key(console):
    _, html, _ = get(console, "/ui/dlq")
    assert "not msgpack" in html and 'id="read-only"' in html
    request = urllib.request.Request(console.url + "/ui/dlq/replay", method="POST",
                                     data=b"admin_key=anything&limit=1")
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("a read-only console replayed")
    except urllib.error.HTTPError as exc:
        assert exc.code == 403
    assert console.farm.status()["dead_letters"] == 1


def test_account_in_the_header_is_the_farms_account(console):
    counters = console.farm.status()["counters"]
    _, html, _ = get(console, "/ui")
    for name in ("alerts_received", "alerts_indexed", "alerts_duplicate", "alerts_dead"):
        shown = re.search(rf'data-name="{name}"><dt>[^<]*</dt><dd class="value">(\d+)<', html)
        assert int(shown.group(1)) == counters[name], name
    _, metrics, _ = get(console, "/metrics")
    assert f"farm_stat_alerts_received_total {float(counters['alerts_received'])}" in metrics
