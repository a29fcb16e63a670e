"""pg_cron's schedule grammar: parse a schedule and say when it is due.

pg_cron accepts what Vixie cron's crontab parser accepts for the five time fields (ranges,
lists, steps, month and weekday names, `@daily`-style macros, `$` for the last day of the
month) and, failing that, `'<1-59> seconds'`.  The parser below follows that grammar character
by character, quirks included (trailing junk after a field is ignored, `50-5` wraps inside a
byte of the bitmap, huge numbers wrap as C's atoi does), because a migration that pg_cron
accepts must be accepted here and one it rejects must be rejected here.  The SQL validator in
`db/sql/bootstrap/0004_cron.sql` implements the same grammar; tests check the two agree.

Times are UTC, as pg_cron's default `cron.timezone` (GMT).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EOF = ""  # the end of input, after the NUL that pg_cron's buffer yields first
_NUL = "\0"
_MAX_LENGTH = 1000  # MAX_FILE_BUFFER_LENGTH: longer schedules are rejected
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ALL_DAYS, _ALL_MONTHS, _ALL_WEEK = set(range(1, 32)), set(range(1, 13)), set(range(7))
_MACROS = {
    # name: (minute, hour, dom, month, dow, dom_star, dow_star)
    "yearly": ({0}, {0}, {1}, {1}, _ALL_WEEK, False, True),
    "annually": ({0}, {0}, {1}, {1}, _ALL_WEEK, False, True),
    "monthly": ({0}, {0}, {1}, _ALL_MONTHS, _ALL_WEEK, False, True),
    "weekly": ({0}, {0}, _ALL_DAYS, _ALL_MONTHS, {0}, False, True),
    "daily": ({0}, {0}, _ALL_DAYS, _ALL_MONTHS, _ALL_WEEK, False, False),
    "midnight": ({0}, {0}, _ALL_DAYS, _ALL_MONTHS, _ALL_WEEK, False, False),
    "hourly": ({0}, set(range(24)), _ALL_DAYS, _ALL_MONTHS, _ALL_WEEK, False, False),
}  # fmt: skip
_INTERVAL = re.compile(
    r"[ \t\n\r\f\v]*[+-]?([0-9]+)[ \t\n\r\f\v]*second(?:s[ \t\n\r\f\v]*)?", re.I | re.A
)


class ScheduleError(ValueError):
    """pg_cron's own words for a schedule it rejects."""

    def __init__(self, schedule: str) -> None:
        super().__init__(f"invalid schedule: {schedule}")
        self.schedule = schedule
        self.hint = "Use cron format (e.g. 5 4 * * *), or interval format '[1-59] seconds'"


@dataclass(frozen=True)
class CronSchedule:
    """Five cron fields.  `dom_star`/`dow_star`: the field began with `*`, which makes the
    day-of-month and day-of-week fields combine with AND instead of cron's usual OR."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    dom_star: bool = False
    dow_star: bool = False
    last_day: bool = False  # `$`: the last day of the month

    def matches(self, t: datetime) -> bool:
        """Whether the minute containing `t` runs this schedule (t is read in UTC)."""
        t = t.astimezone(UTC)
        return t.minute in self.minutes and t.hour in self.hours and self._day_matches(t)

    def next_after(self, t: datetime) -> datetime | None:
        """The first minute strictly after `t` that matches; None if none ever does."""
        start = t.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.replace(hour=0, minute=0)
        times = sorted((h, m) for h in self.hours for m in self.minutes)
        # Nine years cover every calendar pattern (29 February skips 2100: 8 years apart).
        for _ in range(366 * 9):
            if times and self._day_matches(day):
                for hour, minute in times:
                    candidate = day.replace(hour=hour, minute=minute)
                    if candidate >= start:
                        return candidate
            day += timedelta(days=1)
        return None

    def _day_matches(self, t: datetime) -> bool:
        if t.month not in self.months:
            return False
        this_dom = t.day in self.days or (self.last_day and (t + timedelta(days=1)).day == 1)
        this_dow = (t.isoweekday() % 7) in self.weekdays
        if self.dom_star or self.dow_star:
            return this_dom and this_dow
        return this_dom or this_dow


@dataclass(frozen=True)
class IntervalSchedule:
    """`'N seconds'`: every N seconds.  pg_cron counts from the previous start; supalite counts
    from the Unix epoch so that every process sharing a database agrees on the instants."""

    seconds: int

    def matches(self, t: datetime) -> bool:
        return int(t.timestamp()) % self.seconds == 0

    def next_after(self, t: datetime) -> datetime:
        n = int(t.timestamp()) // self.seconds + 1
        return datetime.fromtimestamp(n * self.seconds, UTC)


@dataclass(frozen=True)
class RebootSchedule:
    """`@reboot`: once when the database server starts (see the scheduler)."""

    def matches(self, t: datetime) -> bool:
        return False

    def next_after(self, t: datetime) -> None:
        return None


Schedule = CronSchedule | IntervalSchedule | RebootSchedule


def parse(schedule: str) -> Schedule:
    """The schedule, or ScheduleError with pg_cron's message."""
    cron = _parse_cron(schedule)
    if cron is not None:
        return cron
    seconds = _parse_interval(schedule)
    if seconds is not None:
        return IntervalSchedule(seconds)
    raise ScheduleError(schedule)


