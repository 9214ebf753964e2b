"""All rules of a running farm, compiled once, and the slice of them that applies to one batch.

`Rules.for_batch(tenant, provider, provider_id)` gives a `BatchRules`: the fingerprint fields
and content hasher of the deduplication rule in force, and the pre-extraction, post-extraction
and mapping rules of the tenant, each list in Keep's order (descending priority; equal
priorities keep file order). The answer is memoised per scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from farm.alert import BOOKKEEPING_FIELDS, split_fields
from farm.config import Config
from farm.dedup import ContentHasher
from farm.rules.dedup_rules import ALWAYS_IGNORED, DedupRule, parse_rules, select
from farm.rules.extraction import ExtractionRule
from farm.rules.files import load_file
from farm.rules.mapping import MappingRule

# Enrichment never rewrites an alert's identity or farm's bookkeeping: the dedup decision and
# the store's keys were made from them.
PROTECTED_FIELDS = BOOKKEEPING_FIELDS | {"fingerprint"}
SCOPE_MEMO_LIMIT = 10_000


class RuleError(Exception):
    """Rules that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class BatchRules:
    """What applies to the alerts of one (tenant, provider, provider_id)."""

    dedup_rule: str | None                               # name, None for the default rule
    fingerprint_paths: list[tuple[str, ...]] | None      # None: the provider's fingerprint
    hasher: ContentHasher
    pre: tuple[ExtractionRule, ...]
    post: tuple[ExtractionRule, ...]
    mapping: tuple[MappingRule, ...]

    @property
    def enriches(self) -> bool:
        return bool(self.post or self.mapping)


def config_relative(cfg: Config, name: str) -> Path:
    """A file named in the config: relative to the config file's folder (or the working
    directory when there is no config file)."""
    if Path(name).is_absolute():
        return Path(name)
    base = Path(cfg.source).resolve().parent if getattr(cfg, "source", None) else Path.cwd()
    return (base / name).resolve()


def rule_paths(cfg: Config) -> list[Path]:
    """The configured rule files; relative paths are relative to the config file's folder."""
    return [config_relative(cfg, name) for name in cfg.enrichment.files]


def _ordered(rules: list) -> tuple:
    return tuple(sorted(rules, key=lambda r: -r.priority))  # sorted() is stable


def _for_tenant(rules: tuple, tenant: str) -> tuple:
    return tuple(r for r in rules if r.tenants is None or tenant in r.tenants)


class Rules:
    """Every configured rule, compiled. Build with `Rules.from_config(cfg)`."""

    def __init__(self, dedup_rules: list[DedupRule], default_ignore: list[str],
                 extraction: list[ExtractionRule], mapping: list[MappingRule],
                 enrichment_enabled: bool = True):
        self.dedup_rules = dedup_rules
        self.default_ignore = tuple(dict.fromkeys((ALWAYS_IGNORED, *default_ignore)))
        self.pre = _ordered([r for r in extraction if r.pre]) if enrichment_enabled else ()
        self.post = _ordered([r for r in extraction if not r.pre]) if enrichment_enabled else ()
        self.mapping = _ordered(mapping) if enrichment_enabled else ()
        self._hashers: dict[tuple[str, ...], ContentHasher] = {}
        self._scopes: dict[tuple, BatchRules] = {}

    @classmethod
    def from_config(cls, cfg) -> Rules:
        """Read and compile every rule file. Raises RuleError listing every problem."""
        problems: list[str] = []
        try:
            dedup_rules = parse_rules(cfg.dedup.rules)
        except ValueError as exc:
            dedup_rules = []
            problems.append(f"[dedup] rules: {exc}")
        extraction: list[ExtractionRule] = []
        mapping: list[MappingRule] = []
        if cfg.enrichment.enabled:
            for path in rule_paths(cfg):
                found_extraction, found_mapping, found_problems = load_file(path)
                extraction += found_extraction
                mapping += found_mapping
                problems += found_problems
        if problems:
            raise RuleError(problems)
        return cls(dedup_rules, cfg.dedup.ignore_fields, extraction, mapping,
                   cfg.enrichment.enabled)

    def hasher(self, ignore_fields: tuple[str, ...]) -> ContentHasher:
        hasher = self._hashers.get(ignore_fields)
        if hasher is None:
            hasher = self._hashers[ignore_fields] = ContentHasher(list(ignore_fields))
        return hasher

    def for_batch(self, tenant: str, provider: str, provider_id: str | None = None
                  ) -> BatchRules:
        key = (tenant, provider, provider_id)
        found = self._scopes.get(key)
        if found is not None:
            return found
        rule = select(self.dedup_rules, tenant, provider, provider_id)
        if rule is None:
            name, paths, ignore = None, None, self.default_ignore
        else:
            name = rule.name
            paths = split_fields(list(rule.fingerprint_fields)) or None
            ignore = rule.effective_ignore_fields()
        found = BatchRules(dedup_rule=name, fingerprint_paths=paths, hasher=self.hasher(ignore),
                           pre=_for_tenant(self.pre, tenant), post=_for_tenant(self.post, tenant),
                           mapping=_for_tenant(self.mapping, tenant))
        if len(self._scopes) >= SCOPE_MEMO_LIMIT:
            self._scopes.clear()
        self._scopes[key] = found
        return found
