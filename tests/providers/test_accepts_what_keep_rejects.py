"""Inputs Keep fails and farm stores, each read exactly as
docs/keep-compatibility.md#accepts-what-keep-rejects says."""

from __future__ import annotations

import hashlib

import pytest

from farm.providers import BadEvent, datadog, keep, prometheus

NOW = "2025-03-04T08:15:30.000Z"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_prometheus_null_labels_and_annotations_are_empty_maps():
    [alert] = prometheus.normalize({"alerts": [{"labels": None, "annotations": None}]}, NOW)
    assert alert["labels"] == {} and alert["annotations"] == {}
    assert alert["name"].startswith("alert-") and len(alert["name"]) == len("alert-") + 16
    assert alert["id"] == alert["description"] == alert["name"]
    assert alert["fingerprint"] == sha256(alert["name"])


def test_prometheus_null_annotations_keep_the_alertname():
    alert = {"labels": {"alertname": "DiskFull"}, "annotations": None}
    [made] = prometheus.normalize({"alerts": [alert]}, NOW)
    assert made["name"] == made["id"] == made["description"] == "DiskFull"
    assert made["annotations"] == {}


def test_datadog_scopes_as_a_list_are_the_groups_of_the_same_string():
    listed = datadog.normalize({"title": "CPU", "scopes": ["host:a", "host:b"],
                                "monitor_id": "4"}, NOW)[0]
    joined = datadog.normalize({"title": "CPU", "scopes": "host:a,host:b",
                                "monitor_id": "4"}, NOW)[0]
    assert listed["groups"] == joined["groups"] == ["host:a", "host:b"]
    assert listed["fingerprint"] == joined["fingerprint"]
    empty = datadog.normalize({"title": "CPU", "scopes": [], "monitor_id": "4"}, NOW)[0]
    assert empty["groups"] == ["*"]


def test_keep_numeric_fingerprint_becomes_text_and_zero_counts_as_absent():
    [alert] = keep.normalize({"name": "n", "fingerprint": 12345}, NOW)
    assert alert["fingerprint"] == "12345"
    [alert] = keep.normalize({"name": "n", "fingerprint": 0}, NOW)
    assert alert["fingerprint"] == sha256("n")


def test_keep_missing_or_empty_name_is_the_id_else_unknown_alert_name():
    for event in ({"id": "db-1"}, {"name": "", "id": "db-1"}):
        [alert] = keep.normalize(event, NOW)
        assert alert["name"] == alert["id"] == "db-1"
        assert alert["fingerprint"] == sha256("db-1")
    for event in ({}, {"name": ""}):
        [alert] = keep.normalize(event, NOW)
        assert alert["name"] == alert["id"] == "unknown alert name"


def test_keep_list_event_is_one_alert_per_item_and_each_item_must_be_a_map():
    alerts = keep.normalize([{"name": "a"}, {"name": "b"}], NOW)
    assert [alert["name"] for alert in alerts] == ["a", "b"]
    with pytest.raises(BadEvent, match="a Keep alert must be a map, got list"):
        keep.normalize([{"name": "a"}, [{"name": "b"}]], NOW)


def test_a_list_body_on_any_endpoint_is_one_event_per_item():
    from farm.ingest.limits import events_of

    body = [{"name": "a"}, {"name": "b"}]
    assert events_of(body) == body
