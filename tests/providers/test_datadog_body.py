"""Datadog's body parse (`extra_details`, docs/keep-compatibility.md#datadog): Keep's regexes'
results, read from a bounded prefix of the body, in linear time (a body is sender-controlled, up to
10 MB)."""

from __future__ import annotations

import random
import re

import pytest

from farm.providers.datadog import BODY_PARSE_CHARS, extra_details

# Keep's DatadogProvider patterns, the reference for the fields they fill.
KEEP_PATTERNS = {
    "metric_graph_url": re.compile(r"\[!\[Metric Graph\]\((.*?)\)\]"),
    "trigger_time": re.compile(r"The monitor was last triggered at (.*?)\."),
    "monitor_status_url": re.compile(r"\[Monitor Status\]\((.*?)\)"),
    "edit_monitor_url": re.compile(r"\[Edit Monitor\]\((.*?)\)"),
    "related_logs_url": re.compile(r"\[Related Logs\]\((.*?)\)"),
}
PIECES = ["[![Metric Graph](", ")]", ")", "]", "(", ".", "\n", "x", "https://a/b?q=avg(c)",
          "The monitor was last triggered at ", "[Monitor Status](", "[Edit Monitor](",
          "[Related Logs](", " ", "%"]


def keep_fields(body: str) -> dict:
    text = body.strip("%\n")
    found = {key: pattern.search(text) for key, pattern in KEEP_PATTERNS.items()}
    return {key: match.group(1) if match else None for key, match in found.items()}


def farm_fields(body: str) -> dict:
    details = extra_details(body)
    return {key: details[key] for key in KEEP_PATTERNS}


@pytest.mark.parametrize("body", [
    "%%%\nCPU high\n[![Metric Graph](https://p.dd/graph?q=avg(cpu))](https://app.dd/m/1)\n"
    "The monitor was last triggered at Tue Mar 04 2025 08:15:30 UTC.\n"
    "[[Monitor Status](https://app.dd/s/1)] · [[Edit Monitor](https://app.dd/e/1)] · "
    "[[Related Logs](https://app.dd/l/1)]\n%%%",
    "[![Metric Graph](no closing on this line\n[![Metric Graph](second)]",
    "[![Metric Graph](" * 500 + "\n" + "[![Metric Graph](" * 500 + "x)]",
    "The monitor was last triggered at no dot\nThe monitor was last triggered at ok.",
    "[Monitor Status]()",
])
def test_body_fields_are_what_keeps_regexes_find(body):
    assert farm_fields(body) == keep_fields(body)


def test_body_fields_match_keeps_regexes_on_random_bodies():
    rng = random.Random(5354)
    for _ in range(3000):
        body = "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 30)))
        assert farm_fields(body) == keep_fields(body), body


def test_only_the_first_body_parse_chars_are_read():
    link = "[Monitor Status](https://app.dd/s/1)"
    inside = "x" * (BODY_PARSE_CHARS - len(link)) + link
    assert extra_details(inside)["monitor_status_url"] == "https://app.dd/s/1"
    beyond = "x" * BODY_PARSE_CHARS + link + " @ops"
    details = extra_details(beyond)
    assert details["monitor_status_url"] is None and details["mentioned_users"] == []


def test_a_body_of_repeated_link_openings_yields_no_link():
    """The body that made Keep's lazy regexes quadratic: ten megabytes of openings."""
    details = extra_details("[![Metric Graph](" * (10_000_000 // 17))
    assert details["metric_graph_url"] is None and details["imageUrl"] is None
