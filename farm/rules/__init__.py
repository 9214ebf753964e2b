"""Keep-style rules from configuration: fingerprint and deduplication rules, enrichment."""
