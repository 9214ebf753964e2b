"""Pre-encoded payloads with fixed-width stamp slots, re-stamped without re-encoding.

A provider renders an event once with placeholders (`~S~~~...`, as wide as the value that will
replace it) where the per-version values go (episode start, resolve time, event id...). The
rendering is encoded once (msgpack for the Redis target, JSON for HTTP); `Template.stamp` then
writes real values over the placeholders at known offsets. Widths are fixed, so msgpack and JSON
headers stay valid and the JSON size of a payload never changes with its stamps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

# Slot name -> width. Names appear nowhere else in generated text, and '~' never does.
SLOTS = {
    "S": 24,        # episode start, ISO 8601 UTC with ms: 2026-11-27T08:15:30.123Z
    "R": 24,        # resolve time, same form
    "N": 24,        # notification time, same form
    "LU": 13,       # notification time, epoch milliseconds (Datadog $LAST_UPDATED, $DATE)
    "DDID": 13,     # Datadog event id ($ID), digits
    "DDTRIG": 28,   # episode start as Datadog prints it: Tue Mar 04 2025 08:15:30 UTC
    "ZID": 8,       # Zabbix {EVENT.ID}, digits
    "ZNOW": 19,     # Zabbix "{DATE} {TIME}" of the notification: 2025.03.04 08:15:30
    "ZSTIME": 8,    # Zabbix {EVENT.TIME}: 08:15:30
    "ZSDATE": 10,   # Zabbix {EVENT.DATE}: 2025.03.04
    "ZNTIME": 8,    # notification time of day (recovery messages)
    "ZNDATE": 10,   # notification date (recovery messages)
    "VAL": 8,       # a measured value unique to the version: 1000.000 .. 9999.999 (Grafana)
    "GFROM": 13,    # an hour before the episode start, epoch ms (Grafana's dashboard range)
}


def placeholder(slot: str) -> str:
    """The text a provider puts where `slot` goes."""
    return f"~{slot}~".ljust(SLOTS[slot], "~")


@dataclass(frozen=True)
class Version:
    """What the stamps of one version of an alert group are made from."""

    start: float         # episode start, unix seconds
    resolved: float      # resolve time (meaningful in resolved versions)
    notified: float      # when this version was first notified
    event_id: int        # the provider's event id for this version (Datadog, Zabbix)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def iso_ms(ts: float) -> str:
    t = time.gmtime(ts)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{int(ts * 1000) % 1000:03d}Z")


def _datadog_time(ts: float) -> str:
    t = time.gmtime(ts)
    return (f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} UTC")


def _zdate(ts: float) -> str:
    t = time.gmtime(ts)
    return f"{t.tm_year:04d}.{t.tm_mon:02d}.{t.tm_mday:02d}"


def _ztime(ts: float) -> str:
    t = time.gmtime(ts)
    return f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


_FORMAT = {
    "S": lambda v: iso_ms(v.start),
    "R": lambda v: iso_ms(v.resolved),
    "N": lambda v: iso_ms(v.notified),
    "LU": lambda v: f"{int(v.notified * 1000):013d}",
    "DDID": lambda v: f"{v.event_id:013d}",
    "DDTRIG": lambda v: _datadog_time(v.start),
    "ZID": lambda v: f"{v.event_id % 10**8:08d}",
    "ZNOW": lambda v: f"{_zdate(v.notified)} {_ztime(v.notified)}",
    "ZSTIME": lambda v: _ztime(v.start),
    "ZSDATE": lambda v: _zdate(v.start),
    "ZNTIME": lambda v: _ztime(v.notified),
    "ZNDATE": lambda v: _zdate(v.notified),
    "VAL": lambda v: f"{1000 + v.event_id % 9_000_000 / 1000:8.3f}",
    "GFROM": lambda v: f"{int(v.start * 1000) - 3_600_000:013d}",
}


class Template:
    """Encoded bytes with placeholders, and where each slot's placeholders are."""

    __slots__ = ("data", "patches")

    def __init__(self, data: bytes):
        self.data = data
        patches = []
        for slot in SLOTS:
            mark = placeholder(slot).encode()
            offsets = []
            at = data.find(mark)
            while at >= 0:
                offsets.append(at)
                at = data.find(mark, at + len(mark))
            if offsets:
                patches.append((slot, tuple(offsets)))
        self.patches = tuple(patches)

    def stamp(self, version: Version) -> bytes:
        """The payload with every slot filled from `version`. Raises ValueError if a value
        does not fit its slot (a timestamp past year 9999, an id too long)."""
        if not self.patches:
            return self.data
        buf = bytearray(self.data)
        for slot, offsets in self.patches:
            value = _FORMAT[slot](version).encode()
            if len(value) != SLOTS[slot]:
                raise ValueError(f"stamp {slot}={value!r} does not fit its {SLOTS[slot]} bytes")
            for at in offsets:
                buf[at:at + len(value)] = value
        return bytes(buf)
