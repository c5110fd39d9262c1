"""Practice-local periods: half-open ranges of instants, presets, comparisons and buckets.

A :class:`DateRange` is ``[start, end)``: an instant exactly at ``end`` belongs
to the next range, so ranges that meet tile time with nothing counted twice.
Edges are computed in the practice's IANA time zone from the calendar (local
midnights, Mondays, first days of months), so a 23- or 25-hour day is still
one day.

>>> from datetime import datetime, timezone
>>> now = datetime(2026, 11, 25, 5, 0, tzinfo=timezone.utc)   # 16:00 in Sydney
>>> week = DateRange.last_days(7, now=now, timezone="Australia/Sydney")
>>> print(week)
[2026-11-19 00:00 → 2026-11-26 00:00) Australia/Sydney
>>> print(week.previous())
[2026-11-12 00:00 → 2026-11-19 00:00) Australia/Sydney
"""

from __future__ import annotations

import enum
import functools
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import pendulum

from smilepass_core.errors import InvalidPeriod, NaiveDatetime, UnknownTimezone
from smilepass_core.presentation import Shown

__all__ = [
    "HOST_DEPENDENT_ZONES",
    "MAX_BUCKETS",
    "SUPPORTED_YEARS",
    "DateRange",
    "Preset",
    "Unit",
    "add_units",
    "as_instant",
    "check_year",
    "local_day",
    "local_instant",
    "local_midnight",
    "zone",
]

_ONE_US: Final = timedelta(microseconds=1)
_ONE_DAY: Final = timedelta(days=1)


