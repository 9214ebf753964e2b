"""Pipeline throughput: alerts/s of one process through decode -> normalize -> fingerprint ->
dedup decision (a real Redis round trip per chunk) -> enrich -> encode, per provider.

    python bench/pipeline.py                       # every provider, 3 runs each, median
    python bench/pipeline.py --providers prometheus --alerts 300000 --profile
    python bench/pipeline.py --providers keep --profile --profile-sort cumulative --profile-lines 60

Each provider's stream holds realistic payloads in the provider's real shape (as its webhook
sends them) for --population distinct alerts, sent over and over: the first pass is new, later
passes are mostly full duplicates with a share of changed versions (partial), as monitoring
tools re-send firing alerts. Batches are encoded before the clock starts; Redis is flushed
before every run, so every run makes the same decisions. Enrichment uses
configs/enrichment/example.toml unless --rules says otherwise (--rules none: no rules);
correlation rules only with --correlation FILE (bench/correlation-realistic.toml: 20 rules a
team would write, 0-1 matches per alert; bench/correlation-20.toml: 20 heavy ones, 3-5 matches
per alert), maintenance windows only with --maintenance FILE (batch sent_at runs from
2025-03-04T08:20:00Z, one second per batch).

Prints, per provider, alerts/s by wall clock (what one worker core does, Redis round trips
included; Redis runs in its own process) and by the process's CPU time, the decision mix, and
with correlation rules the rule matches per alert that is not a full duplicate.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import redis as redis_lib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from farm import config  # noqa: E402
from farm.pipeline import Pipeline  # noqa: E402
from farm.redis_keys import Keys  # noqa: E402
from farm.redis_server import RedisServer  # noqa: E402
from farm.wire import PROVIDERS, encode_batch  # noqa: E402

EXAMPLE_RULES = ROOT / "configs" / "enrichment" / "example.toml"
SEVERITIES = ("critical", "warning", "warning", "info", "info", "low")
TEAMS = ("platform", "sre", "dba", "payments", "web", "search")
SERVICES = ("postgres", "checkout", "storefront", "search", "billing", "cart", "auth")
ENVS = ("production", "staging", "dev")


class Population:
    """Distinct alerts of one provider; `event(i, version)` renders alert i's notification."""

    def __init__(self, provider: str, size: int, seed: int = 7):
        self.provider = provider
        rng = random.Random(seed)
        self.items = [self._item(rng, n) for n in range(size)]

    @staticmethod
    def _item(rng: random.Random, n: int) -> dict:
        host = f"{rng.choice(('fra', 'ams', 'iad'))}{rng.randint(1, 3)}-node-{n:05d}"
        return {"n": n, "host": host, "service": rng.choice(SERVICES), "env": rng.choice(ENVS),
                "team": rng.choice(TEAMS), "severity": rng.choice(SEVERITIES),
                "value": round(rng.random() * 100, 2), "group": rng.randint(1, 4),
                "rule": f"Rule{n % 300:03d}"}

    def event(self, i: int, version: int) -> object:
        return getattr(self, f"_{self.provider}")(self.items[i], version)

    def alerts_in(self, i: int) -> int:
        return self.items[i]["group"] if self.provider == "prometheus" else 1

    def _prometheus(self, it: dict, version: int) -> dict:
        status = "resolved" if version % 2 else "firing"
        alerts = []
        for k in range(it["group"]):
            instance = f"{it['host']}-{k}:9100"
            alerts.append({
                "status": status,
                "labels": {"alertname": it["rule"], "instance": instance, "job": "node",
                           "severity": it["severity"], "service": it["service"],
                           "environment": it["env"], "team": it["team"],
                           "region": "eu-west-1", "cluster": "k8s-prod-1"},
                "annotations": {"summary": f"{it['rule']} on {instance}",
                                "description": f"Metric above threshold on {instance} for "
                                               f"5m; value {it['value']}",
                                "runbook_url": f"https://runbooks.example.org/{it['rule']}"},
                "startsAt": f"2025-03-04T08:{version % 60:02d}:00.000Z",
                "endsAt": "2025-03-04T09:00:00Z" if status == "resolved"
                else "0001-01-01T00:00:00Z",
                "generatorURL": f"http://prometheus.example.internal:9090/graph?g0.expr="
                                f"{it['rule']}",
                "fingerprint": f"{it['n']:012x}{k:04x}"})
        return {"version": "4", "groupKey": f"{{}}:{{alertname=\"{it['rule']}\"}}",
                "truncatedAlerts": 0, "status": status, "receiver": "farm",
                "groupLabels": {"alertname": it["rule"]},
                "commonLabels": {"alertname": it["rule"], "job": "node"},
                "commonAnnotations": {}, "externalURL": "http://am.example.internal:9093",
                "alerts": alerts}

    def _grafana(self, it: dict, version: int) -> dict:
        status = "resolved" if version % 2 else "firing"
        return {
            "receiver": "farm", "status": status, "orgId": 1,
            "alerts": [{
                "status": status,
                "labels": {"alertname": it["rule"], "grafana_folder": it["team"],
                           "service": it["service"], "severity": it["severity"],
                           "deployment_environment": it["env"], "host": it["host"]},
                "annotations": {"summary": f"{it['rule']} on {it['host']}",
                                "description": f"value {it['value']} above threshold"},
                "startsAt": f"2025-03-04T08:{version % 60:02d}:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": f"alerting/grafana/{it['rule']}/view",  # one per rule
                "fingerprint": f"{it['n']:016x}",
                "silenceURL": "https://grafana.example.org/alerting/silence/new",
                "dashboardURL": "https://grafana.example.org/d/abc",
                "panelURL": "https://grafana.example.org/d/abc?viewPanel=3",
                "values": {"A": it["value"], "C": 1},
                "valueString": f"[ var='A' value={it['value']} ]"}],
            "groupLabels": {"alertname": it["rule"]}, "commonLabels": {"alertname": it["rule"]},
            "commonAnnotations": {}, "externalURL": "https://grafana.example.org/",
            "version": "1", "groupKey": "{}:{}", "truncatedAlerts": 0,
            "title": f"[{status.upper()}:1] {it['rule']} {it['team']} ({it['service']})",
            "state": "alerting" if status == "firing" else "ok", "message": "..."}

    def _datadog(self, it: dict, version: int) -> dict:
        recovered = version % 2
        monitor = 1000 + it["n"] % 500
        return {
            "body": f"%%%\n@slack-{it['team']} {it['rule']} on {it['host']}\n\n[![Metric Graph]"
                    f"(https://p.datadoghq.com/snapshot/view/{it['n']}.png)](https://app."
                    f"datadoghq.com/monitors/{monitor})\n\nThe monitor was last triggered at "
                    f"Tue Mar 04 2025 08:15:30 UTC.\n\n[[Monitor Status](https://app.datadoghq"
                    f".com/monitors/{monitor})] · [[Edit Monitor](https://app.datadoghq.com/"
                    f"monitors/{monitor}/edit)]\n%%%",
            "last_updated": str(1741076130000 + version * 60000),
            "event_type": "query_alert_monitor",
            "title": f"[{'Recovered' if recovered else 'Triggered'} on {{host:{it['host']}}}] "
                     f"{it['rule']}",
            "severity": f"P{1 + it['n'] % 5}", "alert_type": "error",
            "alert_query": f"avg(last_5m):avg:system.cpu.user{{host:{it['host']}}} > 90",
            "alert_transition": "Recovered" if recovered else "Triggered",
            "date": "1741076130000", "scopes": f"host:{it['host']}",
            "org": {"id": "123", "name": "Example"},
            "url": f"https://app.datadoghq.com/monitors/{monitor}",
            "tags": f"env:{it['env']},monitor,team:{it['team']},service:{it['service']}",
            "id": f"{it['n']}{version // 2}", "monitor_id": str(monitor)}

    def _zabbix(self, it: dict, version: int) -> dict:
        resolved = version % 2
        return {
            "id": str(40000 + it["n"]), "triggerId": str(20000 + it["n"]),
            "lastReceived": f"2025.03.04 08:{version % 60:02d}:30",
            "message": f"Problem started at 08:15:30 on 2025.03.04\nProblem name: {it['rule']} "
                       f"on {it['host']}\nHost: {it['host']}\nSeverity: High",
            "name": f"{it['rule']} on {it['host']}", "service": it["host"],
            "severity": ("Disaster", "High", "Average", "Warning", "Information")[it["n"] % 5],
            "status": "RESOLVED" if resolved else "PROBLEM",
            "tags": f'[{{"tag":"environment","value":"{it["env"]}"}},{{"tag":"team","value":'
                    f'"{it["team"]}"}}]',
            "description": f"{it['rule']}: threshold exceeded for 5m", "time": "08:15:30",
            "value": "0" if resolved else "1", "host_ip": "10.1.2.12", "host_name": it["host"],
            "url": "https://zabbix.example.org", "update_action": "", "event_ack": "No"}

    def _keep(self, it: dict, version: int) -> dict:
        return {
            "id": f"{it['rule']}-{it['host']}", "name": f"{it['rule']} on {it['host']}",
            "status": "resolved" if version % 2 else "firing", "severity": it["severity"],
            "lastReceived": f"2025-03-04T08:{version % 60:02d}:30.000Z",
            "environment": it["env"], "service": it["service"], "source": ["custom-monitor"],
            "message": f"value {it['value']}", "description": f"{it['rule']} fired",
            "url": f"runbooks.example.org/{it['rule']}",
            "labels": {"host": it["host"], "team": it["team"], "region": "eu-west-1"},
            "fingerprint": f"{it['rule']}-{it['host']}", "team": it["team"]}


