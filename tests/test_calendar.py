"""workflows/calendar.py: working-day deadlines ("a return is completed within 3 working days")."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from temporalio import workflow

# The test's own tools are passed through the sandbox; the module under test is not, so the
# sandbox test below imports it afresh under the sandbox's restrictions.
with workflow.unsafe.imports_passed_through():
    import pytest

    from tests.conftest import new_worker
from workflows.calendar import add_working_days, is_working_day

# Asia/Shanghai has been +08:00 without daylight saving since 1991. A fixed offset here keeps this
# module importable inside the workflow sandbox, where a ZoneInfo is a proxy datetime refuses.
SHANGHAI = timezone(timedelta(hours=8))
END = time(23, 59, 59, 999999)

# National Day 2025: 1-8 October off (Wednesday to Wednesday). The State Council's schedule also
# made Sunday 28 September and Saturday 11 October working days; those are not counted here.
NATIONAL_DAY_2025 = frozenset(date(2025, 10, d) for d in range(1, 9))


def shanghai(y, m, d, hh=0, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def end_of_shanghai_day(y, m, d) -> datetime:
    return datetime.combine(date(y, m, d), END, tzinfo=SHANGHAI).astimezone(UTC)


# --- worked examples ---------------------------------------------------------------------------


def test_wednesday_plus_three_is_the_end_of_monday():
    # Wed 4 March 2026, 10:00 in Shanghai: Thu is day 1, Fri day 2, Mon 9 March day 3.
    deadline = add_working_days(shanghai(2026, 3, 4, 10), 3)
    assert deadline == datetime(2026, 3, 9, 15, 59, 59, 999999, tzinfo=UTC)  # 23:59:59.999999 +08:00
    assert deadline.tzinfo is UTC
    assert deadline.astimezone(SHANGHAI).date() == date(2026, 3, 9)
    # The time of day does not matter, only the local date.
    assert add_working_days(shanghai(2026, 3, 4, 0, 0), 3) == deadline
    assert add_working_days(datetime(2026, 3, 4, 15, 59, 59, tzinfo=UTC), 3) == deadline  # 23:59:59 local


def test_one_working_day_and_several_weeks():
    assert add_working_days(shanghai(2026, 3, 2, 9), 1) == end_of_shanghai_day(2026, 3, 3)  # Mon -> Tue
    assert add_working_days(shanghai(2026, 3, 6, 9), 1) == end_of_shanghai_day(2026, 3, 9)  # Fri -> Mon
    assert add_working_days(shanghai(2026, 3, 4, 9), 10) == end_of_shanghai_day(2026, 3, 18)  # two weeks


def test_friday_evening_in_shanghai_is_friday_morning_utc():
    # 18:00 Friday in Shanghai is 10:00 Friday UTC: the local date is Friday, Monday is day 1.
    friday_evening = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    assert friday_evening.astimezone(SHANGHAI) == shanghai(2026, 3, 6, 18)
    assert add_working_days(friday_evening, 3) == end_of_shanghai_day(2026, 3, 11)  # Mon, Tue, Wed
    # 17:00 Friday UTC is already 01:00 Saturday in Shanghai: counted from Monday all the same.
    assert add_working_days(datetime(2026, 3, 6, 17, 0, tzinfo=UTC), 3) == end_of_shanghai_day(2026, 3, 11)
    # 15:59:59 Friday UTC is 23:59:59 Friday local; 16:00 UTC is Saturday: same deadline, since
    # Saturday is not a working day either way.
    assert add_working_days(datetime(2026, 3, 5, 15, 59, tzinfo=UTC), 1) == end_of_shanghai_day(2026, 3, 6)
    assert add_working_days(datetime(2026, 3, 5, 16, 0, tzinfo=UTC), 1) == end_of_shanghai_day(2026, 3, 9)


def test_a_start_in_another_zone_is_read_in_shanghai():
    # 09:00 Wednesday in New York (EST, -05:00) is 22:00 Wednesday in Shanghai.
    new_york = datetime(2026, 3, 4, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert add_working_days(new_york, 3) == end_of_shanghai_day(2026, 3, 9)
    # 12:00 Wednesday in New York is 01:00 Thursday in Shanghai: Fri, Mon, Tue.
    assert add_working_days(new_york + timedelta(hours=3), 3) == end_of_shanghai_day(2026, 3, 10)


def test_weekend_start_counts_from_monday():
    # Saturday 7 March 2026: Monday is day 1.
    assert add_working_days(shanghai(2026, 3, 7, 11), 1) == end_of_shanghai_day(2026, 3, 9)
    assert add_working_days(shanghai(2026, 3, 7, 11), 3) == end_of_shanghai_day(2026, 3, 11)
    # Sunday likewise.
    assert add_working_days(shanghai(2026, 3, 8, 23, 59), 3) == end_of_shanghai_day(2026, 3, 11)


def test_national_day_week():
    # Ordered Tuesday 30 September 2025: 1-8 October are holidays, so Thursday 9 October is day 1,
    # Friday 10 day 2, and (Saturday 11, a make-up working day, not being counted) Monday 13 day 3.
    assert add_working_days(shanghai(2025, 9, 30, 16), 3, holidays=NATIONAL_DAY_2025) == end_of_shanghai_day(
        2025, 10, 13
    )
    # Without the holiday list it would have been Friday 3 October.
    assert add_working_days(shanghai(2025, 9, 30, 16), 3) == end_of_shanghai_day(2025, 10, 3)
    # Ordered during the holiday: the first working day after it is day 1.
    assert add_working_days(shanghai(2025, 10, 4, 10), 1, holidays=NATIONAL_DAY_2025) == end_of_shanghai_day(
        2025, 10, 9
    )
    # Ordered on its last day: the same.
    assert add_working_days(shanghai(2025, 10, 8, 10), 1, holidays=NATIONAL_DAY_2025) == end_of_shanghai_day(
        2025, 10, 9
    )


def test_a_holiday_on_a_weekend_is_not_counted_twice():
    # Saturday 4 and Sunday 5 October in the list change nothing from the weekend alone.
    weekend_only = frozenset({date(2026, 3, 7), date(2026, 3, 8)})
    assert add_working_days(shanghai(2026, 3, 6, 9), 1, holidays=weekend_only) == end_of_shanghai_day(
        2026, 3, 9
    )


def test_new_year_across_the_year_end():
    new_year = frozenset({date(2027, 1, 1)})
    # Thu 31 Dec 2026: Fri 1 Jan is a holiday, so Mon 4 Jan is day 1.
    assert add_working_days(shanghai(2026, 12, 31, 12), 1, holidays=new_year) == end_of_shanghai_day(
        2027, 1, 4
    )


def test_another_zone_with_daylight_saving():
    london = ZoneInfo("Europe/London")
    # Friday 27 March 2026 in London; clocks go forward on Sunday 29: Mon 30, Tue 31, Wed 1 April,
    # ending 23:59:59.999999 BST = 22:59:59.999999 UTC.
    start = datetime(2026, 3, 27, 10, tzinfo=london)
    assert add_working_days(start, 3, tz="Europe/London") == datetime(
        2026, 4, 1, 22, 59, 59, 999999, tzinfo=UTC
    )
    # Before the change the same hour is 23:59:59.999999 UTC.
    assert add_working_days(start, 1, tz="Europe/London") == datetime(
        2026, 3, 30, 22, 59, 59, 999999, tzinfo=UTC
    )
    assert add_working_days(datetime(2026, 3, 24, 10, tzinfo=london), 1, tz="Europe/London") == datetime(
        2026, 3, 25, 23, 59, 59, 999999, tzinfo=UTC
    )


def test_is_working_day():
    assert is_working_day(date(2026, 3, 6))  # Friday
    assert not is_working_day(date(2026, 3, 7))  # Saturday
    assert not is_working_day(date(2026, 3, 8))  # Sunday
    assert is_working_day(date(2025, 10, 9), NATIONAL_DAY_2025)
    assert not is_working_day(date(2025, 10, 1), NATIONAL_DAY_2025)
    assert is_working_day(date(2025, 10, 1))
    with pytest.raises(ValueError, match="takes a date"):
        is_working_day(datetime(2026, 3, 6, 12, tzinfo=UTC))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": datetime(2026, 3, 4, 10), "days": 3}, "naive"),
        ({"start": shanghai(2026, 3, 4), "days": 0}, "at least 1"),
        ({"start": shanghai(2026, 3, 4), "days": -2}, "at least 1"),
        ({"start": shanghai(2026, 3, 4), "days": 1.5}, "whole number"),
        ({"start": shanghai(2026, 3, 4), "days": True}, "whole number"),
        ({"start": date(2026, 3, 4), "days": 1}, "must be a datetime"),
        ({"start": shanghai(2026, 3, 4), "days": 1, "tz": "Asia/Nowhere"}, "not a known time zone"),
        ({"start": shanghai(2026, 3, 4), "days": 1, "tz": "../../etc/passwd"}, "not a known time zone"),
        (
            {
                "start": shanghai(2026, 3, 4),
                "days": 1,
                "holidays": frozenset({datetime(2026, 3, 5, tzinfo=UTC)}),
            },
            "must be dates",
        ),
    ],
)
def test_bad_input_is_a_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        add_working_days(**kwargs)


# --- properties --------------------------------------------------------------------------------


def test_random_starts():
    rng = random.Random(1949)
    holidays = frozenset(date(2026, 1, 1) + timedelta(days=rng.randrange(730)) for _ in range(40))
    for _ in range(1_000):
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(365 * 86400))
        days = rng.randint(1, 15)
        deadline = add_working_days(start, days, holidays=holidays)
        assert deadline.tzinfo is UTC
        local = deadline.astimezone(SHANGHAI)
        assert local.time() == END
        assert is_working_day(local.date(), holidays)
        # Exactly `days` working days in (local date of start, deadline's date].
        first = start.astimezone(SHANGHAI).date()
        span = [first + timedelta(days=i) for i in range(1, (local.date() - first).days + 1)]
        assert sum(is_working_day(d, holidays) for d in span) == days
        assert deadline > start
        assert add_working_days(start, days, holidays=holidays) == deadline  # deterministic
        assert add_working_days(start, days + 1, holidays=holidays) > deadline


def test_shanghai_is_a_fixed_offset_for_these_tests():
    shanghai_zone = ZoneInfo("Asia/Shanghai")
    for day in range(0, 800, 7):
        when = datetime(2025, 1, 1, 12, tzinfo=UTC) + timedelta(days=day)
        assert when.astimezone(shanghai_zone).utcoffset() == timedelta(hours=8)


ZONES = (
    "Asia/Shanghai",
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "Asia/Tehran",
)


def expected_deadline(start: datetime, days: int, holidays: frozenset[date], tz: str) -> datetime:
    """The rule done the obvious way, with aware datetimes (not possible inside the sandbox)."""
    zone = ZoneInfo(tz)
    day = start.astimezone(zone).date()
    while days:
        day += timedelta(days=1)
        days -= day.weekday() < 5 and day not in holidays
    return datetime.combine(day, END, tzinfo=zone).astimezone(UTC)


def clock_changes(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The first second of each new UTC offset (a day apart at least), by day steps and bisection."""
    changes = []
    when = start
    while when < end:
        after = when + timedelta(days=1)
        if when.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            lo, hi = when, after
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                mid = mid.replace(microsecond=0)
                if mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset():
                    lo = mid
                else:
                    hi = mid
            changes.append(hi)
        when = after
    return changes


