"""Working days, for deadlines such as "the institution completes a return within 3 working days".

A working day is Monday to Friday, unless it is in the holiday list given. `add_working_days`
counts working days after the local date of the start (in `tz`, Asia/Shanghai by default): the
first working day after that date is day 1, so an order placed on a Saturday (or on a Friday
evening UTC, already Saturday in Shanghai) has Monday as day 1, and an order placed on a
Wednesday has Thursday. The deadline is the end of the `days`-th working day, 23:59:59.999999
local time, returned as an aware UTC datetime.

Weekend days that a holiday schedule turns into working days (调休, e.g. the Saturday after
National Day week) are not counted as working days: a deadline computed here is never earlier
than the real one, at worst a day or two later.

Pure and deterministic: no clock (the caller passes the start: in a workflow, workflow.now()), no
randomness, and only zoneinfo's own time zone data (the tzdata package), so it is safe inside
Temporal's workflow sandbox. There a ZoneInfo is a restricted proxy that datetime refuses as a
tzinfo (astimezone raises TypeError), so this module never hands the zone to datetime: it reads
local time from the zone's utcoffset of plain naive datetimes it made itself (tests/test_calendar.py
runs it in a real sandbox and checks it against astimezone around clock changes).
"""

from __future__ import annotations

from collections.abc import Iterator, Set
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Asia/Shanghai"


def is_working_day(d: date, holidays: Set[date] = frozenset()) -> bool:
    """Monday to Friday and not in `holidays`. `d` is a calendar date, not a datetime (whose date
    depends on the time zone it is read in)."""
    if isinstance(d, datetime) or not isinstance(d, date):
        raise ValueError(f"is_working_day takes a date, not {type(d).__name__} ({d!r})")
    return d.weekday() < 5 and d.toordinal() not in {h.toordinal() for h in holidays}


def add_working_days(
    start: datetime,
    days: int,
    *,
    holidays: frozenset[date] = frozenset(),
    tz: str = DEFAULT_TZ,
) -> datetime:
    """The end of the `days`-th working day after the local date of `start`, as aware UTC.

    `start` must be aware (any zone); its date is read in `tz`. `days` is at least 1.
    `holidays` are local calendar dates. Raises ValueError for a naive `start`, `days` < 1,
    an unknown `tz`, or a holiday that is not a plain date.
    """
    if not isinstance(start, datetime):
        raise ValueError(f"start must be a datetime, not {type(start).__name__}")
    if start.utcoffset() is None:
        raise ValueError(f"start {start.isoformat()} is naive: give it a time zone (UTC on the wire)")
    if isinstance(days, bool) or not isinstance(days, int):
        raise ValueError(f"days must be a whole number, not {days!r}")
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    for h in holidays:
        if isinstance(h, datetime) or not isinstance(h, date):
            raise ValueError(f"holidays must be dates, not {type(h).__name__} ({h!r})")
    off = {h.toordinal() for h in holidays}
    zone = _zone(tz)
    # Inside the sandbox a ZoneInfo is a proxy that datetime refuses as a tzinfo, so the zone is
    # only ever asked for its utcoffset of a plain naive local time (see _wall_time).
    wall = _wall_time(start.astimezone(UTC).replace(tzinfo=None), zone)
    day = wall.date()
    counted = 0
    while counted < days:  # ends: holidays is finite
        day += timedelta(days=1)
        if day.weekday() < 5 and day.toordinal() not in off:
            counted += 1
    end = wall.replace(
        year=day.year, month=day.month, day=day.day, hour=23, minute=59, second=59, microsecond=999999, fold=0
    )
    # As an aware datetime would: a local time repeated by a clock change is its first occurrence.
    return (end - zone.utcoffset(end)).replace(tzinfo=UTC)


def _wall_time(utc: datetime, zone: tzinfo) -> datetime:
    """The naive local time (with its fold) at the naive UTC time `utc`, from `zone.utcoffset`
    alone. Same result as utc.replace(tzinfo=UTC).astimezone(zone), which the workflow sandbox
    does not allow (tests/test_calendar.py checks both agree around every clock change)."""
    seen: set[timedelta] = set()
    for offset in _offset_candidates(utc, zone):
        if offset in seen:
            continue
        seen.add(offset)
        wall = utc + offset
        before, after = zone.utcoffset(wall.replace(fold=0)), zone.utcoffset(wall.replace(fold=1))
        if before < after:
            continue  # skipped by a clock going forward: no instant has this local time
        if offset == before:
            return wall.replace(fold=0)
        if offset == after:
            return wall.replace(fold=1)
    raise ValueError(f"time zone {zone} has no local time for {utc.isoformat()} UTC")


def _offset_candidates(utc: datetime, zone: tzinfo) -> Iterator[timedelta]:
    """Offsets the zone may have at `utc`: far from a clock change the first is right; near one,
    the other side's offset comes next; the scan of a day either side is a safety net."""
    guess = zone.utcoffset(utc)
    yield guess
    for fold in (0, 1):
        yield zone.utcoffset((utc + guess).replace(fold=fold))
    for hours in range(-30, 31):
        yield zone.utcoffset(utc + timedelta(hours=hours))


def _zone(tz: str) -> tzinfo:
    try:
        return ZoneInfo(tz)
    except (KeyError, ValueError, TypeError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"{tz!r} is not a known time zone (IANA name, e.g. 'Asia/Shanghai')") from None
