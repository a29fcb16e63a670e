"""The schedule grammar (pg_cron's, which is Vixie cron's plus `N seconds`) and its calendar."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supalite.cron.schedule import (
    CronSchedule,
    IntervalSchedule,
    RebootSchedule,
    ScheduleError,
    is_valid,
    parse,
)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def cron(text: str) -> CronSchedule:
    s = parse(text)
    assert isinstance(s, CronSchedule), text
    return s


# ---------------------------------------------------------------------------- grammar

VALID = [
    "* * * * *",
    "*/5 * * * *",
    "0 3 * * *",
    "5 4 * * sun",
    "0 0 1,15 * *",
    "0-59/15 0-23/6 * * *",
    "30 2 * jan-mar mon-fri",
    "0 12 * JAN,Dec SAT",
    "0 0 $ * *",  # pg_cron: the last day of the month
    "0 0 * * 7",  # 7 is Sunday too
    "59 23 31 12 6",
    "  0 0 * * *",
    "0\t0\t*\t*\t*",
    "* * * * * ignored-command-part",  # pg_cron reads the five fields and ignores the rest
    "5; * * * *",  # junk glued to a field is skipped, as Vixie cron does
    "#comment\n* * * * *",
    "0 0 31 2 *",  # valid, never runs
    "50-5 * * * *",
    "00005 * * * *",
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@midnight",
    "@hourly",
    "@reboot",
    "@restart",
    "@daily and then some",
    "1 seconds",
    "1 second",
    "59 seconds",
    "30 SECONDS",
    " 10 seconds ",
    "10seconds",
    "+5 seconds",
]

INVALID = [
    "",
    " ",
    "* * * *",
    "* * * * ",
    "60 * * * *",
    "* 24 * * *",
    "* * 0 * *",
    "* * 32 * *",
    "* * * 0 *",
    "* * * 13 *",
    "* * * * 8",
    "1/5 * * * *",  # a step needs a range or *
    "*/0 * * * *",
    "*/60 * * * *",
    "5-70 * * * *",
    "mon * * * *",  # names only for month and weekday
    "* * * * monday",
    "* * * january *",
    "5x * * * *",
    "1, * * * *",
    "$ * * * *",
    "0 0 $5 * *",
    "@Daily",
    "@every 5m",
    "@",
    "0 seconds",
    "60 seconds",
    "-1 seconds",
    "1 second ",  # pg_cron's sscanf accepts trailing blanks only after "seconds"
    "1 secs",
    "1.5 seconds",
    "1 minute",
    "1 seconds please",
    "x" * 1000,
    "every day",
]


@pytest.mark.parametrize("text", VALID)
def test_valid(text: str) -> None:
    assert is_valid(text)


@pytest.mark.parametrize("text", INVALID)
def test_invalid(text: str) -> None:
    with pytest.raises(ScheduleError) as e:
        parse(text)
    assert str(e.value) == f"invalid schedule: {text}"
    assert "[1-59] seconds" in e.value.hint


def test_kinds() -> None:
    assert parse("@reboot") == RebootSchedule()
    assert parse("5 seconds") == IntervalSchedule(5)
    assert parse("-4294967295 seconds") == IntervalSchedule(1)  # C's unsigned wrap-around
    assert isinstance(parse("@hourly"), CronSchedule)


def test_fields() -> None:
    s = cron("0-10/5,30 */6 1,15 jan-mar,dec mon-fri")
    assert s.minutes == {0, 5, 10, 30}
    assert s.hours == {0, 6, 12, 18}
    assert s.days == {1, 15}
    assert s.months == {1, 2, 3, 12}
    assert s.weekdays == {1, 2, 3, 4, 5}
    assert (s.dom_star, s.dow_star) == (False, False)
    assert cron("* * * * 7").weekdays == {0}
    assert cron("* * * * 0-7").weekdays == set(range(7))
    assert cron("*/20 * * * *").minutes == {0, 20, 40}
    assert cron("4294967301 * * * *").minutes == {5}  # atoi keeps the low 32 bits
    # pg_cron fills `a-b` with a > b byte by byte: wraps when a and b sit in different bytes.
    assert cron("50-5 * * * *").minutes == {50, 51, 52, 53, 54, 55, 0, 1, 2, 3, 4, 5}
    assert cron("5-3 * * * *").minutes == frozenset()


def test_macros() -> None:
    assert cron("@hourly").minutes == {0} and cron("@hourly").hours == set(range(24))
    daily = cron("@daily")
    assert daily.minutes == {0} and daily.hours == {0} and daily == cron("@midnight")
    assert cron("@weekly").weekdays == {0}
    assert cron("@monthly").days == {1}
    assert cron("@yearly").months == {1} and cron("@yearly").days == {1}


# ---------------------------------------------------------------------------- calendar


def test_day_of_month_or_day_of_week() -> None:
    # Both restricted: either may match (cron's OR) - the 13th, or any Friday.
    s = cron("0 0 13 * 5")
    assert s.matches(at(2026, 11, 13))  # a Friday the 13th
    assert s.matches(at(2026, 11, 20))  # a Friday
    assert s.matches(at(2026, 12, 13))  # a Sunday the 13th
    assert not s.matches(at(2026, 11, 19))
    # One of them starts with '*': both must match (so '*' means "no restriction").
    s = cron("0 0 */1 * 5")
    assert s.matches(at(2026, 11, 20))
    assert not s.matches(at(2026, 12, 13))
    s = cron("0 0 13 * *")
    assert s.matches(at(2026, 12, 13)) and not s.matches(at(2026, 11, 20))


def test_last_day_of_month() -> None:
    s = cron("0 0 $ * *")
    assert s.matches(at(2026, 2, 28))
    assert s.matches(at(2028, 2, 29))
    assert not s.matches(at(2028, 2, 28))
    assert s.matches(at(2026, 12, 31))
    assert not s.matches(at(2026, 12, 30))


def test_matches_reads_utc() -> None:
    s = cron("0 3 * * *")
    from zoneinfo import ZoneInfo

    assert s.matches(datetime(2026, 6, 1, 5, 0, tzinfo=ZoneInfo("Europe/Paris")))
    assert not s.matches(datetime(2026, 6, 1, 3, 0, tzinfo=ZoneInfo("Europe/Paris")))


def test_next_after() -> None:
    assert cron("*/5 * * * *").next_after(at(2026, 1, 1, 0, 3, 59)) == at(2026, 1, 1, 0, 5)
    assert cron("*/5 * * * *").next_after(at(2026, 1, 1, 0, 5)) == at(2026, 1, 1, 0, 10)
    assert cron("0 3 * * *").next_after(at(2026, 1, 1, 3, 0)) == at(2026, 1, 2, 3, 0)
    assert cron("0 0 29 2 *").next_after(at(2097, 3, 1)) == at(2104, 2, 29)  # 2100 not leap
    assert cron("0 0 31 2 *").next_after(at(2026, 1, 1)) is None
    assert cron("5-3 * * * *").next_after(at(2026, 1, 1)) is None
    assert cron("@yearly").next_after(at(2026, 5, 5)) == at(2027, 1, 1)
    assert cron("0 0 * * 1").next_after(at(2026, 11, 21)) == at(2026, 11, 23)  # a Monday
    assert IntervalSchedule(7).next_after(at(2026, 1, 1, 0, 0, 0)).timestamp() % 7 == 0
    assert RebootSchedule().next_after(at(2026, 1, 1)) is None


def test_interval_matches_whole_multiples() -> None:
    s = IntervalSchedule(10)
    assert s.matches(at(2026, 1, 1, 0, 0, 10))
    assert not s.matches(at(2026, 1, 1, 0, 0, 11))


# ---------------------------------------------------------------------------- properties

FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]


@st.composite
def field_text(draw: st.DrawFn, lo: int, hi: int) -> tuple[str, set[int]]:
    """A field and the values it denotes, built independently of the parser."""
    kind = draw(st.sampled_from(["star", "step", "value", "range", "list"]))
    if kind == "star":
        return "*", set(range(lo, hi + 1))
    if kind == "step":
        step = draw(st.integers(1, hi))
        return f"*/{step}", set(range(lo, hi + 1, step))
    if kind == "value":
        v = draw(st.integers(lo, hi))
        return str(v), {v}
    if kind == "range":
        a = draw(st.integers(lo, hi))
        b = draw(st.integers(a, hi))
        step = draw(st.integers(1, hi))
        return f"{a}-{b}/{step}", set(range(a, b + 1, step))
    values = draw(st.lists(st.integers(lo, hi), min_size=1, max_size=4))
    return ",".join(map(str, values)), set(values)


@st.composite
def schedules(draw: st.DrawFn) -> tuple[str, list[set[int]], list[bool]]:
    parts = [draw(field_text(lo, hi)) for lo, hi in FIELD_RANGES]
    return " ".join(p[0] for p in parts), [p[1] for p in parts], [p[0][0] == "*" for p in parts]


minutes_2026 = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)
)


@settings(max_examples=300, deadline=None)
@given(schedules(), minutes_2026)
def test_matches_is_cron_semantics(
    spec: tuple[str, list[set[int]], list[bool]], t: datetime
) -> None:
    text, (mi, hr, dom, mon, dow), stars = spec
    s = cron(text)
    day_ok = (
        (t.day in dom and t.isoweekday() % 7 in dow)
        if stars[2] or stars[4]
        else (t.day in dom or t.isoweekday() % 7 in dow)
    )
    expected = t.minute in mi and t.hour in hr and t.month in mon and day_ok
    assert s.matches(t) == expected


@settings(max_examples=150, deadline=None)
@given(schedules(), minutes_2026)
def test_next_after_is_the_first_match(
    spec: tuple[str, list[set[int]], list[bool]], t: datetime
) -> None:
    s = cron(spec[0])
    nxt = s.next_after(t)
    if nxt is None:
        return
    assert nxt > t and s.matches(nxt)
    # Nothing in between matches (checked minute by minute over a bounded span).
    probe = t + timedelta(minutes=1)
    for _ in range(3000):
        if probe >= nxt:
            break
        assert not s.matches(probe)
        probe += timedelta(minutes=1)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \t\n*/-,$@#0123456789abcdefjmnosuwy", max_size=30))
def test_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(ScheduleError):
        parse(text)


@given(st.integers(1, 59), st.sampled_from(["second", "seconds", "SECONDS", "Seconds"]))
def test_interval_form(n: int, unit: str) -> None:
    assert parse(f"{n} {unit}") == IntervalSchedule(n)
