"""End-to-end MB/s of the realistic mix with the stateful stages on, against a baseline checkout.

    python bench/stages_e2e.py --baseline /tmp/base --runs 3 [--seconds 20]
        [--correlation bench/correlation-realistic.toml] [--maintenance bench/maintenance-5.toml]

Each round runs, in turn, this checkout (with the rule files given) and the baseline checkout
(a `git worktree` of an older commit with its own `.venv`, run without rule files), each as
`farm start --workers 2` (embedded Redis, SQLite) fed by `farm-loadgen --profile max --verify`.
End to end is the payload sent divided by the time from the first push until the farm drained.
Prints each run and the median ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))

from tests.support.ports import free_port  # noqa: E402


def farm_config(data: Path, correlation: str | None, maintenance: str | None) -> Path:
    text = (f'[farm]\ndata_dir = "{data}"\n[supervisor]\nhttp = "127.0.0.1:{free_port()}"\n'
            f'[ingest]\nprocesses = 0\n')
    if correlation:
        text += f'[correlation]\nrules = "{Path(correlation).resolve()}"\n'
    if maintenance:
        text += f'[maintenance]\nrules = "{Path(maintenance).resolve()}"\n'
    path = data.parent / "farm.toml"
    path.write_text(text)
    return path


def wait_ready(url: str, farm: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if farm.poll() is not None:
            raise SystemExit(f"the farm exited with {farm.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/status", timeout=2) as answer:
                doc = json.load(answer)
            if doc["indexer"]["alive"] and all(w["alive"] for w in doc["workers"]):
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("the farm did not become ready in 120 s")


def one_run(root: Path, seconds: int, correlation: str | None, maintenance: str | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="stages-"))
    config = farm_config(work / "data", correlation, maintenance)
    http = [line for line in config.read_text().splitlines() if line.startswith("http")][0]
    url = "http://" + http.split('"')[1]
    python = str(root / ".venv" / "bin" / "python")
    farm = subprocess.Popen([python, "-m", "farm.cli", "start", "--workers", "2", "--config",
                             str(config)], cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_ready(url, farm)
        started = time.monotonic()
        # One load generator (this checkout's) drives both farms: the same load for each.
        out = subprocess.run([str(HERE / ".venv" / "bin" / "python"), "-m", "loadgen.cli",
                              "--config", str(config),
                              "--rate", "60MB/s", "--profile", "max", "--duration",
                              f"{seconds}s", "--seed", "7", "--verify", "--json", "--quiet",
                              "--min-achieved", "0"], cwd=HERE, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        if not out.stdout.strip():
            raise SystemExit(f"farm-loadgen printed no report: {out.stderr.strip()[-500:]}")
        report = json.loads(out.stdout)
    finally:
        farm.send_signal(signal.SIGTERM)
        farm.wait(120)
        shutil.rmtree(work, ignore_errors=True)
    sent = report["sent"]["payload_bytes"]
    verdict = report.get("verify", {})
    return {"mb_per_s": sent / elapsed / 1e6, "alerts": report["sent"]["alerts"],
            "seconds": elapsed, "loss": verdict.get("loss"), "ok": verdict.get("ok")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True,
                        help="a checkout of the commit to compare with, with its own .venv")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--correlation", default=str(HERE / "bench/correlation-realistic.toml"))
    parser.add_argument("--maintenance", default=str(HERE / "bench/maintenance-5.toml"))
    args = parser.parse_args()
    ratios = []
    for run in range(args.runs):
        new = one_run(HERE, args.seconds, args.correlation, args.maintenance)
        old = one_run(args.baseline, args.seconds, None, None)
        ratios.append(new["mb_per_s"] / old["mb_per_s"])
        print(f"round {run + 1}: stages on {new['mb_per_s']:.1f} MB/s ({new['alerts']:,} alerts, "
              f"verify ok={new['ok']}); baseline {old['mb_per_s']:.1f} MB/s "
              f"({old['alerts']:,} alerts, ok={old['ok']}); ratio {ratios[-1]:.2f}", flush=True)
    print(f"median ratio, stages on / baseline: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