def is_valid(schedule: str) -> bool:
    try:
        parse(schedule)
    except ScheduleError:
        return False
    return True


# -------------------------------------------------------------------------------- interval form


def _parse_interval(schedule: str) -> int | None:
    """`<n> second` or `<n> seconds` (then only blanks), 0 < n < 60, as pg_cron's sscanf reads
    it: an optional sign, strtoul's wrap-around for negative and huge numbers, then the value
    truncated to 32 bits."""
    m = _INTERVAL.fullmatch(schedule)
    if not m:
        return None
    value = min(int(m.group(1)), 2**64 - 1)
    if schedule.lstrip(" \t\n\r\f\v").startswith("-"):
        value = -value % 2**64
    value %= 2**32
    return value if 0 < value < 60 else None


# -------------------------------------------------------------------------------- cron form


class _Reader:
    """pg_cron's in-memory FILE: the characters, then one NUL, then end of input."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.pushed: list[str] = []

    def get(self) -> str:
        if self.pushed:
            return self.pushed.pop()
        if self.pos < len(self.text):
            ch = self.text[self.pos]
        elif self.pos == len(self.text):
            ch = _NUL
        else:
            return _EOF
        self.pos += 1
        return ch

    def unget(self, ch: str) -> None:
        self.pushed.append(ch)


def _blank(ch: str) -> bool:
    return ch in (" ", "\t")


def _alnum(ch: str) -> bool:
    return ch != "" and ch in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _skip_comments(r: _Reader) -> None:
    while True:
        ch = r.get()
        if ch == _EOF:
            return
        while _blank(ch):
            ch = r.get()
        if ch == _EOF:
            return
        if ch not in ("\n", "#"):
            r.unget(ch)
            return
        while ch not in ("\n", _EOF):
            ch = r.get()
        if ch == _EOF:
            return


def _atoi(digits: str) -> int:
    """C's atoi on glibc: strtol (saturating at 64 bits), then truncated to a 32-bit int."""
    value = min(int(digits), 2**63 - 1)
    return (value + 2**31) % 2**32 - 2**31


def _get_number(r: _Reader, ch: str, low: int, names: tuple[str, ...] | None) -> tuple[str, int]:
    """(next char, value) or (EOF, 0)."""
    token = ""
    while _alnum(ch):
        token += ch
        if len(token) >= _MAX_LENGTH:
            return _EOF, 0
        ch = r.get()
    if not token:
        return _EOF, 0
    if names is not None and token.lower() in names:
        return ch, names.index(token.lower()) + low
    if token.isdigit():
        return ch, _atoi(token)
    return _EOF, 0


