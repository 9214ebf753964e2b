"""Configuration: every key declared once, loaded from TOML, overridden by FARM_<SECTION>_<KEY>.

`SETTINGS` is the single declaration of every key (type, default, bounds, help). The shipped
`configs/farm.toml` and the table in `docs/configuration.md` are generated from it
(`python -m farm.config_docs`) and a test checks they are current.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from farm.setting import Setting, host_port, size


class ConfigError(Exception):
    """One or more configuration mistakes; str() gives one line per mistake."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


CORE_SETTINGS: tuple[Setting, ...] = (
    # [farm]
    Setting("farm", "data_dir", "farm-data",
            "Folder for the embedded Redis, the SQLite store, metrics files and the pid file. "
            "Relative paths are relative to the working directory."),
    Setting("farm", "node_id", "",
            "Name of this host among farms that share one Redis; worker ids are <node_id>.<slot>. "
            "Empty means the host name."),
    Setting("farm", "log_level", "info", "Logging level.",
            choices=("debug", "info", "warning", "error")),
    # [redis]
    Setting("redis", "url", "",
            "Redis URL (redis://, rediss:// or unix://). Empty: farm runs its own Redis server "
            "with append-only persistence in data_dir."),
    Setting("redis", "prefix", "farm", "Prefix of every Redis key farm uses."),
    # [workers]
    Setting("workers", "count", 0,
            "Worker processes; 0 means one per CPU. `farm start --workers N` overrides it.",
            kind=int, minimum=0, maximum=1024),
    Setting("workers", "pin", True, "Pin each worker to one CPU.", kind=bool),
    Setting("workers", "batch_max", 2000,
            "Most alerts a worker deduplicates in one Redis round trip; larger batches are "
            "split. Bounds the time one Lua call holds Redis.",
            kind=int, minimum=1, maximum=100_000),
    Setting("workers", "ring_mb", 32,
            "Size of each worker's shared-memory ring to the indexer, in MiB. A batch whose "
            "encoded alerts exceed it is handed over in several records.",
            kind=int, minimum=1, maximum=4096),
    Setting("workers", "heartbeat_seconds", 30,
            "A worker whose Redis heartbeat is older than this is presumed dead and its "
            "in-flight batches are requeued by any live supervisor.",
            kind=int, minimum=3, maximum=3600),
    # [store]
    Setting("store", "kind", "sqlite", "Where alerts are indexed.",
            choices=("sqlite", "elasticsearch")),
    Setting("store", "path", "",
            "SQLite database file. Empty means <data_dir>/farm.db."),
    Setting("store", "url", "",
            "Elasticsearch/OpenSearch URL(s), comma-separated, for kind = \"elasticsearch\"."),
    Setting("store", "index_prefix", "farm",
            "Engine index names start with this: <index_prefix>-alerts-YYYY.MM.DD (history) and "
            "<index_prefix>-alerts-current (one document per fingerprint)."),
    Setting("store", "username", "", "Engine basic-auth user (empty: none)."),
    Setting("store", "password", "", "Engine basic-auth password."),
    Setting("store", "api_key", "", "Engine API key (base64 id:key), instead of basic auth."),
    Setting("store", "verify_certs", True, "Verify the engine's TLS certificate.", kind=bool),
    Setting("store", "ca_certs", "", "CA bundle for the engine's TLS certificate (empty: system)."),
    Setting("store", "replicas", 1,
            "Replicas per index in the shipped template; 0 for a single-node cluster.",
            kind=int, minimum=0, maximum=10),
    Setting("store", "bulk_bytes", "8MB",
            "The indexer sends a _bulk request once this much NDJSON is pending (or commit_ms "
            "has passed).", check=size),
    Setting("store", "in_flight", 3,
            "Most _bulk requests in flight at once; more waiting means workers pause.",
            kind=int, minimum=1, maximum=64),
    Setting("store", "gzip", False, "Compress _bulk request bodies.", kind=bool),
    Setting("store", "request_timeout", 60, "Seconds before an engine request is abandoned "
            "and retried.", kind=int, minimum=1, maximum=3600),
    Setting("store", "lifecycle", "auto",
            "History retention on the engine: an ILM policy (Elasticsearch), an ISM policy "
            "(OpenSearch), or farm deleting daily indices older than retention_days. auto picks "
            "ILM/ISM when the engine has it.", choices=("auto", "ilm", "ism", "farm")),
    Setting("store", "retention_days", 30,
            "History older than this many days is deleted; 0 keeps it forever.",
            kind=int, minimum=0, maximum=36500),
    Setting("store", "fts_history", False,
            "Also index history (not only current state) for full-text search. Cuts SQLite "
            "insert speed about threefold. Without it `farm search --history` scans every "
            "stored event: the same matches, found more slowly.", kind=bool),
    Setting("store", "commit_rows", 5000,
            "The indexer commits a transaction once this many alerts are pending, or "
            "commit_ms after the oldest of them arrived, whichever comes first.",
            kind=int, minimum=1, maximum=1_000_000),
    Setting("store", "commit_ms", 200,
            "Longest time an alert waits in the indexer before its transaction commits.",
            kind=int, minimum=1, maximum=60_000),
    # [supervisor]
    Setting("supervisor", "http", "127.0.0.1:9464",
            "Address of /metrics, /healthz and /status.", check=host_port),
    Setting("supervisor", "grace_seconds", 30,
            "On SIGTERM, how long draining may take before processes are killed.",
            kind=int, minimum=1, maximum=3600),
    Setting("supervisor", "restart_limit", 5,
            "A process that exits by itself this many times within restart_window_seconds "
            "without ever becoming ready cannot start: the farm stops and says why. A process "
            "that was ready and then died (killed, out of memory, lost its store) is always "
            "restarted, with backoff.", kind=int, minimum=1, maximum=1000),
    Setting("supervisor", "restart_window_seconds", 60,
            "Window for restart_limit; a process that stays up this long after becoming ready "
            "starts its restart backoff afresh.", kind=int, minimum=1, maximum=86_400),
    Setting("supervisor", "restart_backoff_max_seconds", 30,
            "Longest wait before restarting a process that keeps dying (the wait doubles from "
            "0.5 s with each death within restart_window_seconds).",
            kind=int, minimum=1, maximum=3600),
    # [dedup]
    Setting("dedup", "ttl_seconds", 7 * 86_400,
            "How long a fingerprint's last content hash is remembered.",
            kind=int, minimum=60, maximum=366 * 86_400),
    Setting("dedup", "ignore_fields", ["lastReceived"],
            "Fields left out of the content hash (Keep's ignore_fields; dotted paths reach "
            "into maps) for alerts no [[dedup.rules]] entry matches. lastReceived is always "
            "left out.", kind=list),
)



