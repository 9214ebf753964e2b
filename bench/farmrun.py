"""A farm started from a checkout (`<root>/.venv`, embedded Redis, SQLite), driven by this
checkout's farm-loadgen: the shared piece of the end-to-end benches (bench/stages_e2e.py,
bench/suite.py). One load generator drives every farm, so each sees the same load.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
READY_SECONDS = 120


def farm_config(data: Path, port: int, correlation: str | None = None,
                maintenance: str | None = None) -> Path:
    """A config beside `data`: no gateway, the supervisor on `port`, rule files if given."""
    text = (f'[farm]\ndata_dir = "{data}"\n[supervisor]\nhttp = "127.0.0.1:{port}"\n'
            f'[ingest]\nprocesses = 0\n')
    if correlation:
        text += f'[correlation]\nrules = "{Path(correlation).resolve()}"\n'
    if maintenance:
        text += f'[maintenance]\nrules = "{Path(maintenance).resolve()}"\n'
    path = data.parent / "farm.toml"
    path.write_text(text)
    return path


def wait_ready(url: str, farm: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if farm.poll() is not None:
            raise SystemExit(f"the farm exited with {farm.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/status", timeout=2) as answer:
                doc = json.load(answer)
            if doc["indexer"]["alive"] and all(w["alive"] for w in doc["workers"]):
                return
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(0.3)
    raise SystemExit(f"the farm did not become ready in {READY_SECONDS} s")


@contextlib.contextmanager
def running_farm(root: Path, workers: int = 2, correlation: str | None = None,
                 maintenance: str | None = None) -> Iterator[Path]:
    """`farm start --workers N` of the checkout at `root`, ready; yields its config file.
    Stopped (SIGTERM) and its data removed on leaving."""
    from tests.support.ports import free_port

    work = Path(tempfile.mkdtemp(prefix="farm-bench-run-"))
    port = free_port()
    config = farm_config(work / "data", port, correlation, maintenance)
    farm = subprocess.Popen([str(root / ".venv" / "bin" / "python"), "-m", "farm.cli", "start",
                             "--workers", str(workers), "--config", str(config)], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}", farm)
        yield config
    finally:
        farm.send_signal(signal.SIGTERM)
        try:
            farm.wait(120)
        except subprocess.TimeoutExpired:
            farm.kill()
            farm.wait()
        shutil.rmtree(work, ignore_errors=True)


def loadgen(config: Path, args: list[str], timeout: float = 600) -> dict:
    """This checkout's `farm-loadgen --config FILE ARGS --json --quiet`; its report, with
    `seconds` added: from the start of the command until it returned (after the drain under
    --verify). Exit codes are left to the report (a short rate is a figure here)."""
    started = time.monotonic()
    out = subprocess.run([str(HERE / ".venv" / "bin" / "python"), "-m", "loadgen.cli",
                          "--config", str(config), *args, "--json", "--quiet"],
                         cwd=HERE, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    if not out.stdout.strip():
        raise SystemExit(f"farm-loadgen printed no report: {out.stderr.strip()[-500:]}")
    report = json.loads(out.stdout)
    report["seconds"] = seconds
    return report


def drive(root: Path, args: list[str], workers: int = 2, correlation: str | None = None,
          maintenance: str | None = None, timeout: float = 600) -> dict:
    """One farm of `root`, one farm-loadgen run into it (see loadgen()); the report, with
    `end_to_end_seconds` (from the first push until the farm drained, under --verify; else
    the command's time) and `mb_per_s`, the payload sent over that time."""
    with running_farm(root, workers, correlation, maintenance) as config:
        report = loadgen(config, args, timeout)
    drained = (report.get("verify") or {}).get("drain_seconds")
    report["end_to_end_seconds"] = (report["duration_seconds"] + drained
                                    if drained is not None else report["seconds"])
    report["mb_per_s"] = report["sent"]["payload_bytes"] / report["end_to_end_seconds"] / 1e6
    return report
