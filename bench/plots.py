"""The PNG plots of docs/performance.md, drawn from what bench/suite.py measured (farm-loadgen
`--timeline` files and the suite's figures). Each function writes one file and returns its path.

    python bench/plots.py bench/results/<run>/results.json --out docs/img   # redraw from a run
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = {"this tree": "tab:blue", "baseline": "tab:orange"}
DPI = 110
SMOOTH = 5     # samples (about a second each) in a rate's moving mean: commits come in bursts


def _running(rows: list[dict]) -> list[dict]:
    """The rows from the first push on (the sampler starts while producers pre-generate)."""
    return [r for r in rows if r["t"] >= 0]


def _smoothed(values: list[float]) -> list[float]:
    out = []
    for i in range(len(values)):
        window = values[max(0, i - SMOOTH + 1):i + 1]
        out.append(sum(window) / len(window))
    return out


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _caption(fig, note: str) -> None:
    fig.text(0.01, 0.005, note, fontsize=7, color="grey", ha="left", va="bottom")


def throughput_over_time(timelines: dict[str, dict], note: str, path: Path) -> Path:
    """Alerts/s sent by farm-loadgen and committed by the farm, second by second, per tree."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for label, doc in timelines.items():
        rows = _running(doc["seconds"])
        t = [r["t"] for r in rows]
        colour = COLOURS.get(label)
        for key, what, style in (("committed_alerts_per_second", "committed", "-"),
                                 ("sent_alerts_per_second", "sent", ":")):
            ax.plot(t, _smoothed([r[key] / 1000 for r in rows]), color=colour,
                    linestyle=style, label=f"{label}: {what}")
    ax.set(title="Realistic mix as fast as it goes: alerts per second over the run",
           xlabel="seconds since the first push",
           ylabel=f"thousand alerts/s ({SMOOTH} s moving mean)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _caption(fig, note)
    return _save(fig, path)


def latency_cdf(distributions: dict[str, list[float]], rate: str, note: str,
                path: Path) -> Path:
    """The send->commit distribution as a CDF (percentiles 1..100), per tree."""
    fig, ax = plt.subplots(figsize=(8, 4))
    percent = list(range(1, 101))
    for label, seconds in distributions.items():
        ax.plot([s * 1000 for s in seconds], percent, color=COLOURS.get(label), label=label)
    ax.axhline(99, color="grey", linewidth=0.8, linestyle="--", label="99th percentile")
    ax.set(title=f"Send→commit latency at {rate}: share of stored alerts at or below",
           xlabel="send→commit, ms", ylabel="percent of stored alerts", ylim=(0, 101))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _caption(fig, note)
    return _save(fig, path)


def spike_backlog(doc: dict, rate: str, note: str, path: Path) -> Path:
    """The farm's backlog (batches queued or in flight, and the oldest one's age) through a
    spike, with the spike's window shaded."""
    rows, spike = _running(doc["seconds"]), doc["spike"]
    t = [r["t"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.axvspan(spike["start_seconds"], spike["end_seconds"], color="tab:red", alpha=0.12,
               label=f"spike: x{spike['factor']:g} the rate")
    ax.plot(t, [r["backlog_batches"] for r in rows], color="tab:blue",
            label="backlog, batches (left)")
    ax.set(title=f"Backlog through a spike ({rate} base)", xlabel="seconds since the first push",
           ylabel="batches queued or in flight")
    age = ax.twinx()
    age.plot(t, [r["backlog_age_seconds"] for r in rows], color="tab:green", linestyle="--",
             label="oldest queued batch, age (right)")
    age.set_ylabel("age of the oldest queued batch, s")
    lines = ax.get_legend_handles_labels()
    more = age.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    _caption(fig, note)
    return _save(fig, path)


def scaling(by_workers: dict[int, float], note: str, path: Path) -> Path:
    """End-to-end MB/s of the realistic mix against the number of worker processes."""
    workers = sorted(by_workers)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(workers, [by_workers[w] for w in workers], marker="o", color="tab:blue",
            label="this tree, SQLite")
    ax.set(title="End to end against worker processes (realistic mix)",
           xlabel="worker processes", ylabel="MB/s of webhook JSON, end to end",
           xticks=workers, ylim=(0, None))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _caption(fig, note)
    return _save(fig, path)


def draw_all(results: dict, out: Path) -> list[Path]:
    """Every plot whose data the suite's results hold, into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    data, note = results.get("plot_data", {}), results.get("plot_note", "")
    drawn = []
    if data.get("realistic"):
        drawn.append(throughput_over_time(data["realistic"], note,
                                          out / "throughput-over-time.png"))
    if data.get("latency"):
        drawn.append(latency_cdf(data["latency"], data.get("latency_rate", ""), note,
                                 out / "latency-cdf.png"))
    if data.get("spike"):
        drawn.append(spike_backlog(data["spike"], data.get("spike_rate", ""), note,
                                   out / "spike-backlog.png"))
    if data.get("scaling"):
        drawn.append(scaling({int(k): v for k, v in data["scaling"].items()}, note,
                             out / "workers-scaling.png"))
    return drawn


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) != 3 or args[1] != "--out":
        raise SystemExit("usage: python bench/plots.py RESULTS.json --out DIR")
    for drawn_path in draw_all(json.loads(Path(args[0]).read_text()), Path(args[2])):
        print(drawn_path)
