"""The [correlation] section: the rule file that groups alerts into incidents. The file itself is
read and compiled by farm/correlation/rules.py (the supervisor at start, every worker at start
and whenever the file changes)."""

from __future__ import annotations

from farm.config.setting import key, section, toml_file_of


@section("correlation")
class CorrelationSettings:
    rules: str = key("",
            "Correlation rule file (TOML with [[rule]] tables; see "
            "configs/correlation/example.toml) that groups alerts into incidents. Relative to "
            "the folder of this config file; empty means no correlation. Workers reload it "
            "within reload_seconds of a change; a file with problems is reported and the rules "
            "in force stay.", check=toml_file_of("rule"))
    reload_seconds: int = key(5,
            "How often workers look whether the rule file changed.",
            minimum=1, maximum=3600)
    ttl_seconds: int = key(30 * 86_400,
            "How long Redis keeps an incident's state after its last change; an incident "
            "untouched for longer can no longer be joined or resolved (the store keeps it).",
            minimum=3600, maximum=3660 * 86_400)
