"""The report of a run: one JSON object (`--json`) or a table, built from the same document."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from farm.units import format_bytes
from loadgen.options import Plan
from loadgen.runner import Outcome
from loadgen.verify import Verdict, percentiles

VOLUME_NOTE = ("volume counts the raw provider JSON payloads (what the webhooks would carry), "
               "not the msgpack wire size")


def document(plan: Plan, outcome: Outcome, verdict: Verdict | None = None,
             counters: dict | None = None, drain_seconds: float | None = None,
             histogram_latency: dict | None = None, min_achieved: float = 0.0) -> dict:
    """The report as one JSON-able object. `achieved.short` is true when the run reached
    less than min_achieved (a share, 0.95 for 95%) of the asked rate."""
    seconds = outcome.seconds
    asked = None
    if plan.rate is not None:
        base = plan.rate.bytes_per_second or plan.rate.alerts_per_second
        asked = {"text": str(plan.rate), "unit": plan.unit, "per_second": base,
                 "mean_per_second": base * plan.profile.mean}
    achieved_units = outcome.payload_bytes if plan.unit == "bytes" else outcome.alerts
    of_asked = (round(achieved_units / seconds / asked["mean_per_second"], 4)
                if asked else None)
    doc = {
        "run_id": plan.run_id,
        "seed": plan.seed,
        "epoch": plan.epoch if plan.epoch_pinned else round(outcome.start, 3),
        "target": plan.target,
        "profile": plan.profile.name,
        "asked_rate": asked,
        "mix": plan.mix,
        "producers": len(plan.producers),
        "interrupted": outcome.interrupted,
        "volume_note": VOLUME_NOTE,
        "sent": {
            "payload_bytes": int(outcome.payload_bytes),
            "wire_bytes": int(outcome.wire_bytes),
            "alerts": int(outcome.alerts),
            "notifications": int(outcome.notifications),
            "batches": int(outcome.batches),
            "by_kind": outcome.kinds,
        },
        "duration_seconds": round(seconds, 3),
        "achieved": {
            "mb_per_second": round(outcome.payload_bytes / seconds / 1e6, 3),
            "alerts_per_second": round(outcome.alerts / seconds, 1),
            "of_asked": of_asked,
            "minimum_of_asked": min_achieved if asked and min_achieved else None,
            "short": of_asked is not None and of_asked < min_achieved,
        },
        "throttled_seconds": round(outcome.throttled, 2),
        "schedule_dropped_seconds": round(outcome.shifted, 2),
        # Counted only where it matters: --verify with a pinned --epoch, into Redis.
        "known_fingerprints": (int(outcome.known) if plan.verify and plan.epoch_pinned
                               and plan.target == "redis" else None),
        "spike": None,      # --profile spike: filled in by the CLI from its samples
    }
    if plan.target != "redis":
        doc["http"] = {"retried": outcome.retried, "refused": outcome.refused,
                       "first_refusal": outcome.refusal, "unknown_outcome": outcome.unknown,
                       "first_unknown": outcome.unknown_detail}
    if verdict is not None:
        latency = percentiles(verdict.latencies)
        note = ("sent_at -> commit of every stored alert, from the store's commit log (full "
                "duplicates are never committed)")
        if histogram_latency is not None and not verdict.latencies:
            latency = histogram_latency
            note = ("sent_at -> commit of every committed record, from farm's "
                    "farm_end_to_end_seconds histogram over this run, interpolated within its "
                    "buckets (the store keeps no commit time per document)")
        doc["verify"] = {
            "ok": verdict.ok,
            "loss": verdict.loss,
            "sent": verdict.sent,
            "refused": verdict.refused,
            "expected_new": verdict.expected_new,
            "expected_partial": verdict.expected_partial,
            "expected_stored": verdict.expected_stored,
            "expected_duplicates": verdict.expected_duplicates,
            "stored": verdict.stored,
            "dead_lettered": verdict.dead,
            "dead_reasons": dict(verdict.dead_reasons),
            "missing": verdict.missing_versions,
            "missing_dropped_by_windows": verdict.dropped_by_windows,
            "maintenance_dropped": verdict.maintenance,
            "missing_event_ids": verdict.missing,
            "surplus": verdict.surplus_rows,
            "surplus_event_ids": verdict.surplus,
            "unexpected": len(verdict.unexpected),
            "unexpected_event_ids": verdict.unexpected[:1000],
            "unverifiable": verdict.unverifiable,
            "unknown_outcome": verdict.unknown,
            "unchecked_versions": verdict.unchecked_versions,
            "farm_counters": counters,
            "farm_received_expected": verdict.farm_received,
            "counter_problems": verdict.books,
            "drain_seconds": round(drain_seconds, 2) if drain_seconds is not None else None,
            "latency_seconds": {k: (round(v, 4) if v is not None else None)
                                for k, v in latency.items()},
            "latency_note": note,
            "incidents": _incidents(verdict.incidents),
        }
    return doc


def _incidents(check) -> dict | None:
    """The incident storm's check (None without --profile incident-storm)."""
    if check is None:
        return None
    return {"ok": check.ok, "checked": check.checked, "exact": check.exact,
            "note": check.note or None,
            "expected": check.expected, "expected_resolved": check.expected_resolved,
            "expected_visible": check.expected_visible, "stored": check.stored,
            "stored_resolved": check.stored_resolved, "stored_visible": check.stored_visible,
            "missing": check.missing_count, "missing_incidents": check.missing,
            "surplus": check.surplus_count, "surplus_incidents": check.surplus,
            "mismatched": check.mismatched_count, "mismatched_incidents": check.mismatched}


