"""Keep's deduplication rules from `[[dedup.rules]]`
(docs/keep-compatibility.md#deduplication-rules).

A rule names a provider, optionally a tenant and a provider_id, and says how alerts of that
scope are fingerprinted (fingerprint_fields) and which fields their content hash leaves out
(ignore_fields). Exactly one rule applies to a batch: the most specific that matches, else the
implicit default rule (`[dedup] ignore_fields`, the provider's own fingerprint).

Deliberate differences from Keep, each what a rule's author obviously meant:
- lastReceived is always left out of the hash (Keep: a full rule whose ignore_fields lack it
  never finds a full duplicate, since most providers stamp lastReceived with ingestion time);
- a rule without fingerprint_fields keeps the provider's fingerprint (Keep: the alert's *name*,
  unhashed, which collapses every alert of one name into one);
- a rule may leave out tenant or provider_id to cover every tenant or provider id;
- fingerprint rules apply to the generic `keep` provider too (Keep ignores them on
  /alerts/event, keephq/keep#6793).
"""

from __future__ import annotations

from dataclasses import dataclass

from farm.wire import PROVIDERS

ALLOWED_KEYS = ("name", "provider", "tenant", "provider_id", "fingerprint_fields",
                "ignore_fields", "full_deduplication")
ALWAYS_IGNORED = "lastReceived"


@dataclass(frozen=True)
class DedupRule:
    """One rule as configured, checked."""

    name: str
    provider: str
    tenant: str | None
    provider_id: str | None
    fingerprint_fields: tuple[str, ...]
    ignore_fields: tuple[str, ...]
    full_deduplication: bool

    def matches(self, tenant: str, provider: str, provider_id: str | None) -> bool:
        return (self.provider == provider
                and self.tenant in (None, tenant)
                and self.provider_id in (None, provider_id))

    @property
    def specificity(self) -> int:
        return (2 if self.tenant is not None else 0) + (1 if self.provider_id is not None else 0)

    def effective_ignore_fields(self) -> tuple[str, ...]:
        """What the hash leaves out: Keep replaces a partial rule's list with lastReceived."""
        fields = self.ignore_fields if self.full_deduplication else ()
        return tuple(dict.fromkeys((ALWAYS_IGNORED, *fields)))


def _string_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def parse_rule(table: object, number: int) -> DedupRule:
    """One [[dedup.rules]] table -> DedupRule. Raises ValueError naming the rule and the fix."""
    where = f"rule #{number}"
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table ([[dedup.rules]])")
    name = table.get("name")
    if name is not None:
        if not isinstance(name, str):
            raise ValueError(f"{where}: name must be a string")
        where = f"rule #{number} ({name!r})"
    unknown = [k for k in table if k not in ALLOWED_KEYS]
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(ALLOWED_KEYS)}")
    provider = table.get("provider")
    if provider not in PROVIDERS:
        raise ValueError(f"{where}: provider {provider!r} must be one of {', '.join(PROVIDERS)}")
    for key in ("tenant", "provider_id"):
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{where}: {key} must be a non-empty string (leave it out to mean "
                             f"any)")
    for key in ("fingerprint_fields", "ignore_fields"):
        if key in table and not _string_list(table[key]):
            raise ValueError(f"{where}: {key} must be a list of field names (dotted paths)")
    full = table.get("full_deduplication", True)
    if not isinstance(full, bool):
        raise ValueError(f"{where}: full_deduplication must be true or false")
    ignore = tuple(table.get("ignore_fields", ()))
    if not full and [f for f in ignore if f != ALWAYS_IGNORED]:
        raise ValueError(f"{where}: ignore_fields has no effect with full_deduplication = false "
                         f"(Keep then ignores only lastReceived); drop one of the two")
    return DedupRule(name=name or f"{provider} rule #{number}", provider=provider,
                     tenant=table.get("tenant"), provider_id=table.get("provider_id"),
                     fingerprint_fields=tuple(table.get("fingerprint_fields", ())),
                     ignore_fields=ignore, full_deduplication=full)


def parse_rules(value: object) -> list[DedupRule]:
    """The whole [[dedup.rules]] array. Raises ValueError on the first problem."""
    if not isinstance(value, list):
        raise ValueError("must be an array of tables ([[dedup.rules]])")
    rules = [parse_rule(table, n) for n, table in enumerate(value, 1)]
    seen: dict[tuple, str] = {}
    for rule in rules:
        scope = (rule.provider, rule.tenant, rule.provider_id)
        if scope in seen:
            raise ValueError(f"rules {seen[scope]!r} and {rule.name!r} both cover provider "
                             f"{rule.provider!r}, tenant {rule.tenant or 'any'!r}, provider_id "
                             f"{rule.provider_id or 'any'!r}; keep one")
        seen[scope] = rule.name
    return rules




def select(rules: list[DedupRule], tenant: str, provider: str,
           provider_id: str | None) -> DedupRule | None:
    """The most specific rule covering this scope, or None (the default rule applies)."""
    best = None
    for rule in rules:
        if rule.matches(tenant, provider, provider_id) and (
                best is None or rule.specificity > best.specificity):
            best = rule
    return best
