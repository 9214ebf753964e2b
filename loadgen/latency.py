"""Send-to-commit latency from farm's own `farm_end_to_end_seconds` histogram, for stores that
keep no commit time per document (Elasticsearch/OpenSearch).

The indexer observes every committed record's `sent_at -> commit` time. Scraping the histogram
before and after a run and subtracting gives this run's distribution; percentiles are
interpolated within bucket bounds (as Prometheus' histogram_quantile does), so they are as
coarse as the buckets (farm/metrics.py LATENCY_BUCKETS).
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request

_BUCKET = re.compile(r'^farm_end_to_end_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)$')


def scrape(http: str) -> dict[float, float] | None:
    """Cumulative bucket counts {upper bound: count} from the farm's /metrics, or None."""
    try:
        with urllib.request.urlopen(f"http://{http}/metrics", timeout=10) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        m = _BUCKET.match(line)
        if m:
            bound = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets[bound] = buckets.get(bound, 0.0) + float(m.group(2))
    return buckets or None


def percentiles(before: dict[float, float] | None, after: dict[float, float] | None,
                points=(50, 95, 99)) -> dict[str, float | None]:
    """Percentiles (seconds) of what was observed between the two scrapes."""
    none = {f"p{p}": None for p in points}
    if not after:
        return none
    before = before or {}
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return none
    out = {}
    for p in points:
        rank = p / 100 * total
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in zip(bounds, counts, strict=True):
            if count >= rank:
                if bound == float("inf"):
                    out[f"p{p}"] = lower_bound  # beyond the last finite bucket
                else:
                    width = count - lower_count
                    share = (rank - lower_count) / width if width else 1.0
                    out[f"p{p}"] = lower_bound + (bound - lower_bound) * share
                break
            lower_bound, lower_count = bound, count
    return out
