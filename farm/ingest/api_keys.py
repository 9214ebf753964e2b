"""`farm keys add TENANT`: create an API key and write its hash into the config file's
[ingest.keys] table, keeping every other line, comment and format of the file as it was
(tomlkit edits TOML in place; tomllib can only read)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import tomlkit

from farm.config.ingest import TENANT_RE, TENANT_RULE
from farm.ingest.auth import hash_key, new_key


class KeysError(Exception):
    """The key could not be added; str() says why and what to do."""


def add_key(config_path: str | os.PathLike, tenant: str) -> str:
    """Create a key for tenant, append "sha256:<hex>" to [ingest.keys] TENANT in the file at
    config_path (created if absent), and return the key. The key itself is stored nowhere:
    show it once. Raises KeysError for a bad tenant name or an unreadable file."""
    if not TENANT_RE.fullmatch(tenant):
        raise KeysError(f"tenant {tenant!r} {TENANT_RULE}")
    path = Path(config_path)
    try:
        text = path.read_text() if path.exists() else ""
        doc = tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.TOMLKitError) as exc:
        raise KeysError(f"cannot read {path}: {exc}") from None

    ingest = doc.get("ingest")
    if ingest is None:
        ingest = doc["ingest"] = tomlkit.table(is_super_table=True)
    elif not isinstance(ingest, dict):
        raise KeysError(f"{path}: 'ingest' is not a table")
    keys = ingest.get("keys")
    if keys is None:
        keys = ingest["keys"] = tomlkit.table()
    elif not isinstance(keys, dict):
        raise KeysError(f"{path}: [ingest] keys is not a table")
    entries = keys.get(tenant)
    if entries is None:
        entries = keys[tenant] = tomlkit.array()
    elif not isinstance(entries, list):
        raise KeysError(f"{path}: [ingest.keys] {tenant} is not a list")

    key = new_key()
    entries.append(hash_key(key))
    _write_atomically(path, tomlkit.dumps(doc))
    return key


def _write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one; the mode, owner and group
    are kept (a root-owned config readable by the farm's group stays readable by the farm)."""
    old = path.stat() if path.exists() else None
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, old.st_mode & 0o777 if old else 0o600)
        if old and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
            os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