def batches(pop: Population, alerts: int, per_batch: int, changed_every: int) -> tuple[list, int]:
    """Encoded batches carrying about `alerts` alerts: passes over the population; in each
    pass after the first, one alert in `changed_every` changes version (status flip)."""
    out, events, count, versions = [], [], 0, [0] * len(pop.items)
    sent_at, i = 1_741_076_400.0, 0
    while count < alerts:
        slot = i % len(pop.items)
        if i >= len(pop.items) and i % changed_every == 0:
            versions[slot] += 1
        events.append(pop.event(slot, versions[slot]))
        count += pop.alerts_in(slot)
        i += 1
        if len(events) == per_batch:
            sent_at += 1
            out.append(encode_batch(events, pop.provider, "default", f"b{len(out)}", sent_at))
            events = []
    if events:
        out.append(encode_batch(events, pop.provider, "default", f"b{len(out)}", sent_at + 1))
    return out, count


def run_once(pipeline: Pipeline, client, raws: list[bytes], ahead: bool = True
             ) -> tuple[float, float, dict]:
    """One pass over the batches, as a worker runs them: with `ahead`, a batch's correlation
    call runs in Redis while the next batch is prepared, and the batch is finished after."""
    client.flushdb()
    decided = {"n": 0, "p": 0, "f": 0, "matches": 0, "opened": 0}

    def count(outcome) -> None:
        outcome = pipeline.finish(outcome)
        for letter, n in outcome.decisions.items():
            decided[letter] += n
        decided["matches"] += sum(outcome.correlation.matched.values())
        decided["opened"] += outcome.correlation.opened

    wall, cpu = time.perf_counter(), time.process_time()
    before = None
    for raw in raws:
        # The batch before is finished while this one's dedup call runs, as a worker does.
        outcome = pipeline.process(raw, ahead=ahead, meanwhile=(
            None if before is None or not ahead else functools.partial(count, before)))
        if before is not None and not ahead:
            count(before)
        before = outcome
    if before is not None:
        count(before)
    return time.perf_counter() - wall, time.process_time() - cpu, decided


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--providers", default=",".join(PROVIDERS))
    parser.add_argument("--alerts", type=int, default=200_000, help="alerts per run")
    parser.add_argument("--population", type=int, default=20_000, help="distinct alerts")
    parser.add_argument("--batch-events", type=int, default=200, help="events per batch")
    parser.add_argument("--changed-every", type=int, default=5,
                        help="after the first pass, one alert in N changes (a partial)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rules", default=str(EXAMPLE_RULES),
                        help="enrichment rule file, or 'none'")
    parser.add_argument("--correlation", default="none",
                        help="correlation rule file (bench/correlation-realistic.toml, "
                             "bench/correlation-20.toml), or 'none'")
    parser.add_argument("--maintenance", default="none",
                        help="maintenance windows file ([maintenance] rules), or 'none'")
    parser.add_argument("--raw-sample", type=float, default=0.0,
                        help="[store] raw_sample: the share of raw events kept (0 to 1)")
    parser.add_argument("--no-ahead", action="store_true",
                        help="wait for each correlation call before the next batch (as farm "
                             "did before 2026-12)")
    parser.add_argument("--redis-url", default="", help="default: a private redis-server")
    parser.add_argument("--profile", action="store_true", help="cProfile one extra run")
    parser.add_argument("--profile-sort", default="tottime", choices=["tottime", "cumulative"],
                        help="order of --profile's table: own time, or time with callees")
    parser.add_argument("--profile-lines", type=int, default=18, help="rows of that table")
    parser.add_argument("--cpu", type=int, default=None,
                        help="pin this process to one CPU, as farm pins a worker")
    return parser.parse_args()


