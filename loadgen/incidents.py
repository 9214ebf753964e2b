"""`--verify` under `--profile incident-storm`: the incidents the storm rule must produce, from
loadgen's own send log, held against the incidents the store holds.

What the send log says (loadgen/storm.py): storm alert j of host h fired in wave w (version 2w)
and resolved in it (version 2w + 1). The shipped rule (configs/correlation/storm.toml) groups
by `labels.host` and resolves an incident when all its alerts are resolved, so for each host
and wave in which some of its alerts fired, exactly one incident must exist:

- its members: the fingerprints that fired in that wave, each linked by its fire's eventId;
- its alerts_count: how many they are;
- its status: resolved when every member was resolved in the wave, else firing;
- its visibility: alerts_count >= the rule's threshold;
- same_incident_in_the_past_id: the host's incident of its previous wave (none for its first).

When a host's fires of one wave are spread over longer than the rule's timeframe, an incident
may expire between two of them and the wave's alerts then split into several incidents, at
points that depend on how batches fall; a resolve matching the rule may then also join the
newest of them, as a resolved member. The check is then of what holds however they split:
each alert that fired is linked by its fire to exactly one of the wave's incidents, and each
incident's count, status and visibility agree with its own links. A wave in which a storm alert was
dead-lettered, or a run in which maintenance windows dropped alerts (loadgen/verify.py), cannot
be predicted: the check is skipped and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from farm.correlation.rules import load_file, rule_path
from loadgen import storm
from loadgen.population import INDEX_SHIFT, MEMBER_SHIFT, STORM_INDEX
from loadgen.stores import StoredIncident, StoreReader

LISTED = 1000          # most incidents listed per finding in the report
VERSION_MASK = (1 << MEMBER_SHIFT) - 1


@dataclass(frozen=True)
class StormRule:
    """What the verifier takes from the farm's storm rule."""

    threshold: int
    timeframe: int


def storm_rule_of(cfg) -> StormRule:
    """The farm's storm rule (by name, from its [correlation] rules). Raises ValueError, one
    line saying what to configure, when it is missing or groups other than the verifier
    predicts."""
    ship = "configs/correlation/storm.toml"
    path = rule_path(cfg)
    if path is None:
        raise ValueError(f"--profile incident-storm --verify checks incidents, and the farm has "
                         f"no correlation rules: set [correlation] rules = \"{ship}\" (a copy "
                         f"of it) and restart the farm")
    rules, problems = load_file(path)
    if problems:
        raise ValueError(problems[0])
    rule = next((r for r in rules if r.name == storm.RULE_NAME), None)
    if rule is None:
        raise ValueError(f"{path} has no enabled rule named {storm.RULE_NAME!r}; add the one in "
                         f"{ship} (and restart the farm)")
    if (rule.grouping != (("labels", "host"),) or rule.resolve_on != "all"
            or rule.create_on_all or rule.require_approve or rule.multi_level
            or rule.tenants is not None):
        raise ValueError(f"rule {storm.RULE_NAME!r} in {path} must group by labels.host with "
                         f"resolve_on = \"all\", create_on = \"any\", no approval, no "
                         f"multi-level and no tenants, as in {ship}; only its threshold and "
                         f"timeframe may differ")
    return StormRule(rule.threshold, rule.timeframe)


@dataclass
class IncidentCheck:
    """The incidents found against the incidents predicted."""

    checked: bool = True
    note: str = ""
    exact: bool = True
    expected: int = 0
    expected_resolved: int = 0
    expected_visible: int = 0
    stored: int = 0
    stored_resolved: int = 0
    stored_visible: int = 0
    missing: list = field(default_factory=list)      # {host, wave, fingerprints}
    surplus: list = field(default_factory=list)      # {id, group_key, reason}
    mismatched: list = field(default_factory=list)   # {id, host, wave, problems}
    missing_count: int = 0
    surplus_count: int = 0
    mismatched_count: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing_count or self.surplus_count or self.mismatched_count)

    def skip(self, note: str) -> None:
        """The check cannot be made after all: no findings, and why."""
        self.checked, self.note = False, note
        for kind in ("missing", "surplus", "mismatched"):
            setattr(self, kind, [])
            setattr(self, f"{kind}_count", 0)

    def add(self, kind: str, item: dict) -> None:
        setattr(self, f"{kind}_count", getattr(self, f"{kind}_count") + 1)
        listed = getattr(self, kind)
        if len(listed) < LISTED:
            listed.append(item)