class Unit(enum.Enum):
    """A calendar unit: what a bucket spans, or what ``previous()`` steps back by."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class Preset(enum.Enum):
    """The date-range dropdown of the dashboard."""

    LAST_7_DAYS = "last_7_days"
    LAST_30_DAYS = "last_30_days"
    THIS_WEEK = "this_week"
    LAST_WEEK = "last_week"
    THIS_MONTH = "this_month"
    LAST_MONTH = "last_month"
    THIS_QUARTER = "this_quarter"
    YEAR_TO_DATE = "year_to_date"


#: Names the time zone database may hold that mean something else on each host: the
#: server's own zone (``localtime``), a build artefact (``posixrules``, ``Factory``), or
#: the ``posix/`` and ``right/`` copies (``right/`` counts leap seconds).
HOST_DEPENDENT_ZONES: Final = frozenset({"localtime", "posixrules", "Factory"})
_HOST_DEPENDENT_PREFIXES: Final = ("posix/", "right/")

#: The years instants (in UTC) and local days may fall in: 1900 through 2200. Outside it,
#: month and week arithmetic overflows Python's ``date`` (years 1 and 9999) long before a
#: practice could mean it; inside it, every preset, bucket and comparison can be computed.
SUPPORTED_YEARS: Final = range(1900, 2201)

#: The most buckets a range is cut into (27 years by day): the work of a series stays
#: bounded whatever range a caller asks for.
MAX_BUCKETS: Final = 10_000


def zone(name: str) -> ZoneInfo:
    """Return the IANA time zone ``name``.

    Raises:
        UnknownTimezone: ``name`` is not in the time zone database, or names a zone that
            depends on the host (:data:`HOST_DEPENDENT_ZONES`: ``localtime`` is the
            server's zone, not the practice's).
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownTimezone("timezone", name, "must be an IANA time zone name")
    return _zone(name)


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    if name in HOST_DEPENDENT_ZONES or name.startswith(_HOST_DEPENDENT_PREFIXES):
        raise UnknownTimezone(
            "timezone", name, "depends on the host; name the practice's IANA zone"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimezone("timezone", name, "not an IANA time zone") from None


def check_year(value: date, field: str) -> None:
    """Refuse a date or instant outside :data:`SUPPORTED_YEARS`.

    Raises:
        InvalidPeriod: naming ``field`` and the supported years.
    """
    if value.year not in SUPPORTED_YEARS:
        raise InvalidPeriod(
            field,
            value,
            f"year {value.year} is outside the supported years "
            f"{SUPPORTED_YEARS.start}-{SUPPORTED_YEARS.stop - 1}",
        )


def _timezone_name(value: Any) -> str:
    zone(value)
    return str(value)


def as_instant(value: Any, field: str = "at") -> datetime:
    """Return ``value`` as an aware stdlib datetime in UTC.

    Accepts any aware ``datetime`` (pendulum's included).

    Raises:
        NaiveDatetime: ``value`` has no time zone.
        InvalidPeriod: ``value`` is not a datetime, or falls outside
            :data:`SUPPORTED_YEARS`.
    """
    if type(value) is datetime and value.tzinfo is UTC and value.year in SUPPORTED_YEARS:
        return value  # already one: the common case
    if not isinstance(value, datetime):
        raise InvalidPeriod(field, value, "must be a timezone-aware datetime")
    if value != value:  # pandas' NaT: a missing value that passes as a datetime
        raise InvalidPeriod(field, value, "is a missing value (NaT), not an instant")
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetime(field, value, "naive datetime; give it a time zone")
    check_year(value, field)
    utc = value.astimezone(UTC)
    if type(utc) is not datetime:
        utc = datetime(
            utc.year,
            utc.month,
            utc.day,
            utc.hour,
            utc.minute,
            utc.second,
            utc.microsecond,
            tzinfo=UTC,
        )
    return utc


def local_midnight(day: date, timezone: str) -> datetime:
    """The first instant of local ``day``, in UTC (01:00 local where midnight is in a DST gap).

    Raises:
        InvalidPeriod: ``day`` is not a date, or falls outside :data:`SUPPORTED_YEARS`.
    """
    if not isinstance(day, date):
        raise InvalidPeriod("day", day, "must be a date")
    check_year(day, "day")
    zone(timezone)  # a bad zone raises UnknownTimezone (remembered: cheap)
    return _midnight(day.year, day.month, day.day, timezone)


@functools.lru_cache(maxsize=1 << 15)
def _midnight(year: int, month: int, day: int, timezone: str) -> datetime:
    """:func:`local_midnight`, remembered: billing and bucketing ask the same days again."""
    return datetime(year, month, day, tzinfo=zone(timezone)).astimezone(UTC)


def local_day(at: datetime, timezone: str) -> date:
    """The local calendar day (in ``timezone``) that holds the instant ``at``.

    >>> str(local_day(datetime(2026, 3, 1, 14, 0, tzinfo=UTC), "Australia/Sydney"))
    '2026-03-02'

    Raises:
        NaiveDatetime: ``at`` has no UTC offset.
    """
    return as_instant(at).astimezone(zone(timezone)).date()


def local_instant(wall: datetime, timezone: str, *, fold: int | None = None) -> datetime:
    """Turn a naive local wall-clock time into an instant, refusing to guess.

    A wall time in a DST gap does not exist and raises. A wall time in a DST
    overlap happens twice: pass ``fold=0`` for the first, ``fold=1`` for the
    second; without it, it raises.

    Raises:
        InvalidPeriod: the wall time is not a naive datetime, does not exist, or is
            ambiguous without ``fold``; ``fold`` is not ``None``, ``0`` or ``1`` (the int:
            ``"0"``, ``2`` and ``True`` are refused, not read as a choice).
    """
    if not isinstance(wall, datetime) or wall.tzinfo is not None:
        raise InvalidPeriod("wall", wall, "must be a naive local wall-clock time")
    if fold is not None and (type(fold) is not int or fold not in (0, 1)):
        raise InvalidPeriod("fold", fold, "must be 0 (the first occurrence) or 1 (the second)")
    check_year(wall, "wall")
    zi = zone(timezone)
    first = wall.replace(tzinfo=zi, fold=0)
    second = wall.replace(tzinfo=zi, fold=1)
    if first.astimezone(UTC).astimezone(zi).replace(tzinfo=None) != wall:
        raise InvalidPeriod("wall", wall, f"does not exist in {timezone} (DST gap)")
    if first.utcoffset() != second.utcoffset():
        if fold is None:
            raise InvalidPeriod("wall", wall, f"happens twice in {timezone}; pass fold=0 or fold=1")
        return (second if fold else first).astimezone(UTC)
    return first.astimezone(UTC)


def _is_midnight(instant: datetime, timezone: str) -> bool:
    """True when ``instant`` is the first instant of its local day."""
    return instant == local_midnight(instant.astimezone(zone(timezone)).date(), timezone)


def add_units(day: date, unit: Unit, k: int) -> date:
    """``day`` moved by ``k`` units, from the anchor (31 Jan + 1 month = 28/29 Feb)."""
    d = pendulum.Date(day.year, day.month, day.day)
    if unit is Unit.DAY:
        d = d.add(days=k)
    elif unit is Unit.WEEK:
        d = d.add(weeks=k)
    elif unit is Unit.MONTH:
        d = d.add(months=k)
    elif unit is Unit.QUARTER:
        d = d.add(months=3 * k)
    else:
        d = d.add(years=k)
    return date(d.year, d.month, d.day)


def _unit_start(day: date, unit: Unit) -> date:
    if unit is Unit.DAY:
        return day
    if unit is Unit.WEEK:
        return day - timedelta(days=day.weekday())
    if unit is Unit.MONTH:
        return day.replace(day=1)
    if unit is Unit.QUARTER:
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def _start(value: Any) -> datetime:
    return as_instant(value, "start")


def _end(value: Any) -> datetime:
    return as_instant(value, "end")


@attrs.frozen(cache_hash=True)  # a key of the dashboard's memos, hashed again and again
class DateRange(Shown):
    """A half-open range ``[start, end)`` of instants in a practice's time zone.

    Build one with a preset (:meth:`last_days`, :meth:`this_month`, ...),
    :meth:`custom` for whole local days, or directly from two aware instants.

    Attributes:
        start: First instant in the range (aware, UTC; :attr:`local_start` in practice time).
        end: First instant after the range (aware, UTC; :attr:`local_end` in practice time).
        timezone: The practice's IANA time zone name.
        unit: For calendar presets, the unit that :meth:`previous` steps back
            by; ``None`` for rolling and custom ranges (stepped back by their length).

    Raises:
        NaiveDatetime: an edge has no time zone.
        InvalidPeriod: ``end`` is before ``start``.
        UnknownTimezone: ``timezone`` is not an IANA name.
    """

    start: datetime = attrs.field(converter=_start)
    end: datetime = attrs.field(converter=_end)
    timezone: str = attrs.field(converter=_timezone_name)
    unit: Unit | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(Unit))
    )

    def __attrs_post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidPeriod("end", self.end, f"is before start {self.start.isoformat()}")

    @property
    def local_start(self) -> datetime:
        """``start`` in the practice's time zone."""
        return self.start.astimezone(zone(self.timezone))

    @property
    def local_end(self) -> datetime:
        """``end`` in the practice's time zone."""
        return self.end.astimezone(zone(self.timezone))

    # -- construction -------------------------------------------------------------

    @classmethod
    def custom(cls, first_day: date, last_day: date, *, timezone: str) -> DateRange:
        """Whole local days from ``first_day`` through ``last_day`` (both included).

        Raises:
            InvalidPeriod: ``last_day`` is before ``first_day``, or either is not a date.
        """
        for name, day in (("first_day", first_day), ("last_day", last_day)):
            if not isinstance(day, date) or isinstance(day, datetime):
                raise InvalidPeriod(name, day, "must be a date")
            check_year(day, name)
        if last_day < first_day:
            raise InvalidPeriod("last_day", last_day, f"is before first_day {first_day}")
        return cls(
            local_midnight(first_day, timezone),
            local_midnight(last_day + timedelta(days=1), timezone),
            timezone,
        )

    @classmethod
    def last_days(cls, days: int, *, now: datetime, timezone: str) -> DateRange:
        """The ``days`` calendar days ending with today (today included)."""
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise InvalidPeriod("days", days, "must be a whole number of days, at least 1")
        today = _today(now, timezone)
        return cls.custom(today - timedelta(days=days - 1), today, timezone=timezone)

    @classmethod
    def _calendar(
        cls, unit: Unit, first: date, timezone: str, end: date | None = None
    ) -> DateRange:
        stop = add_units(first, unit, 1) if end is None else end
        return cls(local_midnight(first, timezone), local_midnight(stop, timezone), timezone, unit)

    @classmethod
    def this_week(cls, *, now: datetime, timezone: str) -> DateRange:
        """Monday to Monday, holding today."""
        return cls._calendar(Unit.WEEK, _unit_start(_today(now, timezone), Unit.WEEK), timezone)

    @classmethod
    def last_week(cls, *, now: datetime, timezone: str) -> DateRange:
        """The week before this week."""
        return cls.this_week(now=now, timezone=timezone).previous()

    @classmethod
    def this_month(cls, *, now: datetime, timezone: str) -> DateRange:
        """The calendar month holding today."""
        return cls._calendar(Unit.MONTH, _unit_start(_today(now, timezone), Unit.MONTH), timezone)

    @classmethod
    def last_month(cls, *, now: datetime, timezone: str) -> DateRange:
        """The calendar month before this month."""
        return cls.this_month(now=now, timezone=timezone).previous()

    @classmethod
    def this_quarter(cls, *, now: datetime, timezone: str) -> DateRange:
        """The calendar quarter holding today (quarters start Jan, Apr, Jul, Oct)."""
        first = _unit_start(_today(now, timezone), Unit.QUARTER)
        return cls._calendar(Unit.QUARTER, first, timezone)

    @classmethod
    def year_to_date(cls, *, now: datetime, timezone: str) -> DateRange:
        """1 January through today; its previous period is the same days a year earlier."""
        today = _today(now, timezone)
        return cls._calendar(
            Unit.YEAR, _unit_start(today, Unit.YEAR), timezone, today + timedelta(days=1)
        )

    @classmethod
    def preset(cls, preset: Preset | str, *, now: datetime, timezone: str) -> DateRange:
        """The range a dashboard dropdown choice names, e.g. ``"last_7_days"``.

        Raises:
            InvalidPeriod: ``preset`` names no preset.
        """
        try:
            choice = preset if isinstance(preset, Preset) else Preset(str(preset).strip().lower())
        except ValueError:
            allowed = ", ".join(p.value for p in Preset)
            raise InvalidPeriod("preset", preset, f"unknown preset; allowed: {allowed}") from None
        if choice is Preset.LAST_7_DAYS:
            return cls.last_days(7, now=now, timezone=timezone)
        if choice is Preset.LAST_30_DAYS:
            return cls.last_days(30, now=now, timezone=timezone)
        builders = {
            Preset.THIS_WEEK: cls.this_week,
            Preset.LAST_WEEK: cls.last_week,
            Preset.THIS_MONTH: cls.this_month,
            Preset.LAST_MONTH: cls.last_month,
            Preset.THIS_QUARTER: cls.this_quarter,
            Preset.YEAR_TO_DATE: cls.year_to_date,
        }
        return builders[choice](now=now, timezone=timezone)

    # -- questions --------------------------------------------------------------------

    def __contains__(self, instant: object) -> bool:
        """``start <= instant < end`` for an aware datetime.

        Raises:
            InvalidPeriod: ``instant`` is not a datetime (a ``date`` is a whole local day,
                not an instant: test ``local_midnight(day, timezone)`` instead).
            NaiveDatetime: ``instant`` has no time zone.
        """
        if not isinstance(instant, datetime):
            reason = "must be an aware datetime"
            if isinstance(instant, date):
                reason += "; a date is a whole local day: test local_midnight(day, timezone)"
            raise InvalidPeriod("instant", instant, reason)
        return self.start <= as_instant(instant, "instant") < self.end

    def is_empty(self) -> bool:
        """True when ``start == end``."""
        return self.start == self.end

    @property
    def duration(self) -> timedelta:
        """Elapsed time from start to end (a DST day is 23 or 25 hours)."""
        return self.end - self.start

    @property
    def days(self) -> int:
        """Number of local calendar days the range touches."""
        if self.is_empty():
            return 0
        last = (self.end - _ONE_US).astimezone(zone(self.timezone)).date()
        return (last - self.local_start.date()).days + 1

    def effective_end(self, now: datetime) -> datetime:
        """``min(end, now)``, never before ``start``."""
        return max(self.start, min(self.end, as_instant(now, "now")))

    def cut(self, at: datetime) -> DateRange:
        """This range ending at ``min(end, at)`` (never before start)."""
        return attrs.evolve(self, end=self.effective_end(at))

    # -- comparison -------------------------------------------------------------------

    def previous(self) -> DateRange:
        """The comparison period.

        Calendar presets step back one unit (this month -> last month; year to
        date -> the same days a year earlier). Ranges of whole local days step
        back by their number of days; any other range by its duration.
        """
        if self.unit is not None:
            return DateRange(
                self._shift(self.start, self.unit, -1),
                self._shift(self.end, self.unit, -1, exclusive=True),
                self.timezone,
                self.unit,
            )
        start, end = self.local_start, self.local_end
        if _is_midnight(start, self.timezone) and _is_midnight(end, self.timezone):
            n = (end.date() - start.date()).days
            first = local_midnight(start.date() - timedelta(days=n), self.timezone)
            return DateRange(first, self.start, self.timezone)
        return DateRange(self.start - self.duration, self.start, self.timezone)

    def _shift(self, edge: datetime, unit: Unit, k: int, *, exclusive: bool = False) -> datetime:
        """``edge`` moved ``k`` units in local time; a local midnight stays a local midnight.

        An ``exclusive`` end that is not on a ``unit`` boundary moves with the last
        day it closes (year to date to 28 Feb 2028 -> to 28 Feb 2027 included).
        """
        wall = edge.astimezone(zone(self.timezone)).replace(tzinfo=None)
        day = wall.date()
        if _is_midnight(edge, self.timezone):
            if exclusive and _unit_start(day, unit) != day:
                return local_midnight(add_units(day - _ONE_DAY, unit, k) + _ONE_DAY, self.timezone)
            return local_midnight(add_units(day, unit, k), self.timezone)
        return _localize(datetime.combine(add_units(day, unit, k), wall.time()), self.timezone)

    def comparison(self, now: datetime) -> DateRange:
        """``previous()``, cut at the same local wall-clock offset when ``now`` cuts this range.

        Nov 1 00:00 -> Nov 25 16:00 compares with Oct 1 00:00 -> Oct 25 16:00.
        """
        prev = self.previous()
        eff = self.effective_end(now)
        if eff >= self.end:
            return prev
        tz = self.timezone
        zi = zone(tz)
        if _is_midnight(self.start, tz) and _is_midnight(prev.start, tz):
            # Count local days and keep the wall clock: a start at 01:00 after a
            # DST gap at midnight is still the start of the day.
            wall = _wall(eff, zi)
            day = prev.local_start.date() + (wall.date() - self.local_start.date())
            if _is_midnight(eff, tz):
                cut = local_midnight(day, tz)
            else:
                cut = _localize(datetime.combine(day, wall.time()), tz)
        else:
            offset = _wall(eff, zi) - _wall(self.start, zi)
            cut = _localize(_wall(prev.start, zi) + offset, tz)
        return attrs.evolve(prev, end=min(max(cut, prev.start), prev.end))

    # -- buckets ----------------------------------------------------------------------

    def bucket_edges(self, unit: Unit) -> tuple[datetime, ...]:
        """Edges of the ``unit`` buckets tiling the range: ``start``, every local
        ``unit`` boundary strictly inside, ``end``. Empty range: ``(start,)``.

        Raises:
            InvalidPeriod: more than :data:`MAX_BUCKETS` buckets (a century by day):
                bucket by a longer unit.
        """
        edges = [self.start]
        if self.is_empty():
            return tuple(edges)
        day = _unit_start(self.local_start.date(), unit)
        last = self.local_end.date()
        k = 1
        while True:
            boundary_day = add_units(day, unit, k)
            if boundary_day > last:
                break
            boundary = local_midnight(boundary_day, self.timezone)
            if boundary >= self.end:
                break
            edges.append(boundary)  # after start: the first boundary follows start's own unit
            if len(edges) > MAX_BUCKETS:
                raise InvalidPeriod(
                    "unit",
                    unit,
                    f"would cut {self} into more than {MAX_BUCKETS:,} buckets; use a longer unit",
                )
            k += 1
        edges.append(self.end)
        return tuple(edges)

    def buckets(self, unit: Unit) -> tuple[DateRange, ...]:
        """The ranges between consecutive :meth:`bucket_edges`; they tile this range."""
        edges = self.bucket_edges(unit)
        step = None if unit is Unit.DAY else unit
        return tuple(DateRange(a, b, self.timezone, step) for a, b in _pairs(edges))

    def default_bucket_unit(self) -> Unit:
        """Day up to 31 days, week up to 186 days (about six months), month beyond."""
        if self.days <= 31:
            return Unit.DAY
        if self.days <= 186:
            return Unit.WEEK
        return Unit.MONTH

    def __str__(self) -> str:
        fmt = "%Y-%m-%d %H:%M"
        start, end = self.local_start.strftime(fmt), self.local_end.strftime(fmt)
        return f"[{start} → {end}) {self.timezone}"


def _pairs(edges: tuple[datetime, ...]) -> Iterator[tuple[datetime, datetime]]:
    return itertools.pairwise(edges)


def _today(now: datetime, timezone: str) -> date:
    return as_instant(now, "now").astimezone(zone(timezone)).date()


def _wall(instant: datetime, zi: ZoneInfo) -> datetime:
    return instant.astimezone(zi).replace(tzinfo=None)


def _localize(wall: datetime, timezone: str) -> datetime:
    """A naive wall time as a UTC instant: a gap time moves forward, an overlap takes the first."""
    return wall.replace(tzinfo=zone(timezone), fold=0).astimezone(UTC)