def render(doc: dict, console: Console) -> None:
    """The report as a table: what was sent and how fast, then what --verify found."""
    table = Table(title=f"farm-loadgen run {doc['run_id']}", show_header=False,
                  title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    _add_run(table, doc)
    _add_pace(table, doc)
    if "http" in doc:
        _add_http(table, doc["http"])
    if doc.get("verify") is not None:
        table.add_section()
        _add_expectations(table, doc["verify"])
        _add_findings(table, doc["verify"])
    if doc.get("spike") is not None:
        table.add_section()
        _add_spike(table, doc["spike"])
    table.caption = doc["volume_note"]
    console.print(table)


def _add_run(table: Table, doc: dict) -> None:
    """Where to, how, and what was sent."""
    sent, asked = doc["sent"], doc["asked_rate"]
    table.add_row("target", f"{doc['target']}  ({doc['producers']} producer"
                            f"{'s' if doc['producers'] > 1 else ''})")
    table.add_row("profile", f"{doc['profile']}, seed {doc['seed']}")
    table.add_row("mix", ", ".join(f"{k}:{v:g}" for k, v in doc["mix"].items()))
    table.add_row("asked", asked["text"] if asked else "as fast as possible")
    table.add_row("duration", f"{doc['duration_seconds']:.1f} s"
                              + ("  (interrupted)" if doc["interrupted"] else ""))
    table.add_row("sent", f"{format_bytes(sent['payload_bytes'])} payload "
                          f"({format_bytes(sent['wire_bytes'])} on the wire), "
                          f"{sent['alerts']:,} alerts in {sent['notifications']:,} "
                          f"notifications, {sent['batches']:,} "
                          f"{'batches' if doc['target'] == 'redis' else 'requests'}")
    kinds = sent["by_kind"]
    table.add_row("notifications", ", ".join(f"{k} {v:,}" for k, v in kinds.items()))


def _add_pace(table: Table, doc: dict) -> None:
    """The rate achieved, and what held it back."""
    achieved = doc["achieved"]
    rate = f"{achieved['mb_per_second']:.2f} MB/s, {achieved['alerts_per_second']:,.0f} alerts/s"
    if achieved["of_asked"] is not None:
        rate += f"  ({achieved['of_asked'] * 100:.1f}% of asked)"
    if achieved["short"]:
        table.add_row("achieved", f"[red]{rate}[/red]")
        table.add_row("[red]SHORT[/red]", f"[red]{escape(shortfall(doc))}[/red]")
    else:
        table.add_row("achieved", rate)
    if doc["throttled_seconds"]:
        table.add_row("throttled", f"{doc['throttled_seconds']:.1f} producer-seconds paused: "
                                   f"the farm's backlog passed --max-backlog")
    if doc["schedule_dropped_seconds"]:
        table.add_row("fell behind", f"{doc['schedule_dropped_seconds']:.1f} s of schedule "
                                     f"dropped (producers could not keep the pace)")


def _add_spike(table: Table, spike: dict) -> None:
    """--profile spike: how the farm took it."""
    def ms(value: float | None) -> str:
        return f"{value * 1000:,.0f} ms" if value is not None else "-"

    table.add_row("spike", f"x{spike['factor']:g} from {spike['start_seconds']:.0f} s to "
                           f"{spike['end_seconds']:.0f} s")
    table.add_row("backlog peak", f"{spike['backlog_peak_batches']:,} batches (before the "
                                  f"spike at most {spike['pre_spike_backlog_batches']:,}); "
                                  f"oldest batch {spike['backlog_peak_age_seconds']:.1f} s old")
    recovery = spike["recovery_seconds"]
    table.add_row("recovered", f"{recovery:.1f} s after the spike" if recovery is not None
                  else "not within the run (use --verify to wait for the drain)")
    table.add_row("p99 spike/after", f"{ms(spike['p99_during_seconds'])} during, "
                                     f"{ms(spike['p99_after_seconds'])} after  "
                                     f"(sent_at -> commit, by send time)")


def _add_http(table: Table, http: dict) -> None:
    table.add_row("http", f"{http['retried']:,} retries after 429/503; refused: "
                          f"{http['refused'] or 'none'}")
    if http["first_refusal"]:
        table.add_row("first refusal", http["first_refusal"])
    if http["unknown_outcome"]:
        table.add_row("unknown outcome", f"{http['unknown_outcome']:,} requests sent without "
                                         f"an answer, not re-sent (the first: "
                                         f"{http['first_unknown']})")


def _add_expectations(table: Table, verify: dict) -> None:
    """What the send log predicts, beside what the farm did with it."""
    table.add_row("sent (alerts)", f"{verify['sent']:,}")
    table.add_row("expected new", f"{verify['expected_new']:,} new + "
                                  f"{verify['expected_partial']:,} partial = "
                                  f"{verify['expected_stored']:,} to store")
    table.add_row("expected duplicates", f"{verify['expected_duplicates']:,}")
    table.add_row("indexed", f"{verify['stored']:,} rows in the store")
    counters = verify["farm_counters"] or {}
    table.add_row("duplicates", f"{counters.get('alerts_duplicate', 0):,} (farm counter)")
    dead = f"{verify['dead_lettered']:,}"
    if verify["dead_reasons"]:
        dead += "  " + "; ".join(f"{n:,}: {r}" for r, n in verify["dead_reasons"].items())
    table.add_row("dead-lettered", dead)
    if verify["refused"]:
        table.add_row("refused", f"{verify['refused']:,} (by the gateway)")


def _add_findings(table: Table, verify: dict) -> None:
    """Where the farm and the prediction differ, the counters' check, latency and verdict."""
    if verify["maintenance_dropped"]:
        table.add_row("maintenance", f"{verify['maintenance_dropped']:,} dropped by maintenance "
                                     f"windows (farm counter)")
    missing = _listed(verify["missing"], verify["missing_event_ids"])
    if verify["missing_dropped_by_windows"]:
        missing += "  (no more copies than the windows dropped; not a loss)"
    table.add_row("missing", missing)
    if verify["surplus"]:
        table.add_row("stored twice", _listed(verify["surplus"], verify["surplus_event_ids"])
                      + "  (decided out of order; not a loss)")
    if verify["unexpected"]:
        table.add_row("unexpected", f"{verify['unexpected']:,}: "
                                    f"{', '.join(verify['unexpected_event_ids'][:5])}")
    if verify["unverifiable"]:
        table.add_row("unverifiable", f"{verify['unverifiable']:,} alerts accepted without "
                                      f"a batch id in the answer")
    if verify["unknown_outcome"]:
        table.add_row("unknown outcome", f"{verify['unknown_outcome']:,} alerts in requests "
                                         f"without an answer; {verify['unchecked_versions']:,}"
                                         f" versions with no stored copy seen may be stored "
                                         f"through them")
    if verify["counter_problems"]:
        table.add_row("farm counters",
                      "[red]" + escape("\n".join(verify["counter_problems"])) + "[/red]")
    else:
        sent_checked = verify["farm_received_expected"] is not None
        table.add_row("farm counters", "received = indexed + duplicate + dead + maintenance + "
                      "empty + expired" + (", received = what was sent" if sent_checked else ""))
    lat = verify["latency_seconds"]
    if lat["p50"] is not None:
        table.add_row("latency", f"p50 {lat['p50'] * 1000:,.0f} ms, p95 "
                                 f"{lat['p95'] * 1000:,.0f} ms, p99 "
                                 f"{lat['p99'] * 1000:,.0f} ms  (sent_at -> commit)")
    table.add_row("drain", f"{verify['drain_seconds']:.1f} s after the last push")
    if verify.get("incidents") is not None:
        _add_incidents(table, verify["incidents"])
    table.add_row("verdict", "[green]no loss[/green]" if not verify["loss"] else
                  "[red]LOSS[/red]")


def _add_incidents(table: Table, inc: dict) -> None:
    """The incident storm: predicted against stored, and what differs."""
    table.add_row("incidents", f"{inc['stored']:,} stored ({inc['stored_resolved']:,} resolved, "
                               f"{inc['stored_visible']:,} visible) / {inc['expected']:,} "
                               f"expected ({inc['expected_resolved']:,} resolved, "
                               f"{inc['expected_visible']:,} visible)")
    if inc["note"]:
        table.add_row("", escape(inc["note"]))
    for kind, what in (("missing", "missing_incidents"), ("surplus", "surplus_incidents"),
                       ("mismatched", "mismatched_incidents")):
        if inc[kind]:
            shown = "; ".join(_incident_line(item) for item in inc[what][:5])
            more = f" (+{inc[kind] - 5:,} more)" if inc[kind] > 5 else ""
            table.add_row(f"[red]incidents {kind}[/red]",
                          f"[red]{inc[kind]:,}: {escape(shown)}{more}[/red]")
    if inc["checked"]:
        table.add_row("incident verdict", "[green]as the rule must make them[/green]"
                      if inc["ok"] else "[red]INCIDENTS DIFFER (exit code 6)[/red]")


def _incident_line(item: dict) -> str:
    if "problems" in item:
        return f"{item['id']} ({item['host']}, wave {item['wave']}): {', '.join(item['problems'])}"
    if "reason" in item:
        return f"{item['id']} ({item['group_key']}): {item['reason']}"
    return f"{item['host']} wave {item['wave']}: {len(item['fingerprints'])} alerts fired"


def shortfall(doc: dict) -> str:
    """One line: how far below the asked rate the run stayed, with what slowed it down."""
    achieved, http = doc["achieved"], doc.get("http") or {}
    seen = [f"{doc['throttled_seconds']:.1f} producer-seconds paused by --max-backlog"
            if doc["throttled_seconds"] else "",
            f"{http['retried']:,} retries after 429/503" if http.get("retried") else "",
            f"{doc['schedule_dropped_seconds']:.1f} s of schedule dropped"
            if doc["schedule_dropped_seconds"] else ""]
    seen = [fact for fact in seen if fact]
    return (f"achieved {achieved['of_asked'] * 100:.1f}% of the asked rate, below "
            f"--min-achieved {achieved['minimum_of_asked'] * 100:g}% (exit code 5)"
            + (f": {'; '.join(seen)}" if seen else ""))


def _listed(count: int, groups: list) -> str:
    if not count:
        return "0"
    shown = "; ".join(", ".join(ids[:3]) + (" ..." if len(ids) > 3 else "")
                      for ids in groups[:5])
    more = f" (+{count - 5:,} more)" if count > 5 else ""
    return f"{count:,}: {shown}{more}"
