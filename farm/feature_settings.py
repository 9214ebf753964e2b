"""The configuration keys each feature declares next to its own code, gathered for farm/config.py.

Add a feature's tuple here; the order is the order of configs/farm.toml and the docs table.
"""

from __future__ import annotations

FEATURE_SETTINGS: tuple = ()
