"""The configuration keys each feature declares next to its own code, gathered for farm/config.py.

The order here is the order of configs/farm.toml and of the docs table. Feature settings modules
must import nothing but farm.setting (farm/config.py imports them while it loads).
"""

from __future__ import annotations

from farm.correlation.settings import SETTINGS as CORRELATION_SETTINGS
from farm.ingest.settings import SETTINGS as INGEST_SETTINGS
from farm.rules.settings import SETTINGS as RULES_SETTINGS

FEATURE_SETTINGS: tuple = (*RULES_SETTINGS, *CORRELATION_SETTINGS, *INGEST_SETTINGS)
