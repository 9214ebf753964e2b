"""The pipeline's correlation step: after enrichment, match every alert that is not a full
duplicate against the correlation rules and decide its incidents in one Redis call per chunk.

The outcome (`Correlated`) travels in the chunk's ring record, so the indexer writes the
incident snapshots and alert links in the same commit as the alerts that caused them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from farm.alert import iso_ms
from farm.correlation.decide import Decider, alert_item
from farm.correlation.matching import RuleIndex, matches
from farm.correlation.rules import CorrelationRule, RuleFile
from farm.dedup import FULL

# A control batch (`{"control": {"resolve_incident": <id>}}`, `acknowledge_incident` or
# `confirm_incident` in the envelope) asks a worker to change incident state through the normal
# write path.
RESOLVE_INCIDENT = "resolve_incident"
ACKNOWLEDGE_INCIDENT = "acknowledge_incident"
CONFIRM_INCIDENT = "confirm_incident"
BY_HAND = {RESOLVE_INCIDENT: "resolve", ACKNOWLEDGE_INCIDENT: "acknowledge",
           CONFIRM_INCIDENT: "confirm"}


@dataclass
class Correlated:
    """Incident rows one chunk produced: snapshots (state after the chunk) and links
    [incident id, fingerprint, eventId, linked at]."""

    snapshots: list[dict] = field(default_factory=list)
    links: list[list] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.snapshots or self.links)


@dataclass
class CorrelationCounts:
    """For the worker's metrics: matches by rule, incident events."""

    matched: dict[str, int] = field(default_factory=dict)
    opened: int = 0
    updated: int = 0
    resolved: int = 0


class Correlation:
    """The rules in force and the Redis decisions; `enabled` is False without a rule file."""

    def __init__(self, cfg, redis, keys):
        self.rule_file = RuleFile(cfg)
        self.decider = Decider(redis, keys, cfg.correlation.ttl_seconds)
        self._specs: dict[str, list] = {}
        self._index = RuleIndex([])
        self._specs_of: list[CorrelationRule] | None = None

    @property
    def enabled(self) -> bool:
        return self.rule_file.path is not None

    def _rules(self) -> tuple[RuleIndex, dict[str, list]]:
        rules = self.rule_file.current()
        if rules is not self._specs_of:
            self._specs = {rule.name: rule.spec() for rule in rules}
            self._index = RuleIndex(rules)
            self._specs_of = rules
        return self._index, self._specs

    def run(self, batch, start: int, items: list[tuple[dict, str]],
            counts: CorrelationCounts, memo_id: str | None = None
            ) -> Callable[[], Correlated] | None:
        """Send the decision on the incidents of one chunk (alerts at positions start.. of the
        batch) and return a function that reads it (Decider.decide: the script runs while the
        worker goes on), sets each alert's `incident` (comma-joined ids) in place and gives the
        chunk's incident rows; None when no alert of the chunk needs a decision. The decisions
        are memoised under `memo_id` (default the batch id; the pipeline's, when maintenance
        windows took alerts). Alerts a maintenance window put in status `maintenance` are held
        back, as Keep does. Both raise redis errors."""
        index, specs = self._rules()
        script_items: list[list] = []
        used: dict[str, list] = {}
        for offset, (alert, decision) in enumerate(items):
            if decision == FULL or alert.get("status") == "maintenance":
                continue
            found = matches(index, alert, batch.tenant) if index.rules else []
            for match in found:
                name = match[0]
                used[name] = specs[name]
                counts.matched[name] = counts.matched.get(name, 0) + 1
            script_items.append(alert_item(start + offset, alert, found))
        if not script_items:
            return None
        decide = self.decider.decide(memo_id or batch.id, batch.tenant, batch.sent_at, start,
                                     start + len(items), script_items, used)

        def correlated() -> Correlated:
            decided = decide()
            counts.opened += decided.opened
            counts.updated += decided.updated
            counts.resolved += decided.resolved
            out = Correlated(snapshots=decided.snapshots)
            linked_at = iso_ms(batch.sent_at)
            for position, (ids, links) in decided.incidents.items():
                alert = items[position - start][0]
                alert["incident"] = ",".join(ids)
                out.links += [[incident, alert["fingerprint"], alert["eventId"], linked_at]
                              for incident in links]
            return out
        return correlated

    def control(self, batch) -> Correlated:
        """Carry out a control batch; unknown commands and unknown incidents do nothing."""
        for command, action in BY_HAND.items():
            incident = batch.control.get(command)
            if isinstance(incident, str):
                snapshot = self.decider.by_hand(action, batch.id, batch.tenant, batch.sent_at,
                                                incident)
                return Correlated(snapshots=[snapshot] if snapshot else [])
        return Correlated()
