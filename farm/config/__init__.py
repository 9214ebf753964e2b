"""Configuration: every key declared once, loaded from TOML, overridden by FARM_<SECTION>_<KEY>.

    setting.py   how a key is declared (a field of its section's frozen dataclass)
    core.py      [farm] [redis] [workers] [store] [supervisor]
    maintenance.py  [maintenance]
    rules.py     [dedup] [enrichment]
    correlation.py  [correlation]
    ingest.py    [ingest], and the parsers the gateway shares with its keys
    notify.py    [notify] (the outbound webhook)
    console.py   [console] (the web console at /ui)
    loader.py    load() -> Config, ConfigError
    docs.py      python -m farm.config.docs: configs/farm.toml and docs/configuration.md's table

A new feature declares its section in a module here, imports it in loader.py and adds it as a
field of `Config`.
"""

from __future__ import annotations

from farm.config.loader import Config, ConfigError, load
from farm.config.setting import SETTINGS, Setting

__all__ = ["SETTINGS", "Config", "ConfigError", "Setting", "load"]
