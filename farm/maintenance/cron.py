"""Standard five-field cron expressions (minute hour day-of-month month day-of-week), in UTC.

Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of these;
months and weekdays also take English three-letter names (jan, mon); weekday 0 and 7 are Sunday.
As in Vixie cron, when both day-of-month and day-of-week are restricted (neither starts with
`*`), a day matches if either does.

`Cron.latest(t, not_before)` answers what a recurring maintenance window needs: the most recent
firing at or before `t`, looking back no further than `not_before` (a window's duration), so the
search walks at most the days of one duration.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names for lowest.. in order)
_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))


class CronError(ValueError):
    """The expression is not a five-field cron expression; the message says which part."""


def _number(text: str, field: tuple) -> int:
    name, low, high, names = field
    lowered = text.lower()
    if lowered in names:
        return low + names.index(lowered)
    if not text.isdigit():
        raise CronError(f"{name} {text!r} is not a number" +
                        (f" or a name ({', '.join(names)})" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name} {value} is outside {low}-{high}")
    return value


def _field_values(text: str, field: tuple) -> frozenset[int]:
    name, low, high, _ = field
    values: set[int] = set()
    for part in text.split(","):
        body, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name} step {step_text!r} must be a whole number above 0")
            step = int(step_text)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _number(a, field), _number(b, field)
            if first > last:
                raise CronError(f"{name} range {body!r} runs backwards")
        else:
            first = last = _number(body, field)
            if slash:
                last = high  # `5/15` means from 5 on, every 15
        values.update(range(first, last + 1, step))
    return frozenset(values)


class Cron:
    """A parsed cron expression. Raises CronError on bad text."""

    def __init__(self, text: str):
        parts = text.split()
        if len(parts) != 5:
            raise CronError(f"cron {text!r} needs 5 fields (minute hour day-of-month month "
                            f"day-of-week), like \"0 2 * * sat\"; it has {len(parts)}")
        self.text = text
        values = [_field_values(p, f) for p, f in zip(parts, _FIELDS, strict=True)]
        self.minutes = sorted(values[0], reverse=True)
        self.hours = sorted(values[1], reverse=True)
        self.month_days, self.months = values[2], values[3]
        self.week_days = frozenset(d % 7 for d in values[4])  # 7 is Sunday too
        self.any_month_day = parts[2].startswith("*")
        self.any_week_day = parts[4].startswith("*")

    def day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        by_month_day = day.day in self.month_days
        by_week_day = (day.weekday() + 1) % 7 in self.week_days  # cron counts from Sunday
        if self.any_month_day or self.any_week_day:
            return by_month_day and by_week_day
        return by_month_day or by_week_day

    def latest(self, t: float, not_before: float) -> float | None:
        """The most recent firing time in [not_before, t] (unix seconds), or None."""
        moment = datetime.fromtimestamp(t, UTC)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        floor = datetime.fromtimestamp(not_before, UTC)
        while day + timedelta(days=1) > floor:
            if self.day_matches(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        at = day.replace(hour=hour, minute=minute)
                        if floor <= at <= moment:
                            return at.timestamp()
                        if at < floor:
                            break
            day -= timedelta(days=1)
        return None