def _set_range(bits: set[int], start: int, stop: int, step: int) -> None:
    """Bits are offsets from the field's low bound; pg_cron sets `a-b` with a > b through a
    byte-wise bitmap fill, which wraps within and across bytes as reproduced here."""
    if step == 1 and start > stop:
        if start // 8 != stop // 8:
            bits.update(range(start, (start // 8) * 8 + 8))
            bits.update(range((stop // 8) * 8, stop + 1))
        return
    bits.update(range(start, stop + 1, step))


def _get_range(
    r: _Reader, ch: str, bits: set[int], low: int, high: int, names: tuple[str, ...] | None
) -> str:
    if ch == "*":
        num1, num2 = low, high
        ch = r.get()
        if ch == _EOF:
            return _EOF
    else:
        ch, num1 = _get_number(r, ch, low, names)
        if ch == _EOF:
            return _EOF
        if ch != "-":
            if ch == "/" or not low <= num1 <= high:
                return _EOF  # a step needs a range (`1/5` is rejected)
            bits.add(num1 - low)
            return ch
        ch = r.get()
        if ch == _EOF:
            return _EOF
        ch, num2 = _get_number(r, ch, low, names)
        if ch == _EOF:
            return _EOF
    if ch == "/":
        ch = r.get()
        if ch == _EOF:
            return _EOF
        ch, step = _get_number(r, ch, 0, None)
        if ch == _EOF or step <= 0:
            return _EOF
    else:
        step = 1
    if not (low <= num1 <= high and low <= num2 <= high and step <= high):
        return _EOF
    _set_range(bits, num1 - low, num2 - low, step)
    return ch


def _get_list(
    r: _Reader, ch: str, low: int, high: int, names: tuple[str, ...] | None
) -> tuple[str, frozenset[int]]:
    bits: set[int] = set()
    while True:
        ch = _get_range(r, ch, bits, low, high, names)
        if ch != ",":
            break
        ch = r.get()
    while ch not in ("\t", " ", "\n", _EOF, _NUL):
        ch = r.get()  # whatever follows a field up to the next blank is ignored
    while _blank(ch):
        ch = r.get()
    values = frozenset(b + low for b in bits if b + low <= high)
    return ch, values


def _parse_cron(schedule: str) -> CronSchedule | RebootSchedule | None:
    if len(schedule) >= _MAX_LENGTH:
        return None
    r = _Reader(schedule)
    _skip_comments(r)
    ch = r.get()
    if ch == _EOF:
        return None
    if ch == "@":
        word = ""
        ch = r.get()
        while ch != _EOF and ch not in (" ", "\t", "\n", _NUL):
            word += ch
            ch = r.get()
        if word in ("reboot", "restart"):
            return RebootSchedule()
        if word not in _MACROS:
            return None
        mi, hr, dom, mon, dow, dom_star, dow_star = _MACROS[word]
        return CronSchedule(
            frozenset(mi), frozenset(hr), frozenset(dom), frozenset(mon), frozenset(dow),
            dom_star=dom_star, dow_star=dow_star,
        )  # fmt: skip

    fields: list[frozenset[int]] = []
    stars: list[bool] = []
    last_day = False
    for index, (low, high, names) in enumerate(
        ((0, 59, None), (0, 23, None), (1, 31, None), (1, 12, _MONTHS), (0, 7, _DAYS))
    ):
        stars.append(ch == "*")
        if index == 2 and ch == "$":
            ch = r.get()
            if not _blank(ch):
                return None
            while _blank(ch):
                ch = r.get()
            last_day = True
            fields.append(frozenset())
            continue
        ch, values = _get_list(r, ch, low, high, names)
        if ch == _EOF:
            return None
        fields.append(values)
    minutes, hours, days, months, weekdays = fields
    if 0 in weekdays or 7 in weekdays:
        weekdays = weekdays | {0}  # both 0 and 7 mean Sunday
    return CronSchedule(
        minutes, hours, days, months, frozenset(d for d in weekdays if d < 7),
        dom_star=stars[2], dow_star=stars[4], last_day=last_day,
    )  # fmt: skip
