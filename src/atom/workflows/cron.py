"""Cron arithmetic in the trigger's timezone (croniter + zoneinfo), and the missed-fire policy.

Fire times are computed in the trigger's IANA zone, so `0 9 * * *` in Europe/Paris fires at 09:00
local time across daylight-saving changes, and stored in UTC.

After downtime several fire times may have passed. A fire later than the grace period is
*missed*: policy `skip` drops missed fires, `run_once` runs once for all of them. A fire within
the grace period is on time and runs (once, however many on-time fires piled up).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from atom.workflows.definition import MissedPolicy

MAX_CATCH_UP = 10_000


def next_fire_times(cron: str, timezone: str, after: datetime, count: int = 1) -> list[datetime]:
    """The next `count` fire times strictly after `after`, in UTC."""
    zone = ZoneInfo(timezone)
    iterator = croniter(cron, after.astimezone(zone))
    return [iterator.get_next(datetime).astimezone(UTC) for _ in range(count)]


@dataclass(frozen=True)
class FirePlan:
    fire_at: datetime | None  # the scheduled time the run stands for; None: nothing runs
    missed: int  # fire times later than the grace period
    on_time: int  # fire times within the grace period
    next_fire_at: datetime  # the next fire time after now
    last_missed: datetime | None = None

    @property
    def skipped(self) -> bool:
        return self.fire_at is None and self.missed > 0


def plan_fires(
    cron: str, timezone: str, *, due_since: datetime, now: datetime, grace: timedelta, policy: MissedPolicy
) -> FirePlan:
    """What to do at `now` for a trigger whose next fire was `due_since` (<= now)."""
    missed: list[datetime] = []
    on_time: list[datetime] = []
    current = due_since
    for _ in range(MAX_CATCH_UP):
        if current > now:
            break
        (on_time if now - current <= grace else missed).append(current)
        current = next_fire_times(cron, timezone, current)[0]
    else:  # more than MAX_CATCH_UP fires passed: count them as missed and jump to now
        current = next_fire_times(cron, timezone, now)[0]
    if on_time:
        fire_at: datetime | None = on_time[-1]
    elif missed and policy is MissedPolicy.RUN_ONCE:
        fire_at = missed[-1]
    else:
        fire_at = None
    return FirePlan(
        fire_at=fire_at,
        missed=len(missed),
        on_time=len(on_time),
        next_fire_at=current,
        last_missed=missed[-1] if missed else None,
    )
