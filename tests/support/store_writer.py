"""A process that writes payloads to the SQLite store and then waits to be killed, so tests can
SIGKILL a real writer at a moment they chose (one of the store's files held locked by the test
decides how far it gets).

    python -m tests.support.store_writer <farm.db> <payloads.msgpack>

Submits every payload as one flush, prints "submitted", then "committed" once both halves are,
and sleeps until killed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import msgpack

from farm.sinks.sqlite import SqliteWriter


def start(db_path: Path, payloads: list[bytes], work: Path) -> subprocess.Popen:
    """Start the writer process on `payloads`; returns once it has submitted them."""
    source = work / "payloads.msgpack"
    source.write_bytes(msgpack.packb(payloads))
    child = subprocess.Popen([sys.executable, "-m", "tests.support.store_writer", str(db_path),
                              str(source)], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    assert child.stdout.readline().strip() == "submitted"
    return child


def main() -> None:
    db_path, source = Path(sys.argv[1]), Path(sys.argv[2])
    writer = SqliteWriter(db_path)
    future = writer.submit(msgpack.unpackb(Path(source).read_bytes()))
    print("submitted", flush=True)
    future.result()
    print("committed", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
