"""CronJob schedules: the five cron fields (and the @hourly-style macros), read by croniter.

The CronJob controller asks one question of a schedule: which start times fell due between
the last run and now? Times are in UTC (labkit's controller-manager runs in UTC; Kubernetes uses
the controller-manager's local zone unless ``spec.timeZone`` says otherwise).
"""

from __future__ import annotations

from datetime import datetime

from croniter import CroniterBadCronError, croniter

MAX_MISSED = 100  # as Kubernetes: after 100 missed starts it stops counting and says so


class InvalidSchedule(ValueError):
    """A schedule that is not five cron fields (or a macro such as @hourly)."""


def parse_schedule(text: str) -> croniter:
    """The schedule as a croniter; raises :class:`InvalidSchedule` with the reason."""
    if text.startswith("TZ=") or text.startswith("CRON_TZ="):
        raise InvalidSchedule("TZ / CRON_TZ in the schedule is not supported: use spec.timeZone")
    if not text.startswith("@") and len(text.split()) != 5:
        raise InvalidSchedule(f"expected exactly 5 fields, found {len(text.split())}")
    try:
        return croniter(text, datetime(2000, 1, 1))
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise InvalidSchedule(str(exc) or "not a cron schedule") from None


def due_times(schedule: str, since: datetime, now: datetime) -> list[datetime]:
    """Start times after ``since`` up to and including ``now`` (at most :data:`MAX_MISSED` + 1)."""
    it = croniter(schedule, since)
    out: list[datetime] = []
    while True:
        t = it.get_next(datetime)
        if t > now:
            return out
        out.append(t)
        if len(out) > MAX_MISSED:
            return out


def next_time(schedule: str, after: datetime) -> datetime:
    """The first start time after ``after``."""
    return croniter(schedule, after).get_next(datetime)