def _all_settings() -> tuple[Setting, ...]:
    """Core keys, then each feature's own declarations (kept next to the feature's code)."""
    from farm.feature_settings import FEATURE_SETTINGS

    return CORE_SETTINGS + FEATURE_SETTINGS


SETTINGS = _all_settings()
_BY_SECTION: dict[str, dict[str, Setting]] = {}
for _s in SETTINGS:
    _BY_SECTION.setdefault(_s.section, {})[_s.key] = _s

_BOOL_WORDS = {"true": True, "1": True, "yes": True, "on": True,
               "false": False, "0": False, "no": False, "off": False}


def _coerce(setting: Setting, value: Any, from_env: bool) -> tuple[Any, str | None]:
    """Return (value, problem) for one raw value; the problem names what is allowed."""
    kind = setting.kind
    if kind is object:
        # Structured values (arrays of tables): the setting's own check validates them.
        if from_env:
            return None, "is structured and can only be set in the config file"
        problem = setting.check(value) if setting.check is not None else None
        return (None, problem) if problem else (value, None)
    if from_env:
        text = value.strip()
        if kind is bool:
            if text.lower() not in _BOOL_WORDS:
                return None, "must be true or false"
            value = _BOOL_WORDS[text.lower()]
        elif kind is int:
            try:
                value = int(text)
            except ValueError:
                return None, "must be a whole number"
        elif kind is float:
            try:
                value = float(text)
            except ValueError:
                return None, "must be a number"
        elif kind is list:
            value = [part.strip() for part in text.split(",") if part.strip()]
        elif kind is dict:
            return None, "is a table and cannot be set from the environment"
    if kind is bool and not isinstance(value, bool):
        return None, "must be true or false"
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return None, "must be a whole number"
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, "must be a number"
        value = float(value)
    if kind is str and not isinstance(value, str):
        return None, "must be a string"
    if kind is list and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        return None, "must be a list of strings"
    if kind is dict:
        if not isinstance(value, dict):
            return None, "must be a table"
        for k, v in value.items():
            if setting.item_kind is list:
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    return None, f"entry {k!r} must be a list of strings"
            elif not isinstance(v, setting.item_kind):
                return None, f"entry {k!r} must be a {setting.item_kind.__name__}"
    if setting.choices is not None and value not in setting.choices:
        allowed = ", ".join(repr(c) for c in setting.choices)
        return None, f"must be one of {allowed}"
    if setting.minimum is not None and value < setting.minimum:
        return None, f"must be at least {setting.minimum:g}"
    if setting.maximum is not None and value > setting.maximum:
        return None, f"must be at most {setting.maximum:g}"
    if setting.check is not None:
        problem = setting.check(value)
        if problem:
            return None, problem
    return value, None


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(options))}"