def test_agrees_with_aware_datetimes_around_every_clock_change():
    """add_working_days reads local time through utcoffset alone (the sandbox allows no more);
    check it against astimezone near each clock change of zones with odd ones (30-minute DST,
    a skipped day, Southern Hemisphere summer), and at random."""
    for tz in ZONES:
        for change in clock_changes(
            ZoneInfo(tz), datetime(2008, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
        ):
            for seconds in (-3601, -1800, -1, 0, 1, 1799, 3600, 12 * 3600 - 1):
                start = change + timedelta(seconds=seconds)
                assert add_working_days(start, 1, tz=tz) == expected_deadline(start, 1, frozenset(), tz)
    rng = random.Random(615)
    for _ in range(500):
        tz = rng.choice(ZONES)
        start = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(40 * 365 * 86400))
        days = rng.randint(1, 8)
        assert add_working_days(start, days, tz=tz) == expected_deadline(start, days, frozenset(), tz)


# --- inside Temporal's workflow sandbox --------------------------------------------------------


@workflow.defn(sandboxed=True)
class DeadlineWorkflow:
    """Deadlines computed inside the sandbox: from an input time, from times and holidays built
    in the workflow (the sandbox hands those out as proxies), and from workflow.now()."""

    @workflow.run
    async def run(self, start_text: str) -> list[str]:
        start = datetime.fromisoformat(start_text)
        built_here = datetime(2025, 9, 30, 8, tzinfo=UTC)
        holidays = frozenset(date(2025, 10, d) for d in range(1, 9))
        results = [
            add_working_days(start, 3),
            add_working_days(start, 3, holidays=holidays),
            add_working_days(built_here, 3, holidays=holidays),
            add_working_days(start, 3, holidays=holidays, tz="Europe/London"),
            add_working_days(datetime(2026, 3, 27, 10, tzinfo=UTC), 3, tz="Europe/London"),
            add_working_days(workflow.now(), 1),
        ]
        out = [r.isoformat() for r in results]
        out.append(
            str(is_working_day(date(2025, 10, 9), holidays))
            + str(is_working_day(date(2025, 10, 1), holidays))
        )
        try:
            add_working_days(start, 1, tz="Asia/Nowhere")
        except ValueError as e:
            out.append(str(e))
        return out


async def test_works_inside_the_workflow_sandbox(time_skipping_env):
    client = time_skipping_env.client
    start = shanghai(2025, 9, 30, 16)
    async with new_worker(client, DeadlineWorkflow, workflow_failure_exception_types=[Exception]) as worker:
        result = await client.execute_workflow(
            DeadlineWorkflow.run,
            start.isoformat(),
            id=f"deadline-{worker.task_queue}",
            task_queue=worker.task_queue,
        )
    assert result[:5] == [
        end_of_shanghai_day(2025, 10, 3).isoformat(),
        end_of_shanghai_day(2025, 10, 13).isoformat(),
        end_of_shanghai_day(2025, 10, 13).isoformat(),
        "2025-10-13T22:59:59.999999+00:00",  # 30 Sept 09:00 in London: 9, 10, 13 October (BST)
        "2026-04-01T22:59:59.999999+00:00",  # across the clocks going forward
    ]
    assert datetime.fromisoformat(result[5]) > datetime.now(UTC)
    assert result[6] == "TrueFalse"
    assert "not a known time zone" in result[7]
