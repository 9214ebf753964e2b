"""What a Redis server reports of its own work, for the benches that measure it."""

from __future__ import annotations

from collections import Counter


def cpu_seconds(client) -> float:
    """Redis's own CPU time so far (user + system, main thread and the rest)."""
    info = client.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def command_calls(client) -> Counter:
    """Calls so far per command (INFO commandstats), by lower-case command name; commands a
    Lua script runs count too, under their own names."""
    return Counter({name.removeprefix("cmdstat_"): stats["calls"]
                    for name, stats in client.info("commandstats").items()})
