"""The console in a real browser (headless Chromium): a person finds an alert by a word of its
description, opens its history, narrows the table with the filters and reads the account; what
each page shows is checked against the store. With CONSOLE_SCREENSHOTS=1 the screenshot
test also rewrites docs/console/*.png."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest
import redis as redis_lib
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys as Key
from selenium.webdriver.support.ui import Select, WebDriverWait

from farm.redis_keys import Keys
from farm.search import Query, search_page, versions
from farm.wire import encode_batch
from tests.support.console_farm import HOSTILE_FINGERPRINT, hostile_alert, start_console_farm

DOCS = Path(__file__).resolve().parents[1] / "docs" / "console"


@pytest.fixture(scope="module")
def console(tmp_path_factory, redis_url):
    started = start_console_farm(tmp_path_factory.mktemp("console-browser"), redis_url)
    yield started
    started.farm.terminate()


def open_page(browser, url: str) -> None:
    browser.get(url)
    WebDriverWait(browser, 60).until(
        lambda b: b.execute_script("return document.readyState") == "complete")


def rows(browser) -> list[str]:
    return [r.get_attribute("data-fingerprint")
            for r in browser.find_elements(By.CSS_SELECTOR, "#alerts tbody tr[data-fingerprint]")]


def expected(console, **asked) -> list[str]:
    query = Query(limit=console.cfg.console.page_size, **asked)
    return [a["fingerprint"] for a in search_page(console.cfg, query).alerts]


def wait_for_url(browser, part: str) -> None:
    WebDriverWait(browser, 60).until(
        lambda b: part in b.current_url
        and b.execute_script("return document.readyState") == "complete")


def test_the_table_lists_what_the_store_holds(browser, console):
    open_page(browser, console.url + "/ui")
    assert rows(browser) == expected(console)


def test_a_word_of_the_description_finds_the_alert_and_its_history(browser, console):
    open_page(browser, console.url + "/ui")
    box = browser.find_element(By.ID, "search")
    box.send_keys("zanzibar", Key.ENTER)
    wait_for_url(browser, "q=zanzibar")
    assert rows(browser) == [HOSTILE_FINGERPRINT] == expected(console, text="zanzibar")
    cell = browser.find_element(By.CSS_SELECTOR, "#alerts td.description")
    assert "<script>window.__pwned = 1</script>" in cell.text  # shown as text
    assert browser.execute_script("return window.__pwned === undefined")  # never run
    browser.find_element(By.CSS_SELECTOR, "#alerts td.name a").click()
    wait_for_url(browser, "/ui/alert")
    assert browser.find_element(By.ID, "alert-name").text == "Checkout <b>latency</b>"
    shown = [c.text for c in browser.find_elements(
        By.CSS_SELECTOR, "#versions tbody tr td:nth-child(4)")]
    stored = versions(console.cfg, "default", HOSTILE_FINGERPRINT, 50)
    assert shown == [v["eventId"] for v in stored] and len(shown) == 3
    raw = browser.find_element(By.ID, "raw-1").text
    assert orjson.loads(raw) == hostile_alert("firing")
    owner = browser.find_element(By.ID, "enrichments").text
    assert "owner payments" in owner


def test_filters_narrow_the_table_as_the_store_does(browser, console):
    open_page(browser, console.url + "/ui")
    browser.find_element(By.CSS_SELECTOR, "#filter-status input[value=resolved]").click()
    wait_for_url(browser, "status=resolved")  # the script applies a ticked box at once
    assert rows(browser) == expected(console, statuses=("resolved",))
    Select(browser.find_element(By.ID, "since")).select_by_value("15m")
    wait_for_url(browser, "since=15m")
    browser.find_element(By.ID, "environment").send_keys("production")
    browser.find_element(By.ID, "apply").click()
    wait_for_url(browser, "environment=production")
    assert rows(browser) == expected(console, statuses=("resolved",), since_seconds=900,
                                     environment="production")
    browser.find_element(By.CSS_SELECTOR, "#filter-severity input[value=critical]").click()
    wait_for_url(browser, "severity=critical")
    assert rows(browser) == expected(console, statuses=("resolved",), since_seconds=900,
                                     environment="production", severities=("critical",))


def test_incident_and_dead_letter_pages(browser, console):
    open_page(browser, console.url + "/ui/incidents")
    browser.find_element(By.LINK_TEXT, "Critical on postgres").click()
    wait_for_url(browser, "/ui/incident?")
    assert sorted(rows(browser)) == ["db-0", "db-1", "db-2"]
    open_page(browser, console.url + "/ui/dlq")
    assert "not msgpack" in browser.find_element(By.ID, "letters").text


def account_value(browser, name: str) -> int:
    return int(browser.find_element(
        By.CSS_SELECTOR, f'#account [data-name="{name}"] .value').text)


def test_the_header_shows_the_account_and_follows_it_live(browser, console):
    open_page(browser, console.url + "/ui")
    counters = console.farm.status()["counters"]
    for name in ("alerts_received", "alerts_indexed", "alerts_duplicate", "alerts_dead",
                 "alerts_maintenance", "events_empty"):
        assert account_value(browser, name) == counters[name], name
    client = redis_lib.Redis.from_url(console.cfg.redis.url)
    client.lpush(Keys(console.prefix).queue("normal"),
                 encode_batch([{"name": "one more", "fingerprint": "one-more"}], "keep"))
    client.close()
    console.farm.wait_drained(expected_received=counters["alerts_received"] + 1)
    WebDriverWait(browser, 60).until(  # the page is not reloaded: its script polls
        lambda b: account_value(b, "alerts_received") == counters["alerts_received"] + 1)


def shoot(browser, url: str, path: Path, height: int | None = None) -> None:
    open_page(browser, url)
    full = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, height or min(max(full, 600), 1600))
    time.sleep(0.3)  # let the resized page lay out before the picture
    browser.save_screenshot(str(path))
    browser.set_window_size(1400, 900)


def test_screenshots_of_every_page(browser, console, tmp_path):
    folder = DOCS if os.environ.get("CONSOLE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    open_page(browser, console.url + "/ui/incidents")
    incident = browser.find_element(By.LINK_TEXT, "Critical on postgres").get_attribute("href")
    pages = {"alerts": "/ui", "search": "/ui?q=zanzibar",
             "filters": "/ui?status=resolved&severity=critical&severity=warning&since=1h",
             "alert": f"/ui/alert?tenant=default&fingerprint={HOSTILE_FINGERPRINT}",
             "incidents": "/ui/incidents", "incident": incident, "dlq": "/ui/dlq"}
    for name, target in pages.items():
        url = target if target.startswith("http") else console.url + target
        shoot(browser, url, folder / f"{name}.png", 900 if name == "alerts" else None)
        assert (folder / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