def bench_config(args: argparse.Namespace):
    """The farm config the pipeline runs with: the rule files asked for, nothing else."""
    def file_or_empty(name: str) -> str:
        return "" if name == "none" else str(Path(name).resolve())

    return config.load(None, env={}, overrides={
        "enrichment": {"files": [] if args.rules == "none" else [args.rules]},
        "correlation": {"rules": file_or_empty(args.correlation)},
        "maintenance": {"rules": file_or_empty(args.maintenance)},
        "store": {"raw_sample": args.raw_sample}})


def bench_provider(args: argparse.Namespace, cfg, client, provider: str) -> None:
    """Median rates of one provider's batches through a fresh pipeline, printed."""
    pipeline = Pipeline(cfg, client, Keys("bench"))
    raws, count = batches(Population(provider, args.population), args.alerts,
                          args.batch_events, args.changed_every)
    results = [run_once(pipeline, client, raws, not args.no_ahead) for _ in range(args.runs)]
    walls = [count / wall for wall, _, _ in results]
    cpus = [count / cpu for _, cpu, _ in results]
    mix = results[-1][2]
    mb = sum(map(len, raws)) / 1e6
    print(f"{provider:<11} {statistics.median(walls):>9,.0f} alerts/s (wall)  "
          f"{statistics.median(cpus):>9,.0f} alerts/s (cpu)  runs: "
          f"{', '.join(f'{w:,.0f}' for w in walls)}  mix n/p/f: "
          f"{mix['n']}/{mix['p']}/{mix['f']}  wire: {mb:.0f} MB")
    if pipeline.correlation.enabled:
        print(f"{'':<11} correlation: {mix['matches'] / max(mix['n'] + mix['p'], 1):.2f} "
              f"rule matches per alert that is not a full duplicate, "
              f"{mix['opened']} incidents opened")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run_once(pipeline, client, raws, not args.no_ahead)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(args.profile_sort).print_stats(
            args.profile_lines)
        print(text.getvalue())


def main() -> None:
    args = parse_args()
    if args.cpu is not None:
        psutil.Process().cpu_affinity([args.cpu])
    server = None
    url = args.redis_url
    if not url:
        server = RedisServer(Path(tempfile.mkdtemp(prefix="farm-bench-")), appendonly=False)
        url = server.start()
    client = redis_lib.Redis.from_url(url)
    cfg = bench_config(args)
    try:
        print(f"python {sys.version.split()[0]}, {args.alerts} alerts/run, batches of "
              f"{args.batch_events} events, rules: {args.rules}, store encoder: "
              f"{cfg.store.kind}, correlation: {args.correlation}, maintenance: "
              f"{args.maintenance}, median of {args.runs} runs")
        for provider in args.providers.split(","):
            bench_provider(args, cfg, client, provider)
    finally:
        client.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
