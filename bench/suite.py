"""The performance regression suite (`make bench`): a short fixed set of benches, each figure
beside the same figure of a baseline commit measured in the same sitting, run interleaved
(this tree, the baseline, this tree, the baseline...) and reported as medians and their ratio.

    python bench/suite.py [--baseline 354cd36] [--rounds 2] [--only e2e,spike] [--skip engine]
                          [--out bench/results/NAME] [--plots docs/img] [--engine-url URL]

Steps (each with its own time bound; one that fails or is skipped is reported, the rest run):
  pipeline   bench/pipeline.py of each tree: alerts per CPU-second, per provider
  e2e        bench/e2e.py of each tree: every alert new, MB/s end to end
  realistic  farm-loadgen --profile max --verify into each tree's farm: MB/s end to end
  latency    farm-loadgen --rate 600GB/day --verify into each tree's farm: p50, p99
  engine     bench/engine.py of each tree against one OpenSearch node: % of a raw _bulk
             (one round)
  ingest     bench/ingest.py of each tree (needs wrk): MB/s and gateway CPU per request
  spike      farm-loadgen --profile spike --spike 10x:4s into each tree's farm (one round)
  scaling    this tree only: the realistic mix with 1, 2, 3 and 4 workers (one round)

The baseline is a checkout of --baseline (any commit; bench/baseline.py makes it, with its
own .venv, under .cache/baseline/ and keeps it). Every farm-loadgen run is this tree's load
generator, so both farms get the same load. At the end: a table (figure, this tree, baseline,
ratio), results.json, the farm-loadgen timelines and the plots in --out; --plots DIR draws the
plots there too (docs/img for docs/performance.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "bench"))

import plots  # noqa: E402
from baseline import checkout  # noqa: E402
from farmrun import drive  # noqa: E402

STEPS = ("pipeline", "e2e", "realistic", "latency", "engine", "ingest", "spike", "scaling")
OURS, BASE = "this tree", "baseline"
LATENCY_RATE = "600GB/day"
SPIKE_RATE, SPIKE = "300GB/day", "10x:4s"
# --profile max runs: verified, and a bounded backlog, so that the drain after the last push
# (part of the end-to-end time) stays short.
MAX_RUN = ["--verify", "--min-achieved", "0", "--max-backlog", "64MB"]


class StepFailed(Exception):
    """A step could not measure; str() is one line."""


@dataclass
class Figure:
    name: str
    unit: str
    better: str                       # "higher" or "lower"
    runs: dict = field(default_factory=lambda: {OURS: [], BASE: []})

    def median(self, tree: str) -> float | None:
        values = self.runs[tree]
        return statistics.median(values) if values else None

    def ratio(self) -> float | None:
        ours, base = self.median(OURS), self.median(BASE)
        return ours / base if ours is not None and base else None

    def round_ratios(self) -> list[float]:
        """This tree over the baseline in each round, where the two ran one after the other:
        the machine's load changes less between them than across rounds."""
        return [o / b for o, b in zip(self.runs[OURS], self.runs[BASE], strict=False) if b]

    def paired_ratio(self) -> float | None:
        ratios = self.round_ratios()
        return statistics.median(ratios) if ratios else None


@dataclass
class Suite:
    args: argparse.Namespace
    trees: dict[str, Path]
    out: Path
    figures: dict[str, Figure] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    plot_data: dict = field(default_factory=dict)

    def record(self, name: str, unit: str, better: str, tree: str, value: float) -> None:
        figure = self.figures.setdefault(name, Figure(name, unit, better))
        figure.runs[tree].append(value)

    def interleaved(self) -> list[tuple[int, str, Path]]:
        """(round, tree, root) in the order A B A B ..., for --rounds rounds."""
        return [(n, tree, root) for n in range(self.args.rounds)
                for tree, root in self.trees.items()]


# -- running a tree's bench script ------------------------------------------------------------