class Config(SimpleNamespace):
    """Validated settings as `cfg.<section>.<key>`, plus `cfg.source` (the file or None)."""

    @property
    def data_dir(self) -> Path:
        return Path(self.farm.data_dir).expanduser().resolve()

    @property
    def sqlite_path(self) -> Path:
        return Path(self.store.path).expanduser().resolve() if self.store.path else (
            self.data_dir / "farm.db")

    @property
    def node_id(self) -> str:
        import socket

        return self.farm.node_id or socket.gethostname()


def load(path: str | os.PathLike | None = None, env: dict[str, str] | None = None,
         overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Load and validate the configuration.

    `path` is a TOML file (None: defaults only); `env` defaults to os.environ; `overrides`
    (for command-line flags) win over both. Raises ConfigError listing every mistake.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError([f"config file {path} does not exist"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"config file {path} is not valid TOML: {exc}"]) from None

    values: dict[str, dict[str, Any]] = {
        section: {key: s.default for key, s in keys.items()}
        for section, keys in _BY_SECTION.items()
    }
    for section, table in data.items():
        if section not in _BY_SECTION:
            problems.append(f"unknown section [{section}]{_suggest(section, list(_BY_SECTION))}")
            continue
        if not isinstance(table, dict):
            problems.append(f"[{section}] must be a table")
            continue
        for key, raw in table.items():
            setting = _BY_SECTION[section].get(key)
            if setting is None:
                problems.append(
                    f"unknown key [{section}] {key}{_suggest(key, list(_BY_SECTION[section]))}")
                continue
            value, problem = _coerce(setting, raw, from_env=False)
            if problem:
                problems.append(f"{setting.name} = {raw!r} {problem}")
            else:
                values[section][key] = value

    for name, raw in env.items():
        if not name.startswith("FARM_"):
            continue
        rest = name[5:].lower()
        section = next((s for s in _BY_SECTION if rest.startswith(s + "_")), None)
        if section is None:
            continue  # FARM_TEST_*, FARM_REQUIRE_ENGINE and friends are not settings
        key = rest[len(section) + 1:]
        setting = _BY_SECTION[section].get(key)
        if setting is None:
            problems.append(
                f"unknown environment override {name}{_suggest(key, list(_BY_SECTION[section]))}")
            continue
        value, problem = _coerce(setting, raw, from_env=True)
        if problem:
            problems.append(f"{name}={raw!r} {problem}")
        else:
            values[section][key] = value

    for section, table in (overrides or {}).items():
        for key, raw in table.items():
            setting = _BY_SECTION[section][key]
            value, problem = _coerce(setting, raw, from_env=False)
            if problem:
                problems.append(f"{setting.name} = {raw!r} {problem}")
            else:
                values[section][key] = value

    if values["store"]["kind"] == "elasticsearch" and not values["store"]["url"]:
        problems.append('[store] kind = "elasticsearch" needs [store] url '
                        '(for example "http://127.0.0.1:9200")')
    if problems:
        raise ConfigError(problems)
    cfg = Config(**{section: SimpleNamespace(**kv) for section, kv in values.items()})
    cfg.source = str(path) if path is not None else None
    return cfg

