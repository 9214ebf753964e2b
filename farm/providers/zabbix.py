"""Zabbix webhooks (the media type script Keep installs), mapped as Keep's ZabbixProvider does.

docs/keep-compatibility.md#zabbix. One event is one flat map; every key Keep does not consume is
kept.

Deliberate differences:
- fingerprint: Keep hashes the problem name alone, so one problem name on every host collapses
  into one alert ([quirk], keephq/keep#4766). farm hashes name then host, which is Keep's own
  field-list fingerprint over ["name", "service"]; a `[[dedup.rules]]` entry with
  fingerprint_fields = ["name"] restores Keep's behaviour.
- `lastReceived` ("{DATE} {TIME}", naive) is taken as UTC (Keep: the server's local zone); a
  value in another format is read as Keep reads lastReceived, else it is the ingestion time
  (Keep fails the event).
- unreadable `tags` (not a JSON list of {tag, value}) become {} instead of failing the event,
  and an item whose `tag` is missing or not a string is left out;
  an event without `id` gets its name as id (Keep invents a random uuid).
"""

from __future__ import annotations

import json
from datetime import datetime

from farm.alert import fields_fingerprint, iso_of, keep_url, new_alert, normalize_time, split_fields
from farm.providers.errors import BadEvent

SEVERITIES = {0: "low", 1: "info", 2: "warning", 3: "warning", 4: "high", 5: "critical"}
SEVERITY_NAMES = {"not_classified": 0, "not classified": 0, "information": 1, "warning": 2,
                  "average": 3, "high": 4, "disaster": 5}
STATUSES = {"problem": "firing", "ok": "resolved", "resolved": "resolved",
            "acknowledged": "acknowledged", "suppressed": "suppressed"}
FINGERPRINT_FIELDS = split_fields(["name", "service"])
UNSET_URL = "{$ZABBIX.URL}"
TEST_TIME = "{DATE} {TIME}"
# Keys farm sets itself; a key of the same name in the event does not replace them (Keep fails
# the event on the duplicate keyword).
_OWN_FIELDS = frozenset({"environment", "pushed", "source", "severity", "status", "url",
                         "lastReceived", "tags", "hostname", "service", "ip_address"})


def normalize(event: dict, now: str) -> list[dict]:
    if not isinstance(event, dict):
        raise BadEvent(f"a Zabbix event must be a map, got {type(event).__name__}")
    name = event.get("name")
    if name is None or name == "":
        raise BadEvent("a Zabbix event without 'name' ({EVENT.NAME}) has no alert name "
                       "(Keep rejects it too)")
    tags = _tags(event.get("tags", "[]"))
    environment = tags.pop("environment", "unknown")
    if environment is None:
        environment = "unknown"
    event_id = event.get("id")
    trigger_id = event.get("triggerId")
    zabbix_url = event.get("url")
    if zabbix_url == UNSET_URL:
        zabbix_url = None
    url = None
    if event_id and trigger_id and zabbix_url:
        url = f"{zabbix_url}/tr_events.php?triggerid={trigger_id}&eventid={event_id}"
    hostname = event.get("service") or event.get("hostName")
    status_text = event.get("status", "")
    status = STATUSES.get(status_text.lower() if isinstance(status_text, str) else "", "firing")
    update_action = event.get("update_action", "")
    if isinstance(update_action, str):
        if update_action == "acknowledged":
            status = "acknowledged"
        elif "suppressed" in update_action:
            status = "suppressed"

    alert = new_alert(str(name), now)
    for key, value in event.items():
        if key not in _OWN_FIELDS:
            alert[key] = value
    alert["name"] = str(name)
    alert["id"] = str(event_id) if event_id else alert["name"]
    alert["environment"] = environment
    alert["pushed"] = True
    alert["source"] = ["zabbix"]
    alert["severity"] = severity_of(event.get("severity", 1))
    alert["status"] = status
    alert["url"] = keep_url(url)
    alert["lastReceived"] = _last_received(event.get("lastReceived"), now)
    alert["tags"] = tags
    alert["hostname"] = hostname
    alert["service"] = hostname
    alert["ip_address"] = event.get("hostIp")
    given = alert.get("fingerprint")
    alert["fingerprint"] = (str(given)[:255] if given
                            else fields_fingerprint(alert, FINGERPRINT_FIELDS))
    return [alert]


def severity_of(value: object) -> str:
    """{EVENT.SEVERITY} as a number 0..5 or a name; anything else is info."""
    if isinstance(value, int):
        return SEVERITIES.get(value, "info")
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and 0 <= int(text) <= 5:
            return SEVERITIES[int(text)]
        return SEVERITIES[SEVERITY_NAMES.get(text.lower(), 1)]
    return "info"


def _tags(raw: object) -> dict:
    """{EVENT.TAGSJSON}: a JSON list of {"tag", "value"} -> {tag: value}."""
    items = raw
    if isinstance(raw, (str, bytes)):
        try:
            items = json.loads(raw)
        except ValueError:
            return {}
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return {}
    # An item without a string tag has no usable key (None is no map key a store can write).
    return {item["tag"]: item.get("value") for item in items if isinstance(item.get("tag"), str)}


def _last_received(raw: object, now: str) -> str:
    if raw is None or raw == TEST_TIME:
        return now
    if isinstance(raw, str):
        try:
            return iso_of(datetime.strptime(raw, "%Y.%m.%d %H:%M:%S"))
        except ValueError:
            pass
    return normalize_time(raw, now)
