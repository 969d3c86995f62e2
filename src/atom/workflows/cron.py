"""Cron arithmetic in the trigger's timezone (croniter + zoneinfo), and the missed-fire policy.

Fire times are computed in the trigger's IANA zone, so `0 9 * * *` in Europe/Paris fires at 09:00
local time across daylight-saving changes, and stored in UTC. A local time skipped when clocks go
forward fires at the first minute after the gap; one repeated when clocks go back fires once.

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
    """The next `count` fire times strictly after `after`, in UTC.

    When clocks go back, the local times of the repeated hour happen twice; a schedule with a fixed
    hour (`30 2 * * *`) fires at the first of them only, as cron does. A schedule that runs every hour
    (hour field `*` or `*/n`) fires in both, since an hour really passes between them.
    """
    zone = ZoneInfo(timezone)
    iterator = croniter(cron, after.astimezone(zone))
    every_hour = cron.split()[1].startswith("*")
    fires: list[datetime] = []
    while len(fires) < count:
        local = iterator.get_next(datetime).astimezone(zone)
        if not every_hour and _second_of_repeated(local):
            continue
        fires.append(local.astimezone(UTC))
    return fires


def _second_of_repeated(local: datetime) -> bool:
    """True for the second occurrence of a local time that clocks going back made happen twice."""
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


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