@dataclass
class _Wave:
    """One host's alerts in one wave: which fired, which then resolved."""

    fired: set = field(default_factory=set)
    resolved: set = field(default_factory=set)


@dataclass
class _Found:
    """A stored incident read back: the storm alerts its links name, and what is wrong."""

    incident: StoredIncident
    host: int
    alerts: set = field(default_factory=set)       # every alert it links
    by_fire: set = field(default_factory=set)      # the alerts linked by their fire
    waves: set = field(default_factory=set)
    problems: list = field(default_factory=list)


class StormLedger:
    """What check_incidents needs of the alert account: the send logs and, per producer, one
    flag per alert sent (2: dead-lettered), and a way from an eventId to its alert's key."""

    def __init__(self, logs: list, flags: dict, key_of):
        self.logs = logs
        self.flags = flags
        self.key_of = key_of        # eventId -> version key, or None if the run never sent it


def check_incidents(ledger: StormLedger, spec: storm.StormSpec, planned: float, rule: StormRule,
                    reader: StoreReader, tenant: str) -> IncidentCheck:
    """Predict the storm's incidents from the send logs and compare with the store."""
    out = IncidentCheck()
    tags = {log.storm_tag for log in ledger.logs if log.storm_tag}
    if len(tags) != 1:
        out.checked, out.note = False, "no storm was sent"
        return out
    tag = tags.pop()
    expected, dead = _expected(ledger, spec)
    found = _found(reader.incidents(tenant, storm.RULE_NAME, f"storm-{tag}-h"), ledger, spec,
                   tag, out)
    out.stored = len(found) + out.surplus_count
    out.stored_resolved = sum(f.incident.status == "resolved" for f in found)
    out.stored_visible = sum(f.incident.is_visible for f in found)
    if dead:
        out.skip(f"{dead:,} storm alerts were dead-lettered, so the incidents they would have "
                 f"changed cannot be predicted: not checked")
        return out
    spread = storm.fire_phase_seconds(planned, spec)
    out.exact = spread < rule.timeframe
    if not out.exact:
        out.note = (f"a host's fires of one wave are spread over {spread:.0f} s, longer than "
                    f"the rule's timeframe ({rule.timeframe} s): a wave may split into several "
                    f"incidents, so what holds however it splits was checked")
    _compare(expected, found, rule, tag, out)
    return out


