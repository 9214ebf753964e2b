"""The [console] section: the web console at /ui on the supervisor's HTTP server
(farm/console/)."""

from __future__ import annotations

import re

# A key of this section is named `key`: inside the class it would hide the declaring function.
from farm.config.setting import key as declare
from farm.config.setting import section

_HASH = re.compile(r"sha256:[0-9a-f]{64}")


def _key_hash(value: str) -> str | None:
    if value and not _HASH.fullmatch(value):
        return ("must be empty or \"sha256:<64 hex digits>\"; `farm console key` makes a key "
                "and prints its hash")
    return None


@section("console")
class ConsoleSettings:
    enabled: bool = declare(True,
            "Serve the web console at /ui on [supervisor] http.")
    key: str = declare("",
            "Hash (\"sha256:<hex>\") of the key that opens the console. Empty: the console is "
            "open without a key while [supervisor] http is a loopback address, and closed on "
            "any other address. `farm console key` makes one.",
            check=_key_hash)
    admin_key: str = declare("",
            "Hash (\"sha256:<hex>\") of the key that allows the console's write actions "
            "(replaying dead letters). Empty: the console is read-only.",
            check=_key_hash)
    page_size: int = declare(50,
            "Rows per page of the console's tables.",
            minimum=5, maximum=500)
    query_seconds: float = declare(3.0,
            "Longest one console query may run; a slower one is stopped and the page asks for "
            "a narrower filter (a time range, search words).",
            minimum=0.1, maximum=60)