def run_script(root: Path, script: str, args: list[str], timeout: float) -> str:
    """`<root>/.venv/bin/python <root>/bench/<script> ARGS` from root; its stdout."""
    try:
        done = subprocess.run([str(root / ".venv" / "bin" / "python"),
                               str(root / "bench" / script), *args], cwd=root,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StepFailed(f"{script} took longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise StepFailed(f"{script} exited with {done.returncode}: {tail[0][:300]}")
    return done.stdout


def found(pattern: str, text: str, script: str) -> re.Match:
    match = re.search(pattern, text, re.M)
    if match is None:
        raise StepFailed(f"{script} printed no line matching {pattern!r}")
    return match


def number(text: str) -> float:
    return float(text.replace(",", ""))


# -- the steps ---------------------------------------------------------------------------------

def step_pipeline(suite: Suite) -> None:
    line = r"^(\w+)\s+([\d,]+) alerts/s \(wall\)\s+([\d,]+) alerts/s \(cpu\)"
    for _, tree, root in suite.interleaved():
        out = run_script(root, "pipeline.py", ["--alerts", "30000", "--runs", "1"], 300)
        for provider, _wall, cpu in re.findall(line, out, re.M):
            suite.record(f"pipeline {provider}", "alerts/CPU-s", "higher", tree, number(cpu))


def step_e2e(suite: Suite) -> None:
    for _, tree, root in suite.interleaved():
        out = run_script(root, "e2e.py", ["--workers", "2", "--seconds", "8", "--runs", "1",
                                          "--json"], 300)
        median = json.loads(out.strip().splitlines()[-1])["median"]
        suite.record("e2e every alert new", "MB/s", "higher", tree, median["mb_per_s"])


def loadgen_run(suite: Suite, tree: str, name: str, args: list[str], workers: int = 2) -> dict:
    """This tree's farm-loadgen into `tree`'s farm with a --timeline file; the report (with
    the timeline read back under `timeline`)."""
    path = suite.out / f"timeline-{name}-{'ours' if tree == OURS else 'baseline'}.json"
    try:
        report = drive(suite.trees[tree], [*args, "--timeline", str(path)], workers=workers,
                       timeout=300)
    except subprocess.TimeoutExpired:
        raise StepFailed("farm-loadgen took longer than 300 s") from None
    if not report.get("verify", {}).get("ok"):
        raise StepFailed(f"farm-loadgen --verify did not balance into the {tree}'s farm")
    report["timeline"] = json.loads(path.read_text())
    return report


def step_realistic(suite: Suite) -> None:
    args = ["--rate", "60MB/s", "--profile", "max", "--duration", "10s", "--seed", "7",
            *MAX_RUN]
    for _, tree, _root in suite.interleaved():
        report = loadgen_run(suite, tree, "realistic", args)
        suite.record("realistic mix, end to end", "MB/s", "higher", tree, report["mb_per_s"])
        suite.plot_data.setdefault("realistic", {})[tree] = report["timeline"]


def step_latency(suite: Suite) -> None:
    args = ["--rate", LATENCY_RATE, "--duration", "10s", "--seed", "21", "--verify",
            "--min-achieved", "0"]
    for _, tree, _root in suite.interleaved():
        report = loadgen_run(suite, tree, "latency", args)
        latency = report["verify"]["latency_seconds"]
        for point in ("p50", "p99"):
            suite.record(f"{LATENCY_RATE} send->commit {point}", "ms", "lower", tree,
                         latency[point] * 1000)
        spread = report["timeline"]["latency_percentiles_seconds"]
        if spread:
            suite.plot_data.setdefault("latency", {})[tree] = spread
    suite.plot_data["latency_rate"] = LATENCY_RATE


def step_engine(suite: Suite) -> None:
    url, node = suite.args.engine_url, None
    if url is None:
        from tests.support.engine import EngineError, EngineNode

        node = EngineNode(suite.out / "engine")
        try:
            url = node.start(timeout=300)
        except EngineError as exc:
            raise StepFailed(f"no search engine node: {str(exc).splitlines()[0]}") from None
    try:
        # One round: each tree's run warms the JVM up first and takes minutes.
        for tree, root in suite.trees.items():
            out = run_script(root, "engine.py", ["--url", url, "--alerts", "20000", "--runs",
                                                 "1", "--farm-bulk", "8MB"], 600)
            share = found(r"farm@8MB (\d+)% of baseline", out, "engine.py").group(1)
            suite.record("engine, % of a raw _bulk", "%", "higher", tree, float(share))
    finally:
        if node is not None:
            node.stop()


def step_ingest(suite: Suite) -> None:
    line = (r"median of \d+: ([\d.]+) req/s, ([\d.]+) MB/s, p50 ([\d.]+) ms, p99 ([\d.]+) ms, "
            r"gateway CPU (\d+) us/request")
    for _, tree, root in suite.interleaved():
        out = run_script(root, "ingest.py", ["--runs", "1", "--duration", "8"], 180)
        match = found(line, out, "ingest.py")
        suite.record("gateway, webhooks", "MB/s", "higher", tree, number(match.group(2)))
        suite.record("gateway CPU per request", "us", "lower", tree, number(match.group(5)))


def step_spike(suite: Suite) -> None:
    args = ["--rate", SPIKE_RATE, "--duration", "24s", "--profile", "spike", "--spike", SPIKE,
            "--seed", "5", "--verify", "--min-achieved", "0"]
    for tree in suite.trees:
        spike = loadgen_run(suite, tree, "spike", args)
        summary = spike["spike"]
        suite.record("spike: backlog peak", "batches", "lower", tree,
                     summary["backlog_peak_batches"])
        suite.record("spike: oldest batch at peak", "s", "lower", tree,
                     summary["backlog_peak_age_seconds"])
        if summary["recovery_seconds"] is not None:
            suite.record("spike: time to recover", "s", "lower", tree,
                         summary["recovery_seconds"])
        for when in ("during", "after"):
            if summary[f"p99_{when}_seconds"] is not None:
                suite.record(f"spike: p99 {when}", "ms", "lower", tree,
                             summary[f"p99_{when}_seconds"] * 1000)
        if tree == OURS:
            suite.plot_data["spike"] = spike["timeline"]
    suite.plot_data["spike_rate"] = SPIKE_RATE


def step_scaling(suite: Suite) -> None:
    args = ["--rate", "60MB/s", "--profile", "max", "--duration", "6s", "--seed", "9",
            *MAX_RUN]
    for workers in (1, 2, 3, 4):
        report = loadgen_run(suite, OURS, f"workers{workers}", args, workers=workers)
        suite.record(f"realistic mix, {workers} worker(s)", "MB/s", "higher", OURS,
                     report["mb_per_s"])
        suite.plot_data.setdefault("scaling", {})[workers] = report["mb_per_s"]


# -- the run and its report --------------------------------------------------------------------

def run_steps(suite: Suite, chosen: list[str]) -> None:
    for name in chosen:
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            globals()[f"step_{name}"](suite)
        except StepFailed as exc:
            suite.failed[name] = str(exc)
            print(f"   {name}: not measured: {exc}", flush=True)
        except SystemExit as exc:       # a shared helper's one-line failure
            suite.failed[name] = str(exc)
            print(f"   {name}: not measured: {exc}", flush=True)
        print(f"   {name}: {time.monotonic() - started:.0f} s", flush=True)


def table(suite: Suite) -> str:
    def shown(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"

    def shown_ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    lines = [f"{'figure':<36} {'unit':<13} {'this tree':>10} {'baseline':>10} "
             f"{'ratio':>6} {'paired':>6}  better"]
    for fig in suite.figures.values():
        lines.append(f"{fig.name:<36} {fig.unit:<13} {shown(fig.median(OURS)):>10} "
                     f"{shown(fig.median(BASE)):>10} {shown_ratio(fig.ratio()):>6} "
                     f"{shown_ratio(fig.paired_ratio()):>6}  {fig.better}")
    for name, reason in suite.failed.items():
        lines.append(f"{name:<36} not measured: {reason}")
    return "\n".join(lines)


def results(suite: Suite, commit: str) -> dict:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                          capture_output=True, text=True).stdout.strip()
    today = datetime.date.today().isoformat()
    return {"date": today, "this_tree": head, "baseline": commit,
            "rounds": suite.args.rounds, "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "figures": [{"name": f.name, "unit": f.unit, "better": f.better,
                         "this_tree": f.runs[OURS], "baseline": f.runs[BASE],
                         "this_tree_median": f.median(OURS), "baseline_median": f.median(BASE),
                         "ratio": f.ratio(), "round_ratios": f.round_ratios(),
                         "paired_ratio": f.paired_ratio()} for f in suite.figures.values()],
            "not_measured": suite.failed, "plot_data": suite.plot_data,
            "plot_note": f"measured {today} on a shared {os.cpu_count()}-CPU machine, load "
                         f"average {os.getloadavg()[0]:.0f}: illustrative, not reference "
                         f"figures (bench/suite.py)"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="354cd36", help="commit to compare with")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per step")
    parser.add_argument("--only", help=f"comma-separated steps, of: {', '.join(STEPS)}")
    parser.add_argument("--skip", default="", help="comma-separated steps to leave out")
    parser.add_argument("--out", type=Path, help="results folder (default: bench/results/TIME)")
    parser.add_argument("--plots", type=Path, help="also draw the plots into this folder")
    parser.add_argument("--engine-url", help="a running engine (default: start one in a JVM)")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(STEPS)
    unknown = [s for s in chosen + [s for s in args.skip.split(",") if s] if s not in STEPS]
    if unknown:
        parser.error(f"unknown step {unknown[0]!r}; steps: {', '.join(STEPS)}")
    args.steps = [s for s in chosen if s not in args.skip.split(",")]
    return args


def main() -> None:
    args = parse_args()
    out = args.out or HERE / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    suite = Suite(args, {OURS: HERE, BASE: checkout(args.baseline)}, out)
    print(f"this tree {HERE} against {args.baseline} ({suite.trees[BASE]}), {args.rounds} "
          f"round(s), steps: {', '.join(args.steps)}; results in {out}", flush=True)
    run_steps(suite, args.steps)
    doc = results(suite, args.baseline)
    (out / "results.json").write_text(json.dumps(doc, indent=1))
    drawn = plots.draw_all(doc, out)
    if args.plots is not None:
        drawn += plots.draw_all(doc, args.plots)
    print("\n" + table(suite))
    print(f"\nratio = this tree's median / the baseline's ({args.rounds} interleaved "
          f"round(s)); paired = the median of each round's own ratio (the two trees ran one "
          f"after the other); results: {out / 'results.json'}; plots: "
          f"{', '.join(map(str, drawn)) or 'none'}")


if __name__ == "__main__":
    main()