def _expected(ledger: StormLedger, spec: storm.StormSpec) -> tuple[dict, int]:
    """{(host, wave): _Wave} from the send logs, and how many storm alerts were
    dead-lettered."""
    waves: dict[tuple[int, int], _Wave] = {}
    dead = 0
    for log in ledger.logs:
        flags = ledger.flags[log.producer]
        for ordinal, key in enumerate(log.keys):
            index = key >> INDEX_SHIFT
            if index < storm.FIRST_INDEX or index == STORM_INDEX:
                continue
            if flags[ordinal] == 2:
                dead += 1
                continue
            host, alert = storm.where(index, spec.alerts)
            version = key & VERSION_MASK
            slot = waves.setdefault((host, version // 2), _Wave())
            (slot.resolved if version % 2 else slot.fired).add(alert)
    return waves, dead


def _found(incidents: list[StoredIncident], ledger: StormLedger, spec: storm.StormSpec,
           tag: str, out: IncidentCheck) -> list[_Found]:
    """The stored incidents of this run's storm, each with the alerts and waves its links
    name; one that names no storm alert of this run is surplus."""
    prefix = f"storm-{tag}-h"
    found = []
    for incident in incidents:
        number = incident.group_key[len(prefix):]
        if not number.isdigit() or int(number) >= spec.hosts:
            out.add("surplus", {"id": incident.id, "group_key": incident.group_key,
                                "reason": "its group key is no storm host of this run"})
            continue
        seen = _Found(incident, int(number))
        for fp, event_id in incident.links:
            _read_link(seen, fp, event_id, ledger, spec, tag)
        if not seen.waves:
            out.add("surplus", {"id": incident.id, "group_key": incident.group_key,
                                "reason": "it links no storm alert this run sent"})
            continue
        if len(seen.waves) > 1:
            seen.problems.append(f"it links alerts of waves {sorted(seen.waves)}")
        found.append(seen)
    return found


def _read_link(seen: _Found, fp: str, event_id: str, ledger: StormLedger,
               spec: storm.StormSpec, tag: str) -> None:
    key = ledger.key_of(event_id)
    at = storm.where(key >> INDEX_SHIFT, spec.alerts) if key is not None else None
    if at is None:
        seen.problems.append(f"fingerprint {fp} is linked by {event_id}, which is no storm "
                             f"alert this run sent")
        return
    host, alert = at
    if host != seen.host or storm.fingerprint(tag, host, alert) != fp:
        seen.problems.append(f"fingerprint {fp} is linked by {event_id}, which carried "
                             f"{storm.fingerprint(tag, host, alert)} of host {host}")
        return
    seen.alerts.add(alert)
    if key & 1 == 0:
        seen.by_fire.add(alert)
    seen.waves.add((key & VERSION_MASK) // 2)


def _compare(expected: dict, found: list[_Found], rule: StormRule, tag: str,
             out: IncidentCheck) -> None:
    by_slot: dict[tuple[int, int], list[_Found]] = {}
    for f in found:
        by_slot.setdefault((f.host, min(f.waves)), []).append(f)
    previous: dict[int, str | None] = {}    # host -> its last wave's incident id (None: lost)
    for (host, wave), want in sorted(expected.items()):
        if not want.fired:
            continue   # resolves only: the run started mid-wave? never by construction
        out.expected += 1
        out.expected_resolved += want.fired <= want.resolved
        out.expected_visible += len(want.fired) >= rule.threshold
        got = sorted(by_slot.pop((host, wave), []), key=lambda f: -len(f.alerts))
        if not got:
            out.add("missing", {"host": storm.host_name(tag, host), "wave": wave,
                                "fingerprints": sorted(storm.fingerprint(tag, host, a)
                                                       for a in want.fired)})
            previous[host] = None
            continue
        if out.exact:
            for extra in got[1:]:
                out.add("surplus", {"id": extra.incident.id,
                                    "group_key": extra.incident.group_key,
                                    "reason": f"a second incident for wave {wave}"})
            _judge(got[0], want, want.fired, rule, tag, previous.get(host, ""), out, wave)
        else:
            _judge_split(got, want, rule, tag, out, wave)
        previous[host] = got[0].incident.id
    for extras in by_slot.values():
        for extra in extras:
            out.add("surplus", {"id": extra.incident.id, "group_key": extra.incident.group_key,
                                "reason": f"no storm alert of {storm.host_name(tag, extra.host)}"
                                          f" fired in wave {min(extra.waves)}"})


def _judge(f: _Found, want: _Wave, members: set, rule: StormRule, tag: str,
           past: str | None, out: IncidentCheck, wave: int) -> None:
    """One stored incident against the members it must have."""
    problems = list(f.problems)
    inc = f.incident
    if f.alerts != members:
        fps = [storm.fingerprint(tag, f.host, a) for a in sorted(members - f.alerts)]
        extra = [storm.fingerprint(tag, f.host, a) for a in sorted(f.alerts - members)]
        problems.append(f"members differ: {len(fps)} not linked {fps[:5]}, "
                        f"{len(extra)} linked but not fired {extra[:5]}")
    if inc.alerts_count != len(members):
        problems.append(f"alerts_count {inc.alerts_count}, expected {len(members)}")
    status = "resolved" if members <= want.resolved else "firing"
    if inc.status != status:
        problems.append(f"status {inc.status}, expected {status}")
    visible = len(members) >= rule.threshold
    if inc.is_visible != visible:
        problems.append(f"is_visible {inc.is_visible}, expected {visible} (threshold "
                        f"{rule.threshold})")
    if past is not None and inc.past_id != past:
        problems.append(f"same_incident_in_the_past_id {inc.past_id or 'none'}, expected "
                        f"{past or 'none'}")
    if problems:
        out.add("mismatched", {"id": inc.id, "host": inc.group_key, "wave": wave,
                               "problems": problems})


def _judge_split(got: list[_Found], want: _Wave, rule: StormRule, tag: str,
                 out: IncidentCheck, wave: int) -> None:
    """A wave that may have split: every fired alert linked by its fire to exactly one of its
    incidents, each incident consistent with its own links."""
    union: set = set()
    for f in got:
        if union & f.by_fire:
            f.problems.append("it links by their fire alerts another incident of its wave "
                              "links by theirs")
        union |= f.by_fire
        _judge(f, want, f.alerts, rule, tag, None, out, wave)
    if union != want.fired:
        first = got[0].incident
        missing = [storm.fingerprint(tag, got[0].host, a) for a in sorted(want.fired - union)]
        out.add("mismatched", {"id": first.id, "host": first.group_key, "wave": wave,
                               "problems": [f"the wave's incidents do not link all its fired "
                                            f"alerts by their fire: {len(missing)} missing "
                                            f"{missing[:5]}"]})
