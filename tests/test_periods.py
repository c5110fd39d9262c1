"""Tests for smilepass_core.periods: ranges, presets, comparisons and buckets in local time."""

from __future__ import annotations

import functools
import itertools
import os
import time as time_module
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pendulum
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from smilepass_core.errors import (
    InvalidPeriod,
    InvalidValue,
    NaiveDatetime,
    SmilepassError,
    UnknownTimezone,
)
from smilepass_core.periods import (
    HOST_DEPENDENT_ZONES,
    SUPPORTED_YEARS,
    DateRange,
    Preset,
    Unit,
    add_units,
    as_instant,
    local_instant,
    local_midnight,
    zone,
)

SYDNEY = "Australia/Sydney"
NEW_YORK = "America/New_York"
LONDON = "Europe/London"
SANTIAGO = "America/Santiago"
ZONES = ("UTC", SYDNEY, NEW_YORK, LONDON, SANTIAGO, "Asia/Kolkata")

#: Wednesday 25 November 2026, 16:00 in Sydney (AEDT, UTC+11).
NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
HOUR = timedelta(hours=1)
QUARTER_MONTHS = (1, 4, 7, 10)

# -- helpers ----------------------------------------------------------------------------------


def wall(*args: int) -> datetime:
    """A naive local wall-clock time, for comparing with a range's local edges."""
    return datetime(*args)


def walls(r: DateRange) -> tuple[datetime, datetime]:
    """The range's edges as naive wall-clock times in its own zone."""
    return r.local_start.replace(tzinfo=None), r.local_end.replace(tzinfo=None)


def starts_a_local_day(instant: datetime, tz: str) -> bool:
    """True when ``instant`` is the first instant of its local calendar day in ``tz``."""
    zi = ZoneInfo(tz)
    return (instant - ONE_US).astimezone(zi).date() < instant.astimezone(zi).date()


def starts_unit(day: date, unit: Unit) -> bool:
    """True when the local calendar day ``day`` begins a ``unit``."""
    if unit is Unit.DAY:
        return True
    if unit is Unit.WEEK:
        return day.weekday() == 0
    if unit is Unit.MONTH:
        return day.day == 1
    if unit is Unit.QUARTER:
        return day.day == 1 and day.month in QUARTER_MONTHS
    return (day.month, day.day) == (1, 1)


def refused(
    error: type[InvalidValue],
    field: str,
    call: Callable[[], object],
    *,
    value: object,
    reason: str,
) -> InvalidValue:
    """Run ``call``, check it raises exactly ``error`` with this field, value and reason."""
    with pytest.raises(error) as info:
        call()
    exc = info.value
    assert type(exc) is error
    assert (exc.field, exc.reason) == (field, reason)
    assert type(exc.value) is type(value)
    assert exc.value == value
    assert str(exc) == f"{field}: {reason} (got {value!r})"
    assert isinstance(exc, SmilepassError)
    assert isinstance(exc, ValueError)
    return exc


def syd(*args: int) -> datetime:
    """A Sydney wall-clock time as a UTC instant."""
    return local_instant(wall(*args), SYDNEY)


# -- local strategies -----------------------------------------------------------------------

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int((datetime(2031, 1, 1, tzinfo=UTC) - EPOCH).total_seconds())

zones = st.sampled_from(ZONES)
units = st.sampled_from(Unit)
presets = st.sampled_from(Preset)
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))
instants = st.integers(min_value=0, max_value=SPAN_SECONDS).map(
    lambda s: EPOCH + timedelta(seconds=s)
)
lengths = st.integers(min_value=0, max_value=400)


@st.composite
def custom_ranges(draw: st.DrawFn) -> DateRange:
    """Whole local days, from one day to a little over a year."""
    first = draw(days)
    return DateRange.custom(first, first + timedelta(days=draw(lengths)), timezone=draw(zones))


@st.composite
def preset_ranges(draw: st.DrawFn) -> DateRange:
    """A dashboard preset for a random now."""
    return DateRange.preset(draw(presets), now=draw(instants), timezone=draw(zones))


@st.composite
def instant_ranges(draw: st.DrawFn) -> DateRange:
    """Two arbitrary instants, possibly equal, not on any midnight in particular."""
    start = draw(instants)
    length = timedelta(seconds=draw(st.integers(min_value=0, max_value=400 * 86_400)))
    return DateRange(start, start + length, draw(zones))


whole_day_ranges = st.one_of(custom_ranges(), preset_ranges())
ranges = st.one_of(custom_ranges(), preset_ranges(), instant_ranges())


# -- refusals ---------------------------------------------------------------------------------


NAIVE_REASON = "naive datetime; give it a time zone"
NOT_AWARE_REASON = "must be a timezone-aware datetime"


class TestRefusals:
    def test_naive_start_is_refused(self) -> None:
        """A naive start is refused as NaiveDatetime naming start."""
        naive = wall(2026, 1, 1)
        refused(
            NaiveDatetime,
            "start",
            lambda: DateRange(naive, NOW, SYDNEY),
            value=naive,
            reason=NAIVE_REASON,
        )

    def test_naive_end_is_refused(self) -> None:
        """A naive end is refused as NaiveDatetime naming end."""
        naive = wall(2027, 1, 1)
        refused(
            NaiveDatetime,
            "end",
            lambda: DateRange(NOW, naive, SYDNEY),
            value=naive,
            reason=NAIVE_REASON,
        )

    @pytest.mark.parametrize("preset", list(Preset))
    def test_naive_now_is_refused_by_every_preset(self, preset: Preset) -> None:
        """Every preset refuses a naive now as NaiveDatetime naming now."""
        naive = wall(2026, 11, 25, 16)
        refused(
            NaiveDatetime,
            "now",
            lambda: DateRange.preset(preset, now=naive, timezone=SYDNEY),
            value=naive,
            reason=NAIVE_REASON,
        )

    def test_naive_now_is_refused_by_comparison(self) -> None:
        """comparison() and cut() refuse a naive now."""
        r = DateRange.this_month(now=NOW, timezone=SYDNEY)
        naive = wall(2026, 11, 25, 16)
        for method in (r.comparison, r.cut):
            refused(
                NaiveDatetime,
                "now",
                functools.partial(method, naive),
                value=naive,
                reason=NAIVE_REASON,
            )

    def test_an_edge_with_a_tzinfo_but_no_offset_is_naive(self) -> None:
        """A datetime whose tzinfo gives no UTC offset is as naive as one without a tzinfo."""

        class NoOffset(tzinfo):
            def utcoffset(self, dt: datetime | None) -> None:
                return None

        edge = datetime(2026, 1, 1, tzinfo=NoOffset())
        refused(NaiveDatetime, "at", lambda: as_instant(edge), value=edge, reason=NAIVE_REASON)

    def test_non_datetime_edge_is_refused(self) -> None:
        """A date or a string where an instant belongs is refused as InvalidPeriod."""
        refused(
            InvalidPeriod,
            "start",
            lambda: DateRange(date(2026, 1, 1), NOW, SYDNEY),
            value=date(2026, 1, 1),
            reason=NOT_AWARE_REASON,
        )
        refused(
            InvalidPeriod,
            "end",
            lambda: DateRange(NOW, "2027-01-01", SYDNEY),
            value="2027-01-01",
            reason=NOT_AWARE_REASON,
        )

    def test_end_before_start_is_refused(self) -> None:
        """A range ending before it starts is refused as InvalidPeriod naming end and start."""
        refused(
            InvalidPeriod,
            "end",
            lambda: DateRange(NOW, NOW - ONE_US, SYDNEY),
            value=NOW - ONE_US,
            reason="is before start 2026-11-25T05:00:00+00:00",
        )

    @pytest.mark.parametrize("bad", ["2026-01-01", datetime(2026, 1, 1, tzinfo=UTC), 20260101])
    def test_custom_refuses_a_non_date_first_day(self, bad: object) -> None:
        """custom() refuses a first_day that is not a date (datetimes included)."""
        refused(
            InvalidPeriod,
            "first_day",
            lambda: DateRange.custom(bad, date(2026, 1, 31), timezone=SYDNEY),
            value=bad,
            reason="must be a date",
        )

    @pytest.mark.parametrize("bad", ["2026-01-31", datetime(2026, 1, 31, tzinfo=UTC), None])
    def test_custom_refuses_a_non_date_last_day(self, bad: object) -> None:
        """custom() refuses a last_day that is not a date (datetimes included)."""
        refused(
            InvalidPeriod,
            "last_day",
            lambda: DateRange.custom(date(2026, 1, 1), bad, timezone=SYDNEY),
            value=bad,
            reason="must be a date",
        )

    def test_custom_refuses_last_day_before_first_day(self) -> None:
        """custom() refuses a last_day before first_day, naming last_day and first_day."""
        refused(
            InvalidPeriod,
            "last_day",
            lambda: DateRange.custom(date(2026, 2, 1), date(2026, 1, 31), timezone=SYDNEY),
            value=date(2026, 1, 31),
            reason="is before first_day 2026-02-01",
        )

    def test_custom_of_a_single_day_is_that_day(self) -> None:
        """custom() with last_day == first_day is that one local day."""
        r = DateRange.custom(date(2026, 2, 1), date(2026, 2, 1), timezone=SYDNEY)
        assert walls(r) == (wall(2026, 2, 1), wall(2026, 2, 2))

    @pytest.mark.parametrize("count", [0, -1, True, False, 1.5, 1.0, "7"])
    def test_last_days_needs_at_least_one_whole_day(self, count: object) -> None:
        """last_days() refuses zero, negative, bool and non-int counts, naming days."""
        refused(
            InvalidPeriod,
            "days",
            lambda: DateRange.last_days(count, now=NOW, timezone=SYDNEY),
            value=count,
            reason="must be a whole number of days, at least 1",
        )

    @pytest.mark.parametrize("name", ["", "  ", "\t\n"])
    def test_blank_time_zone_is_refused(self, name: str) -> None:
        """A blank name is refused as UnknownTimezone before any zone lookup."""
        reason = "must be an IANA time zone name"
        for call in (lambda: zone(name), lambda: DateRange(NOW, NOW, name)):
            refused(UnknownTimezone, "timezone", call, value=name, reason=reason)

    @pytest.mark.parametrize("name", [None, 10, ZoneInfo(SYDNEY)])
    def test_non_string_time_zone_is_refused(self, name: object) -> None:
        """A time zone that is not a string (even a ZoneInfo) is refused as UnknownTimezone."""
        reason = "must be an IANA time zone name"
        refused(UnknownTimezone, "timezone", lambda: zone(name), value=name, reason=reason)

    @pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "AEST+10", "../etc/passwd", "/UTC"])
    def test_unknown_time_zone_is_refused(self, name: str) -> None:
        """A name outside the IANA database is refused as UnknownTimezone naming timezone."""
        reason = "not an IANA time zone"
        for call in (
            lambda: zone(name),
            lambda: DateRange(NOW, NOW, name),
            lambda: DateRange.this_month(now=NOW, timezone=name),
        ):
            refused(UnknownTimezone, "timezone", call, value=name, reason=reason)

    def test_unknown_preset_is_refused(self) -> None:
        """An unknown preset string is refused as InvalidPeriod listing the allowed presets."""
        refused(
            InvalidPeriod,
            "preset",
            lambda: DateRange.preset("yesterday", now=NOW, timezone=SYDNEY),
            value="yesterday",
            reason=(
                "unknown preset; allowed: last_7_days, last_30_days, this_week, last_week,"
                " this_month, last_month, this_quarter, year_to_date"
            ),
        )

    @pytest.mark.parametrize("fold", [None, 0, 1])
    def test_local_instant_refuses_a_wall_time_in_a_gap(self, fold: int | None) -> None:
        """02:30 on 8 March 2026 never happens in New York, so it is refused, whatever the fold."""
        gap = wall(2026, 3, 8, 2, 30)
        refused(
            InvalidPeriod,
            "wall",
            lambda: local_instant(gap, NEW_YORK, fold=fold),
            value=gap,
            reason="does not exist in America/New_York (DST gap)",
        )

    @pytest.mark.parametrize("wall_fold", [0, 1])
    def test_local_instant_refuses_an_overlap_without_fold(self, wall_fold: int) -> None:
        """01:30 on 1 November 2026 happens twice in New York, so it needs a fold argument."""
        overlap = datetime(2026, 11, 1, 1, 30, fold=wall_fold)
        refused(
            InvalidPeriod,
            "wall",
            lambda: local_instant(overlap, NEW_YORK),
            value=overlap,
            reason="happens twice in America/New_York; pass fold=0 or fold=1",
        )

    def test_local_instant_refuses_an_aware_datetime(self) -> None:
        """local_instant() takes a naive wall time; an aware one is refused."""
        refused(
            InvalidPeriod,
            "wall",
            lambda: local_instant(NOW, SYDNEY),
            value=NOW,
            reason="must be a naive local wall-clock time",
        )

    def test_as_instant_refuses_naive_and_non_datetimes(self) -> None:
        """as_instant() refuses a naive datetime and anything that is not a datetime."""
        naive = wall(2026, 1, 1)
        refused(NaiveDatetime, "at", lambda: as_instant(naive), value=naive, reason=NAIVE_REASON)
        refused(
            InvalidPeriod,
            "at",
            lambda: as_instant(date(2026, 1, 1)),
            value=date(2026, 1, 1),
            reason=NOT_AWARE_REASON,
        )
        refused(
            InvalidPeriod,
            "paid_at",
            lambda: as_instant("2026-01-01T00:00Z", "paid_at"),
            value="2026-01-01T00:00Z",
            reason=NOT_AWARE_REASON,
        )

    def test_error_types_are_value_errors(self) -> None:
        """NaiveDatetime, InvalidPeriod and UnknownTimezone are SmilepassErrors and ValueErrors."""
        for error in (NaiveDatetime, InvalidPeriod, UnknownTimezone):
            assert issubclass(error, SmilepassError)
            assert issubclass(error, ValueError)


# -- basics -----------------------------------------------------------------------------------


class TestHostIndependentInputs:
    """Inputs whose meaning would depend on the host, or that Python cannot compute with,
    are refused with the library's errors (the second bad-input catalogue, issue #14)."""

    @pytest.mark.parametrize("fold", ["0", "1", 2, -1, True, False, 0.0])
    def test_fold_is_only_the_int_0_or_1(self, fold: object) -> None:
        """``fold="0"`` once picked the second occurrence and ``fold=2`` was read as 1."""
        overlap = wall(2026, 4, 5, 2, 30)  # Sydney's clocks go back at 03:00
        with pytest.raises(InvalidPeriod, match="must be 0") as info:
            local_instant(overlap, SYDNEY, fold=fold)  # type: ignore[arg-type]
        assert info.value.field == "fold"

    def test_fold_0_and_1_pick_the_two_occurrences(self) -> None:
        """The accepted values still choose the first and the second 02:30."""
        overlap = wall(2026, 4, 5, 2, 30)
        first, second = (local_instant(overlap, SYDNEY, fold=f) for f in (0, 1))
        assert second - first == HOUR

    @pytest.mark.parametrize(
        "name", [*sorted(HOST_DEPENDENT_ZONES), "posix/Australia/Sydney", "right/UTC"]
    )
    def test_host_dependent_zone_names_are_refused(self, name: str) -> None:
        """``localtime`` is the server's zone, not a practice's: refused like an unknown name."""
        with pytest.raises(UnknownTimezone, match="depends on the host"):
            zone(name)
        with pytest.raises(UnknownTimezone):
            DateRange.this_month(now=datetime(2026, 11, 25, tzinfo=UTC), timezone=name)

    @pytest.mark.parametrize("year", [1, 1899, 2201, 9999])
    def test_years_outside_the_supported_ones_are_refused(self, year: int) -> None:
        """Years 1 and 9999 raised OverflowError or pendulum's "year 10000"; now every entry
        point names the field and the supported years."""
        instant = datetime(year, 6, 1, tzinfo=UTC)
        for call, field in (
            (lambda: as_instant(instant, "now"), "now"),
            (lambda: DateRange.this_month(now=instant, timezone=SYDNEY), "now"),
            (lambda: local_midnight(date(year, 6, 1), SYDNEY), "day"),
            (lambda: local_instant(wall(year, 6, 1), SYDNEY), "wall"),
            (
                lambda: DateRange.custom(date(year, 6, 1), date(year, 6, 2), timezone=SYDNEY),
                "first_day",
            ),
        ):
            with pytest.raises(
                InvalidPeriod, match="outside the supported years 1900-2200"
            ) as info:
                call()
            assert info.value.field == field

    @pytest.mark.parametrize("timezone", [["UTC"], None, "", "Not/AZone"])
    def test_local_midnight_refuses_a_bad_zone(self, timezone: object) -> None:
        """A zone that is not an IANA name is UnknownTimezone, remembered days or not."""
        local_midnight(date(2026, 1, 1), "UTC")
        with pytest.raises(UnknownTimezone):
            local_midnight(date(2026, 1, 1), timezone)  # type: ignore[arg-type]

    @pytest.mark.parametrize("day", ["2026-11-25", 20261125, None])
    def test_local_midnight_needs_a_date(self, day: object) -> None:
        """A string, a number or None for the day is InvalidPeriod naming ``day``."""
        with pytest.raises(InvalidPeriod, match="must be a date") as info:
            local_midnight(day, SYDNEY)  # type: ignore[arg-type]
        assert info.value.field == "day"

    @given(
        now=st.datetimes(timezones=st.sampled_from([UTC, ZoneInfo(SYDNEY)])),
        preset=st.sampled_from(Preset),
        zone_name=st.sampled_from(ZONES),
    )
    def test_any_year_gives_a_range_or_a_library_error(
        self, now: datetime, preset: Preset, zone_name: str
    ) -> None:
        """Across every datetime Python has, a preset and its comparison are computed or
        refused with InvalidPeriod: never OverflowError or pendulum's ValueError."""
        if now.astimezone(UTC).year in SUPPORTED_YEARS[1:-1]:
            r = DateRange.preset(preset, now=now, timezone=zone_name)
            assert r.comparison(now).end <= r.start
            assert r.bucket_edges(r.default_bucket_unit())[-1] == r.end
            return
        try:
            r = DateRange.preset(preset, now=now, timezone=zone_name)
            r.comparison(now)
            r.bucket_edges(r.default_bucket_unit())
        except InvalidPeriod as error:
            reason = error.reason
        else:
            reason = "supported years"  # computed: fine at the edge years 1900 and 2200
        assert "supported years" in reason


class TestRangeBasics:
    def test_empty_range_is_valid(self) -> None:
        """start == end is an empty range: no days, no duration, no buckets, holds nothing."""
        r = DateRange(NOW, NOW, SYDNEY)
        assert r.is_empty()
        assert r.duration == timedelta(0)
        assert r.days == 0
        assert NOW not in r
        assert r.bucket_edges(Unit.DAY) == (r.start,)
        assert all(r.buckets(unit) == () for unit in Unit)

    def test_membership_is_half_open(self) -> None:
        """start is in the range, end is not, and the instant before end is."""
        r = DateRange.custom(date(2026, 11, 25), date(2026, 11, 25), timezone=SYDNEY)
        assert r.start in r
        assert r.end - ONE_US in r
        assert r.end not in r
        assert r.start - ONE_US not in r

    def test_membership_compares_instants_not_wall_times(self) -> None:
        """An aware datetime in any zone is tested by the instant it names."""
        r = DateRange.custom(date(2026, 11, 25), date(2026, 11, 25), timezone=SYDNEY)
        new_york_evening = datetime(2026, 11, 24, 9, tzinfo=ZoneInfo(NEW_YORK))
        assert new_york_evening in r
        assert datetime(2026, 11, 25, 12, tzinfo=ZoneInfo(NEW_YORK)) not in r

    def test_membership_of_non_datetimes_is_refused(self) -> None:
        """A date or a string tested ``in`` a range is an error, not a silent False: a
        date is a whole local day, and the error says how to test one."""
        r = DateRange.custom(date(2026, 11, 25), date(2026, 11, 25), timezone=SYDNEY)
        with pytest.raises(InvalidPeriod, match="whole local day: test local_midnight") as info:
            date(2026, 11, 25) in r  # noqa: B015
        assert info.value.field == "instant"
        with pytest.raises(InvalidPeriod, match="must be an aware datetime"):
            "2026-11-25" in r  # noqa: B015
        with pytest.raises(NaiveDatetime):
            datetime(2026, 11, 25, 12) in r  # noqa: B015
        assert local_midnight(date(2026, 11, 25), SYDNEY) in r

    def test_edges_are_stored_in_utc(self) -> None:
        """Edges are plain stdlib datetimes in UTC; local_start/local_end are in the zone."""
        r = DateRange.custom(date(2026, 11, 25), date(2026, 11, 25), timezone=SYDNEY)
        assert type(r.start) is datetime
        assert r.start.utcoffset() == timedelta(0)
        assert r.end.utcoffset() == timedelta(0)
        assert r.start == datetime(2026, 11, 24, 13, tzinfo=UTC)
        assert r.local_start.tzinfo == ZoneInfo(SYDNEY)
        assert r.local_end.tzinfo == ZoneInfo(SYDNEY)
        assert walls(r) == (wall(2026, 11, 25), wall(2026, 11, 26))

    def test_pendulum_and_offset_edges_become_utc_datetimes(self) -> None:
        """Aware pendulum or fixed-offset datetimes are stored as the same instant in UTC."""
        start = pendulum.datetime(2026, 11, 25, 16, tz=SYDNEY)
        end = datetime(2026, 11, 25, 18, tzinfo=timezone(timedelta(hours=11)))
        r = DateRange(start, end, SYDNEY)
        assert type(r.start) is datetime
        assert r.start == NOW
        assert r.start.tzinfo is UTC
        assert r.duration == timedelta(hours=2)

    def test_as_instant_converts_to_utc(self) -> None:
        """as_instant() returns the same instant as a UTC stdlib datetime."""
        t = as_instant(pendulum.datetime(2026, 11, 25, 16, tz=SYDNEY))
        assert type(t) is datetime
        assert t == NOW
        assert t.utcoffset() == timedelta(0)

    def test_as_instant_keeps_every_field_of_a_pendulum_datetime(self) -> None:
        """A pendulum datetime becomes the same instant to the microsecond, as a stdlib datetime."""
        t = as_instant(pendulum.datetime(2026, 11, 25, 16, 7, 8, 9, tz=SYDNEY))
        assert type(t) is datetime
        assert t.tzinfo is UTC
        assert t == datetime(2026, 11, 25, 5, 7, 8, 9, tzinfo=UTC)
        assert (t.hour, t.minute, t.second, t.microsecond) == (5, 7, 8, 9)

    def test_zone_returns_the_iana_zone(self) -> None:
        """zone() returns the ZoneInfo of an IANA name."""
        assert zone(SYDNEY) == ZoneInfo(SYDNEY)

    def test_days_counts_touched_local_days(self) -> None:
        """days counts the local calendar days a range touches, partial ones included."""
        assert DateRange.custom(date(2026, 1, 1), date(2026, 1, 31), timezone=SYDNEY).days == 31
        assert DateRange(syd(2026, 11, 25, 23), syd(2026, 11, 26, 1), SYDNEY).days == 2
        assert DateRange(syd(2026, 11, 25, 9), syd(2026, 11, 25, 10), SYDNEY).days == 1

    @pytest.mark.parametrize(
        ("last", "unit"),
        [
            (date(2026, 1, 31), Unit.DAY),
            (date(2026, 2, 1), Unit.WEEK),
            (date(2026, 7, 5), Unit.WEEK),
        ],
    )
    def test_default_bucket_unit(self, last: date, unit: Unit) -> None:
        """Day buckets up to 31 days, weeks up to 186 days."""
        r = DateRange.custom(date(2026, 1, 1), last, timezone=SYDNEY)
        assert r.default_bucket_unit() is unit

    def test_default_bucket_unit_is_month_beyond_six_months(self) -> None:
        """A range longer than 186 days is bucketed by month."""
        r = DateRange.custom(date(2026, 1, 1), date(2026, 7, 6), timezone=SYDNEY)
        assert r.days == 187
        assert r.default_bucket_unit() is Unit.MONTH

    def test_cut_and_effective_end(self) -> None:
        """cut(now) ends the range at now, never after end nor before start."""
        r = DateRange.this_month(now=NOW, timezone=SYDNEY)
        assert r.effective_end(NOW) == NOW
        assert r.cut(NOW) == DateRange(r.start, NOW, SYDNEY, Unit.MONTH)
        assert r.cut(r.end + HOUR).end == r.end
        assert r.cut(r.start - HOUR).is_empty()

    def test_previous_of_a_range_with_one_midnight_edge_steps_back_by_duration(self) -> None:
        """A range with one edge on a local midnight steps back by its duration, not by days."""
        from_midnight = DateRange(syd(2026, 11, 24), syd(2026, 11, 25, 12), SYDNEY)
        assert walls(from_midnight.previous()) == (wall(2026, 11, 22, 12), wall(2026, 11, 24))
        to_midnight = DateRange(syd(2026, 11, 24, 12), syd(2026, 11, 26), SYDNEY)
        assert walls(to_midnight.previous()) == (wall(2026, 11, 23), wall(2026, 11, 24, 12))

    def test_comparison_of_a_range_from_midnight_whose_previous_is_not(self) -> None:
        """When only the range starts at midnight, comparison() is cut by elapsed wall time."""
        r = DateRange(syd(2026, 11, 24), syd(2026, 11, 25, 12), SYDNEY)
        assert walls(r.comparison(syd(2026, 11, 24, 6))) == (
            wall(2026, 11, 22, 12),
            wall(2026, 11, 22, 18),
        )

    def test_bucket_edge_on_the_last_local_day(self) -> None:
        """A local midnight on the day the range ends, before its end, is an edge."""
        r = DateRange(syd(2026, 11, 24, 12), syd(2026, 11, 25, 12), SYDNEY)
        assert r.bucket_edges(Unit.DAY) == (r.start, syd(2026, 11, 25), r.end)

    def test_bucket_units(self) -> None:
        """Day buckets carry no unit (they step back by days); other buckets carry theirs."""
        r = DateRange.custom(date(2026, 1, 1), date(2027, 12, 31), timezone=SYDNEY)
        assert {b.unit for b in r.buckets(Unit.DAY)} == {None}
        for unit in (Unit.WEEK, Unit.MONTH, Unit.QUARTER, Unit.YEAR):
            assert {b.unit for b in r.buckets(unit)} == {unit}

    def test_str_shows_local_edges(self) -> None:
        """str() shows the local edges and the zone, as the module docstring documents."""
        week = DateRange.last_days(7, now=NOW, timezone=SYDNEY)
        assert str(week) == "[2026-11-19 00:00 → 2026-11-26 00:00) Australia/Sydney"


# -- presets for a fixed now ------------------------------------------------------------------

D = wall
PRESET_TABLE = [
    # preset, (local start, local end), (previous start, previous end)
    (Preset.LAST_7_DAYS, (D(2026, 11, 19), D(2026, 11, 26)), (D(2026, 11, 12), D(2026, 11, 19))),
    (Preset.LAST_30_DAYS, (D(2026, 10, 27), D(2026, 11, 26)), (D(2026, 9, 27), D(2026, 10, 27))),
    (Preset.THIS_WEEK, (D(2026, 11, 23), D(2026, 11, 30)), (D(2026, 11, 16), D(2026, 11, 23))),
    (Preset.LAST_WEEK, (D(2026, 11, 16), D(2026, 11, 23)), (D(2026, 11, 9), D(2026, 11, 16))),
    (Preset.THIS_MONTH, (D(2026, 11, 1), D(2026, 12, 1)), (D(2026, 10, 1), D(2026, 11, 1))),
    (Preset.LAST_MONTH, (D(2026, 10, 1), D(2026, 11, 1)), (D(2026, 9, 1), D(2026, 10, 1))),
    (Preset.THIS_QUARTER, (D(2026, 10, 1), D(2027, 1, 1)), (D(2026, 7, 1), D(2026, 10, 1))),
    (Preset.YEAR_TO_DATE, (D(2026, 1, 1), D(2026, 11, 26)), (D(2025, 1, 1), D(2025, 11, 26))),
]
COMPARISON_TABLE = [
    # preset, comparison(NOW) as (local start, local end)
    (Preset.LAST_7_DAYS, (D(2026, 11, 12), D(2026, 11, 18, 16))),
    (Preset.LAST_30_DAYS, (D(2026, 9, 27), D(2026, 10, 26, 16))),
    (Preset.THIS_WEEK, (D(2026, 11, 16), D(2026, 11, 18, 16))),
    (Preset.LAST_WEEK, (D(2026, 11, 9), D(2026, 11, 16))),
    (Preset.THIS_MONTH, (D(2026, 10, 1), D(2026, 10, 25, 16))),
    (Preset.LAST_MONTH, (D(2026, 9, 1), D(2026, 10, 1))),
    (Preset.THIS_QUARTER, (D(2026, 7, 1), D(2026, 8, 25, 16))),
    (Preset.YEAR_TO_DATE, (D(2025, 1, 1), D(2025, 11, 25, 16))),
]


class TestPresets:
    def test_now_is_sixteen_hundred_on_a_wednesday_in_sydney(self) -> None:
        """The fixed now is Wednesday 25 November 2026, 16:00 in Sydney."""
        local = NOW.astimezone(ZoneInfo(SYDNEY))
        assert local.replace(tzinfo=None) == wall(2026, 11, 25, 16)
        assert local.weekday() == 2

    @pytest.mark.parametrize(("preset", "edges", "_previous"), PRESET_TABLE)
    def test_preset_edges(
        self,
        preset: Preset,
        edges: tuple[datetime, datetime],
        _previous: tuple[datetime, datetime],
    ) -> None:
        """Each preset has the documented local edges for 16:00 on Wed 25 Nov 2026 in Sydney."""
        r = DateRange.preset(preset, now=NOW, timezone=SYDNEY)
        assert walls(r) == edges
        assert r.timezone == SYDNEY

    @pytest.mark.parametrize(("preset", "_edges", "previous"), PRESET_TABLE)
    def test_preset_previous(
        self,
        preset: Preset,
        _edges: tuple[datetime, datetime],
        previous: tuple[datetime, datetime],
    ) -> None:
        """previous() steps back one unit, the same days a year earlier, or the same day count."""
        r = DateRange.preset(preset, now=NOW, timezone=SYDNEY)
        assert walls(r.previous()) == previous
        assert r.previous().unit == r.unit

    @pytest.mark.parametrize(("preset", "expected"), COMPARISON_TABLE)
    def test_comparison_is_cut_at_the_same_wall_clock_offset(
        self, preset: Preset, expected: tuple[datetime, datetime]
    ) -> None:
        """comparison(now) ends as far into previous() as now is into the range, by wall clock."""
        r = DateRange.preset(preset, now=NOW, timezone=SYDNEY)
        assert walls(r.comparison(NOW)) == expected

    def test_comparison_at_the_end_is_the_whole_previous(self) -> None:
        """At exactly the end of a 30-day month, it compares with all of the 31-day month before."""
        r = DateRange.this_month(now=NOW, timezone=SYDNEY)
        assert r.comparison(r.end) == r.previous()
        assert walls(r.comparison(r.end)) == (D(2026, 10, 1), D(2026, 11, 1))

    def test_past_range_compares_with_the_whole_previous(self) -> None:
        """A range wholly before now compares with the whole of previous()."""
        r = DateRange.last_month(now=NOW, timezone=SYDNEY)
        assert r.comparison(NOW) == r.previous()

    def test_comparison_past_a_short_previous_month_is_all_of_it(self) -> None:
        """On 31 Mar 12:00 the offset of 30 days 12 hours overruns February, so all of it counts."""
        late = datetime(2026, 3, 31, 1, tzinfo=UTC)
        r = DateRange.this_month(now=late, timezone=SYDNEY)
        assert walls(r.comparison(late)) == (D(2026, 2, 1), D(2026, 3, 1))

    def test_future_range_compares_with_an_empty_start(self) -> None:
        """A range that has not started yet compares with an empty range at previous().start."""
        r = DateRange.this_month(now=NOW + timedelta(days=40), timezone=SYDNEY)
        c = r.comparison(NOW)
        assert c.is_empty()
        assert c.start == r.previous().start

    @pytest.mark.parametrize("preset", list(Preset))
    def test_preset_by_name(self, preset: Preset) -> None:
        """A preset named by its string value, in any case, is the same range as the enum."""
        by_enum = DateRange.preset(preset, now=NOW, timezone=SYDNEY)
        assert DateRange.preset(preset.value, now=NOW, timezone=SYDNEY) == by_enum
        assert DateRange.preset(f" {preset.value.upper()} ", now=NOW, timezone=SYDNEY) == by_enum

    def test_preset_units(self) -> None:
        """Calendar presets carry their unit; rolling ones carry none."""
        units_by_preset = {p: DateRange.preset(p, now=NOW, timezone=SYDNEY).unit for p in Preset}
        assert units_by_preset == {
            Preset.LAST_7_DAYS: None,
            Preset.LAST_30_DAYS: None,
            Preset.THIS_WEEK: Unit.WEEK,
            Preset.LAST_WEEK: Unit.WEEK,
            Preset.THIS_MONTH: Unit.MONTH,
            Preset.LAST_MONTH: Unit.MONTH,
            Preset.THIS_QUARTER: Unit.QUARTER,
            Preset.YEAR_TO_DATE: Unit.YEAR,
        }

    def test_last_days_of_one_is_today(self) -> None:
        """last_days(1) is today alone, from local midnight to the next."""
        r = DateRange.last_days(1, now=NOW, timezone=SYDNEY)
        assert r == DateRange.custom(date(2026, 11, 25), date(2026, 11, 25), timezone=SYDNEY)
        assert walls(r) == (wall(2026, 11, 25), wall(2026, 11, 26))
        assert walls(DateRange.last_days(2, now=NOW, timezone=SYDNEY)) == (
            wall(2026, 11, 24),
            wall(2026, 11, 26),
        )

    def test_today_is_the_practice_day_not_the_utc_day(self) -> None:
        """At 23:30 UTC on 30 Nov it is already 1 Dec in Sydney, so this month is December."""
        now = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
        assert walls(DateRange.this_month(now=now, timezone=SYDNEY)) == (
            wall(2026, 12, 1),
            wall(2027, 1, 1),
        )
        assert walls(DateRange.this_month(now=now, timezone="UTC")) == (
            wall(2026, 11, 1),
            wall(2026, 12, 1),
        )


# -- add_units --------------------------------------------------------------------------------

ADD_UNITS_TABLE = [
    (date(2026, 1, 31), Unit.DAY, 1, date(2026, 2, 1)),
    (date(2026, 3, 1), Unit.DAY, -1, date(2026, 2, 28)),
    (date(2026, 1, 31), Unit.WEEK, 2, date(2026, 2, 14)),
    (date(2026, 1, 31), Unit.MONTH, 1, date(2026, 2, 28)),
    (date(2028, 1, 31), Unit.MONTH, 1, date(2028, 2, 29)),
    (date(2026, 3, 31), Unit.MONTH, -1, date(2026, 2, 28)),
    (date(2026, 1, 31), Unit.MONTH, 3, date(2026, 4, 30)),
    (date(2026, 11, 30), Unit.QUARTER, 1, date(2027, 2, 28)),
    (date(2026, 5, 31), Unit.QUARTER, -2, date(2025, 11, 30)),
    (date(2028, 2, 29), Unit.YEAR, 1, date(2029, 2, 28)),
    (date(2028, 2, 29), Unit.YEAR, -4, date(2024, 2, 29)),
    (date(2026, 7, 15), Unit.YEAR, 0, date(2026, 7, 15)),
]


class TestAddUnits:
    @pytest.mark.parametrize(("day", "unit", "k", "expected"), ADD_UNITS_TABLE)
    def test_add_units(self, day: date, unit: Unit, k: int, expected: date) -> None:
        """add_units() moves by calendar units from the anchor, clamping to the month's end."""
        moved = add_units(day, unit, k)
        assert type(moved) is date
        assert moved == expected

    @given(days, units, st.integers(min_value=-30, max_value=30))
    def test_add_units_is_from_the_anchor(self, day: date, unit: Unit, k: int) -> None:
        """k units at once lands where the calendar says, never drifting as repeated steps do."""
        moved = add_units(day, unit, k)
        months = {Unit.MONTH: k, Unit.QUARTER: 3 * k, Unit.YEAR: 12 * k}.get(unit)
        if months is None:
            step = 1 if unit is Unit.DAY else 7
            assert moved == day + timedelta(days=step * k)
        else:
            total = day.year * 12 + day.month - 1 + months
            year, month = divmod(total, 12)
            first_of_next = date(year + (month == 11), (month + 1) % 12 + 1, 1)
            last_day = (first_of_next - timedelta(days=1)).day
            assert moved == date(year, month + 1, min(day.day, last_day))


# -- month ends -----------------------------------------------------------------------------

MONTH_END_NOWS = [
    # local now, this month, last month
    (wall(2026, 1, 29, 12), (D(2026, 1, 1), D(2026, 2, 1)), (D(2025, 12, 1), D(2026, 1, 1))),
    (wall(2026, 1, 30, 12), (D(2026, 1, 1), D(2026, 2, 1)), (D(2025, 12, 1), D(2026, 1, 1))),
    (wall(2026, 1, 31, 23, 59), (D(2026, 1, 1), D(2026, 2, 1)), (D(2025, 12, 1), D(2026, 1, 1))),
    (wall(2028, 2, 29, 12), (D(2028, 2, 1), D(2028, 3, 1)), (D(2028, 1, 1), D(2028, 2, 1))),
    (wall(2026, 3, 31, 12), (D(2026, 3, 1), D(2026, 4, 1)), (D(2026, 2, 1), D(2026, 3, 1))),
    (wall(2028, 3, 31, 12), (D(2028, 3, 1), D(2028, 4, 1)), (D(2028, 2, 1), D(2028, 3, 1))),
]


class TestMonthEnds:
    @pytest.mark.parametrize("tz", ZONES)
    @pytest.mark.parametrize(("local_now", "this", "last"), MONTH_END_NOWS)
    def test_this_and_last_month_at_month_end(
        self,
        tz: str,
        local_now: datetime,
        this: tuple[datetime, datetime],
        last: tuple[datetime, datetime],
    ) -> None:
        """On 29/30/31 Jan, 29 Feb 2028 and 31 Mar, this_month and last_month are whole months."""
        now = local_instant(local_now, tz)
        assert walls(DateRange.this_month(now=now, timezone=tz)) == this
        assert walls(DateRange.last_month(now=now, timezone=tz)) == last
        assert walls(DateRange.this_month(now=now, timezone=tz).previous()) == last

    @given(zones, instants, st.integers(min_value=1, max_value=30))
    def test_stepping_back_months_lands_on_first_days(self, tz: str, now: datetime, k: int) -> None:
        """previous() applied k times to this month is the calendar month k months earlier."""
        r = DateRange.this_month(now=now, timezone=tz)
        first = r.local_start.date()
        for _ in range(k):
            r = r.previous()
        months = first.year * 12 + first.month - 1 - k
        expected_first = date(months // 12, months % 12 + 1, 1)
        months += 1
        expected_end = date(months // 12, months % 12 + 1, 1)
        assert r.start == local_midnight(expected_first, tz)
        assert r.end == local_midnight(expected_end, tz)

    def test_month_buckets_of_a_range_starting_on_the_31st(self) -> None:
        """Month buckets of 31 Jan - 30 Apr are 31 Jan, then whole Feb, Mar and Apr."""
        r = DateRange.custom(date(2026, 1, 31), date(2026, 4, 30), timezone=SYDNEY)
        assert [walls(b) for b in r.buckets(Unit.MONTH)] == [
            (D(2026, 1, 31), D(2026, 2, 1)),
            (D(2026, 2, 1), D(2026, 3, 1)),
            (D(2026, 3, 1), D(2026, 4, 1)),
            (D(2026, 4, 1), D(2026, 5, 1)),
        ]

    def test_month_buckets_through_a_leap_february(self) -> None:
        """Month buckets of 29 Jan - 31 Mar 2028 include the whole of February, 29th included."""
        r = DateRange.custom(date(2028, 1, 29), date(2028, 3, 31), timezone=SYDNEY)
        buckets = r.buckets(Unit.MONTH)
        assert [walls(b) for b in buckets] == [
            (D(2028, 1, 29), D(2028, 2, 1)),
            (D(2028, 2, 1), D(2028, 3, 1)),
            (D(2028, 3, 1), D(2028, 4, 1)),
        ]
        assert buckets[1].days == 29

    def test_custom_month_end_previous_is_by_days(self) -> None:
        """A custom 1-29 Feb 2028 steps back 29 days, to 3-31 Jan."""
        r = DateRange.custom(date(2028, 2, 1), date(2028, 2, 29), timezone=SYDNEY)
        assert walls(r.previous()) == (D(2028, 1, 3), D(2028, 2, 1))

    def test_month_bucket_previous_is_the_previous_month(self) -> None:
        """A whole-month bucket's previous() is the whole month before."""
        r = DateRange.custom(date(2026, 1, 1), date(2026, 3, 31), timezone=SYDNEY)
        march = r.buckets(Unit.MONTH)[2]
        assert walls(march.previous()) == (D(2026, 2, 1), D(2026, 3, 1))

    def test_previous_of_a_month_bucket_starting_on_the_31st(self) -> None:
        """A one-day month bucket on 31 Mar steps back a month to 28 Feb, ending on 1 Mar."""
        r = DateRange.custom(date(2026, 3, 31), date(2026, 4, 30), timezone=SYDNEY)
        first = r.buckets(Unit.MONTH)[0]
        assert (walls(first), first.unit) == ((D(2026, 3, 31), D(2026, 4, 1)), Unit.MONTH)
        assert walls(first.previous()) == (D(2026, 2, 28), D(2026, 3, 1))

    def test_previous_of_a_month_bucket_ending_mid_month(self) -> None:
        """A month bucket cut on 15 Mar steps back to 1-15 Feb: its end moves with its last day."""
        r = DateRange.custom(date(2026, 1, 1), date(2026, 3, 15), timezone=SYDNEY)
        last = r.buckets(Unit.MONTH)[-1]
        assert (walls(last), last.unit) == ((D(2026, 3, 1), D(2026, 3, 16)), Unit.MONTH)
        assert walls(last.previous()) == (D(2026, 2, 1), D(2026, 2, 16))

    def test_previous_of_a_week_bucket_ending_mid_week(self) -> None:
        """A week bucket of Mon-Wed steps back to Mon-Wed of the week before."""
        r = DateRange.custom(date(2026, 11, 23), date(2026, 11, 25), timezone=SYDNEY)
        (week,) = r.buckets(Unit.WEEK)
        assert week.unit is Unit.WEEK
        assert walls(week.previous()) == (D(2026, 11, 16), D(2026, 11, 19))

    def test_year_to_date_on_the_28th_of_a_leap_february(self) -> None:
        """Year to date on 28 Feb 2028 compares with 1 Jan - 28 Feb 2027, both 59 days."""
        now = datetime(2028, 2, 28, 3, tzinfo=UTC)
        r = DateRange.year_to_date(now=now, timezone=SYDNEY)
        assert walls(r) == (D(2028, 1, 1), D(2028, 2, 29))
        assert walls(r.previous()) == (D(2027, 1, 1), D(2027, 3, 1))
        assert r.days == r.previous().days == 59

    def test_year_to_date_on_a_leap_day(self) -> None:
        """Year to date on 29 Feb 2028 is 1 Jan - 1 Mar 2028, compared with 1 Jan - 1 Mar 2027."""
        r = DateRange.year_to_date(
            now=local_instant(wall(2028, 2, 29, 12), SYDNEY), timezone=SYDNEY
        )
        assert walls(r) == (D(2028, 1, 1), D(2028, 3, 1))
        assert walls(r.previous()) == (D(2027, 1, 1), D(2027, 3, 1))


# -- daylight saving ----------------------------------------------------------------------------

DST_DAYS = [
    (SYDNEY, date(2026, 10, 4), 23),
    (SYDNEY, date(2026, 4, 5), 25),
    (NEW_YORK, date(2026, 3, 8), 23),
    (NEW_YORK, date(2026, 11, 1), 25),
    (LONDON, date(2026, 3, 29), 23),
    (LONDON, date(2026, 10, 25), 25),
]


class TestDaylightSaving:
    @pytest.mark.parametrize(("tz", "day", "hours"), DST_DAYS)
    def test_dst_day_is_one_day_of_23_or_25_hours(self, tz: str, day: date, hours: int) -> None:
        """A DST change day lasts 23 or 25 hours but is still one day from midnight to midnight."""
        r = DateRange.custom(day, day, timezone=tz)
        assert r.duration == timedelta(hours=hours)
        assert r.days == 1
        midnight = time(0)
        next_day = day + timedelta(days=1)
        assert walls(r) == (datetime.combine(day, midnight), datetime.combine(next_day, midnight))

    @pytest.mark.parametrize(("tz", "day", "hours"), DST_DAYS)
    def test_dst_day_is_one_day_bucket(self, tz: str, day: date, hours: int) -> None:
        """Day buckets across a DST change are one per day, the change day 23 or 25 hours long."""
        r = DateRange.custom(day - timedelta(days=3), day + timedelta(days=3), timezone=tz)
        buckets = r.buckets(Unit.DAY)
        assert len(buckets) == 7
        assert [b.local_start.date() for b in buckets] == [
            day + timedelta(days=k) for k in range(-3, 4)
        ]
        assert all(b.local_start.time() == time(0) for b in buckets)
        assert all(b.days == 1 for b in buckets)
        durations = [b.duration for b in buckets]
        assert durations[3] == timedelta(hours=hours)
        assert durations[:3] + durations[4:] == [timedelta(hours=24)] * 6

    @pytest.mark.parametrize(("tz", "day", "hours"), DST_DAYS)
    def test_dst_week_is_one_week_bucket(self, tz: str, day: date, hours: int) -> None:
        """The Monday-to-Monday week holding a DST change is one bucket, an hour short or long."""
        monday = day - timedelta(days=day.weekday())
        r = DateRange.custom(monday, monday + timedelta(days=6), timezone=tz)
        (week,) = r.buckets(Unit.WEEK)
        assert week == DateRange(r.start, r.end, tz, Unit.WEEK)
        assert week.duration == timedelta(days=6, hours=hours)

    @pytest.mark.parametrize(("tz", "day", "hours"), DST_DAYS)
    def test_last_days_across_dst_keeps_whole_days(self, tz: str, day: date, hours: int) -> None:
        """last_days(7) across a DST change still runs midnight to midnight, 7 local days."""
        now = local_instant(wall(day.year, day.month, day.day, 12) + timedelta(days=3), tz)
        r = DateRange.last_days(7, now=now, timezone=tz)
        assert r.days == 7
        assert r.duration == timedelta(days=6, hours=hours)
        assert walls(r.previous())[1] == walls(r)[0]
        assert r.previous().duration == timedelta(days=7)

    def test_midnight_in_a_gap_starts_at_one(self) -> None:
        """In Santiago, 6 Sep 2026 has no midnight, so the day starts at 01:00 local."""
        start = local_midnight(date(2026, 9, 6), SANTIAGO)
        assert start.astimezone(ZoneInfo(SANTIAGO)).replace(tzinfo=None) == wall(2026, 9, 6, 1)
        r = DateRange.custom(date(2026, 9, 5), date(2026, 9, 7), timezone=SANTIAGO)
        buckets = r.buckets(Unit.DAY)
        assert [walls(b) for b in buckets] == [
            (D(2026, 9, 5), D(2026, 9, 6, 1)),
            (D(2026, 9, 6, 1), D(2026, 9, 7)),
            (D(2026, 9, 7), D(2026, 9, 8)),
        ]
        assert [b.duration for b in buckets] == [timedelta(hours=h) for h in (24, 23, 24)]

    def test_local_instant_with_fold_picks_the_occurrence(self) -> None:
        """fold=0 is the first 01:30 (EDT) on 1 Nov 2026 in New York, fold=1 the second (EST)."""
        overlap = wall(2026, 11, 1, 1, 30)
        assert local_instant(overlap, NEW_YORK, fold=0) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
        assert local_instant(overlap, NEW_YORK, fold=1) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)

    def test_local_instant_of_an_ordinary_time(self) -> None:
        """An ordinary wall time is the one instant it names, whatever fold says."""
        expected = datetime(2026, 11, 25, 5, tzinfo=UTC)
        assert local_instant(wall(2026, 11, 25, 16), SYDNEY) == expected
        assert local_instant(wall(2026, 11, 25, 16), SYDNEY, fold=1) == expected

    def test_local_instant_ignores_the_fold_attribute_of_the_wall_time(self) -> None:
        """Only the fold argument picks the occurrence; the naive wall time's own fold does not."""
        overlap = datetime(2026, 11, 1, 1, 30, fold=1)
        assert local_instant(overlap, NEW_YORK, fold=0) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
        assert local_instant(overlap, NEW_YORK, fold=1) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)

    @pytest.mark.parametrize("fold", [0, 1])
    def test_comparison_cut_in_an_overlap_takes_the_first_occurrence(self, fold: int) -> None:
        """Either 02:30 on 5 Apr 2026 in Sydney compares with the first 02:30 on 6 Apr 2025."""
        now = local_instant(wall(2026, 4, 5, 2, 30), SYDNEY, fold=fold)
        r = DateRange.last_days(364, now=now, timezone=SYDNEY)
        assert walls(r.previous())[1] == D(2025, 4, 7)
        c = r.comparison(now)
        assert c.end == datetime(2025, 4, 5, 15, 30, tzinfo=UTC)  # 02:30 AEDT, the first one
        assert walls(c) == (D(2024, 4, 8), D(2025, 4, 6, 2, 30))

    @pytest.mark.parametrize("fold", [0, 1])
    def test_comparison_cut_in_a_gap_moves_forward(self, fold: int) -> None:
        """02:30 on 5 Apr 2026 compares with 5 Oct 2025, when 02:30 did not happen: 03:30."""
        now = local_instant(wall(2026, 4, 5, 2, 30), SYDNEY, fold=fold)
        r = DateRange.last_days(182, now=now, timezone=SYDNEY)
        c = r.comparison(now)
        assert c.end == datetime(2025, 10, 4, 16, 30, tzinfo=UTC)
        assert walls(c) == (D(2025, 4, 7), D(2025, 10, 5, 3, 30))

    def test_shifted_edge_in_a_gap_moves_forward(self) -> None:
        """A week range from 02:30 on 11 Oct 2026 steps back to 03:30 on 4 Oct (02:30 skipped)."""
        r = DateRange(syd(2026, 10, 11, 2, 30), syd(2026, 10, 11, 4), SYDNEY, Unit.WEEK)
        p = r.previous()
        assert p.start == datetime(2026, 10, 3, 16, 30, tzinfo=UTC)
        assert walls(p) == (D(2026, 10, 4, 3, 30), D(2026, 10, 4, 4))

    def test_shifted_edge_in_an_overlap_takes_the_first_occurrence(self) -> None:
        """A week range from 02:30 on 12 Apr 2026 steps back to the first 02:30 on 5 Apr."""
        r = DateRange(syd(2026, 4, 12, 2, 30), syd(2026, 4, 12, 4), SYDNEY, Unit.WEEK)
        p = r.previous()
        assert p.start == datetime(2026, 4, 4, 15, 30, tzinfo=UTC)  # 02:30 AEDT
        assert p.end == syd(2026, 4, 5, 4)
        assert p.duration == timedelta(hours=2, minutes=30)

    @given(instants, zones)
    def test_local_instant_round_trips(self, t: datetime, tz: str) -> None:
        """An instant's wall time (with its fold when it repeats) converts back to the instant."""
        local = t.astimezone(ZoneInfo(tz))
        naive = local.replace(tzinfo=None, fold=0)
        other = local.replace(fold=1 - local.fold)
        if other.utcoffset() == local.utcoffset():
            assert local_instant(naive, tz) == t
        else:
            assert local_instant(naive, tz, fold=local.fold) == t


# -- gap midnights on unit boundaries ---------------------------------------------------------

ASUNCION = "America/Asuncion"


class TestGapMidnights:
    def test_asuncion_october_2023_starts_at_one(self) -> None:
        """Paraguay skipped midnight on 1 Oct 2023, so that month starts at 01:00 local."""
        r = DateRange.this_month(now=datetime(2023, 10, 15, 15, tzinfo=UTC), timezone=ASUNCION)
        assert walls(r) == (D(2023, 10, 1, 1), D(2023, 11, 1))

    def test_previous_month_of_a_gap_month_starts_at_its_midnight(self) -> None:
        """The month before October 2023 in Asuncion is 1 Sep 00:00 to 1 Oct 01:00."""
        now = datetime(2023, 10, 15, 15, tzinfo=UTC)
        previous = DateRange.this_month(now=now, timezone=ASUNCION).previous()
        september = DateRange.this_month(now=now - timedelta(days=30), timezone=ASUNCION)
        assert walls(previous) == (D(2023, 9, 1), D(2023, 10, 1, 1))
        assert previous == september
        assert DateRange.last_month(now=now, timezone=ASUNCION) == september

    def test_previous_quarter_of_a_gap_quarter_starts_at_its_midnight(self) -> None:
        """The quarter before Q4 2023 in Asuncion starts at 1 Jul 00:00, not 01:00."""
        now = datetime(2023, 10, 15, 15, tzinfo=UTC)
        previous = DateRange.this_quarter(now=now, timezone=ASUNCION).previous()
        assert walls(previous) == (D(2023, 7, 1), D(2023, 10, 1, 1))

    def test_day_before_a_gap_midnight_is_one_day(self) -> None:
        """5 Sep 2026 in Santiago ends at the 01:00 that starts 6 Sep, and is still one day."""
        r = DateRange.custom(date(2026, 9, 5), date(2026, 9, 5), timezone=SANTIAGO)
        assert r.duration == timedelta(hours=24)
        assert r.days == 1

    def test_comparison_from_a_gap_start_keeps_the_wall_clock(self) -> None:
        """Noon on the first day of a range starting at a gap midnight compares with noon."""
        r = DateRange.custom(date(2026, 9, 6), date(2026, 9, 12), timezone=SANTIAGO)
        now = local_instant(wall(2026, 9, 6, 12), SANTIAGO)
        assert walls(r.comparison(now)) == (D(2026, 8, 30), D(2026, 8, 30, 12))

    def test_comparison_into_a_gap_start_keeps_the_wall_clock(self) -> None:
        """Noon on a range's first day compares with noon on a previous() starting at 01:00."""
        r = DateRange.custom(date(2026, 9, 13), date(2026, 9, 19), timezone=SANTIAGO)
        now = local_instant(wall(2026, 9, 13, 12), SANTIAGO)
        assert walls(r.comparison(now)) == (D(2026, 9, 6, 1), D(2026, 9, 6, 12))


# -- the host's own time zone is never used ----------------------------------------------------

#: A POSIX TZ rule for UTC+14 (the furthest-ahead offset in use; POSIX inverts the sign), so
#: it needs no zoneinfo files on the host. Any use of the host's zone moves an instant by 14
#: hours, so it shows in the exact values below.
HOST_ZONE = "KIR-14"
#: Noon on the last day of the supported years (SUPPORTED_YEARS).
END_OF_TIME = datetime(2200, 12, 31, 12, tzinfo=UTC)


@pytest.fixture
def host_far_ahead() -> Iterator[None]:
    """Run the test with the process's local time zone set to UTC+14, then restore it."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = HOST_ZONE
    time_module.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time_module.tzset()


@pytest.mark.usefixtures("host_far_ahead")
class TestHostTimeZoneIsIgnored:
    def test_the_host_zone_is_in_effect(self) -> None:
        """The fixture really moves the process's local time zone to UTC+14."""
        assert datetime(2026, 1, 1, tzinfo=UTC).astimezone().utcoffset() == timedelta(hours=14)

    def test_local_instant_at_the_end_of_time(self) -> None:
        """local_instant() uses the practice's zone alone, at the end of the supported years."""
        assert local_instant(wall(2200, 12, 31, 12), "UTC") == END_OF_TIME

    def test_local_midnight_at_the_end_of_time(self) -> None:
        """local_midnight() returns a UTC instant computed without the host's zone."""
        midnight = local_midnight(date(2200, 12, 31), "Etc/GMT+12")
        assert midnight == END_OF_TIME
        assert midnight.tzinfo is UTC

    def test_edges_at_the_end_of_time(self) -> None:
        """Edges, previous() and comparison() near the end of time never touch the host's zone."""
        r = DateRange(END_OF_TIME - HOUR, END_OF_TIME + HOUR, "UTC")
        assert r.start.tzinfo is UTC
        assert r.previous() == DateRange(END_OF_TIME - 3 * HOUR, END_OF_TIME - HOUR, "UTC")
        assert r.comparison(END_OF_TIME).end == END_OF_TIME - 2 * HOUR
        shifted = DateRange(END_OF_TIME - HOUR, END_OF_TIME + HOUR, "UTC", Unit.DAY).previous()
        assert shifted.start == END_OF_TIME - HOUR - timedelta(days=1)


# -- properties -------------------------------------------------------------------------------


class TestBucketProperties:
    @given(ranges, units)
    def test_buckets_tile_the_range(self, r: DateRange, unit: Unit) -> None:
        """Buckets start at start, end at end, meet edge to edge, and none is empty."""
        buckets = r.buckets(unit)
        if r.is_empty():
            assert buckets == ()
            return
        assert buckets[0].start == r.start
        assert buckets[-1].end == r.end
        for a, b in itertools.pairwise(buckets):
            assert a.end == b.start
        assert all(not b.is_empty() for b in buckets)
        assert all(b.timezone == r.timezone for b in buckets)
        assert r.bucket_edges(unit) == (r.start, *(b.end for b in buckets))

    @given(ranges, units)
    def test_inner_edges_are_unit_starts_at_local_midnight(self, r: DateRange, unit: Unit) -> None:
        """Every edge strictly inside the range is a local midnight starting a unit."""
        zi = ZoneInfo(r.timezone)
        for edge in r.bucket_edges(unit)[1:-1]:
            assert r.start < edge < r.end
            assert starts_a_local_day(edge, r.timezone)
            assert starts_unit(edge.astimezone(zi).date(), unit)

    @given(ranges, units)
    def test_every_unit_start_inside_the_range_is_an_edge(self, r: DateRange, unit: Unit) -> None:
        """No unit boundary inside the range is skipped: inner edges are exactly those midnights."""
        first, last = r.local_start.date(), r.local_end.date()
        expected = []
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            if starts_unit(day, unit):
                midnight = local_midnight(day, r.timezone)
                if r.start < midnight < r.end:
                    expected.append(midnight)
        assert r.bucket_edges(unit)[1:-1] == tuple(expected)

    @given(ranges, units, st.data())
    def test_every_instant_is_in_exactly_one_bucket(
        self, r: DateRange, unit: Unit, data: st.DataObject
    ) -> None:
        """An instant in the range lies in exactly one bucket; the range's end lies in none."""
        assume(not r.is_empty())
        micros = data.draw(st.integers(min_value=0, max_value=r.duration // ONE_US - 1))
        t = r.start + timedelta(microseconds=micros)
        buckets = r.buckets(unit)
        assert sum(t in b for b in buckets) == 1
        assert not any(r.end in b for b in buckets)
        assert not any(r.start - ONE_US in b for b in buckets)

    @given(custom_ranges())
    def test_day_buckets_are_whole_local_days(self, r: DateRange) -> None:
        """Day buckets of a custom range are one per local day, each starting a local day."""
        buckets = r.buckets(Unit.DAY)
        assert len(buckets) == r.days
        assert all(b.days == 1 for b in buckets)
        assert all(starts_a_local_day(b.start, r.timezone) for b in buckets)


class TestPresetProperties:
    @given(presets, instants, zones)
    def test_presets_hold_now_or_end_where_this_one_starts(
        self, preset: Preset, now: datetime, tz: str
    ) -> None:
        """Current presets hold now; last week/month end where this week/month starts."""
        r = DateRange.preset(preset, now=now, timezone=tz)
        if preset is Preset.LAST_WEEK:
            assert r.end == DateRange.this_week(now=now, timezone=tz).start
            assert now not in r
        elif preset is Preset.LAST_MONTH:
            assert r.end == DateRange.this_month(now=now, timezone=tz).start
            assert now not in r
        else:
            assert now in r

    @given(presets, instants, zones)
    def test_preset_edges_are_local_midnights_of_their_unit(
        self, preset: Preset, now: datetime, tz: str
    ) -> None:
        """Preset edges are local midnights, on Mondays for weeks, first days for months."""
        r = DateRange.preset(preset, now=now, timezone=tz)
        assert starts_a_local_day(r.start, tz)
        assert starts_a_local_day(r.end, tz)
        first = r.local_start.date()
        if r.unit is not None and preset is not Preset.YEAR_TO_DATE:
            assert starts_unit(first, r.unit)
            assert starts_unit(r.local_end.date(), r.unit)
        expected_days = {Preset.LAST_7_DAYS: 7, Preset.LAST_30_DAYS: 30}
        expected_days |= {Preset.THIS_WEEK: 7, Preset.LAST_WEEK: 7}
        if preset in expected_days:
            assert r.days == expected_days[preset]

    @given(presets, instants, zones)
    def test_previous_of_a_preset_is_adjacent_except_year_to_date(
        self, preset: Preset, now: datetime, tz: str
    ) -> None:
        """previous() ends where the range starts, except year to date (a year earlier)."""
        r = DateRange.preset(preset, now=now, timezone=tz)
        p = r.previous()
        assert starts_a_local_day(p.start, tz)
        assert starts_a_local_day(p.end, tz)
        if preset is Preset.YEAR_TO_DATE:
            assert p.local_start.date() == date(r.local_start.year - 1, 1, 1)
        else:
            assert p.end == r.start

    @given(instants, zones)
    def test_year_to_date_compares_with_the_same_dates_a_year_earlier(
        self, now: datetime, tz: str
    ) -> None:
        """Year to date's previous() runs 1 Jan to today's date a year earlier (29 Feb -> 28)."""
        r = DateRange.year_to_date(now=now, timezone=tz)
        p = r.previous()
        zi = ZoneInfo(tz)
        today = now.astimezone(zi).date()
        last_included = (p.end - ONE_US).astimezone(zi).date()
        if (today.month, today.day) == (2, 29):
            assert last_included == date(today.year - 1, 2, 28)
        else:
            assert last_included == today.replace(year=today.year - 1)
        assert p.local_start.date() == date(today.year - 1, 1, 1)


class TestComparisonProperties:
    @given(custom_ranges())
    def test_previous_of_a_custom_range_is_the_same_days_before(self, r: DateRange) -> None:
        """previous() of whole local days ends at the start and has the same number of days."""
        p = r.previous()
        assert p.end == r.start
        assert p.days == r.days
        assert p.unit is None
        assert starts_a_local_day(p.start, r.timezone)
        assert p.local_start.date() == r.local_start.date() - timedelta(days=r.days)

    @given(instant_ranges())
    def test_previous_of_an_arbitrary_range_has_the_same_duration(self, r: DateRange) -> None:
        """previous() of a range not on local midnights is as long and ends at the start."""
        assume(
            not (starts_a_local_day(r.start, r.timezone) and starts_a_local_day(r.end, r.timezone))
        )
        p = r.previous()
        assert p.end == r.start
        assert p.duration == r.duration

    @given(ranges, instants)
    def test_comparison_lies_within_previous(self, r: DateRange, now: datetime) -> None:
        """comparison(now) starts at previous().start and ends inside previous()."""
        p = r.previous()
        c = r.comparison(now)
        assert c.start == p.start
        assert p.start <= c.end <= p.end
        assert (c.timezone, c.unit) == (p.timezone, p.unit)
        if now >= r.end:
            assert c == p

    @given(instants, st.integers(min_value=1, max_value=400 * 86_400), st.data())
    def test_comparison_of_an_arbitrary_range_is_cut_at_the_same_elapsed_time(
        self, start: datetime, seconds: int, data: st.DataObject
    ) -> None:
        """Without DST, comparison(now) of a range off midnight is as far into previous()."""
        tz = data.draw(st.sampled_from(("UTC", "Asia/Kolkata")))
        r = DateRange(start, start + timedelta(seconds=seconds), tz)
        assume(not (starts_a_local_day(r.start, tz) and starts_a_local_day(r.end, tz)))
        elapsed = timedelta(seconds=data.draw(st.integers(min_value=0, max_value=seconds - 1)))
        p = r.previous()
        c = r.comparison(r.start + elapsed)
        assert c.start == p.start
        if starts_a_local_day(r.start, tz) and starts_a_local_day(p.start, tz):
            return  # counted by local days and wall clock instead
        assert c.end == p.start + elapsed

    @given(whole_day_ranges, st.data())
    def test_comparison_ends_at_the_same_day_and_wall_time(
        self, r: DateRange, data: st.DataObject
    ) -> None:
        """For now inside a whole-day range, comparison ends on the matching day at now's time."""
        assume(not r.is_empty())
        micros = data.draw(st.integers(min_value=0, max_value=r.duration // ONE_US - 1))
        now = r.start + timedelta(microseconds=micros)
        zi = ZoneInfo(r.timezone)
        p = r.previous()
        local_now = now.astimezone(zi)
        day = p.local_start.date() + (local_now.date() - r.local_start.date())
        if now == local_midnight(local_now.date(), r.timezone):
            # The first instant of a local day (01:00 after a DST gap at midnight) maps
            # to the first instant of the matching day.
            target = local_midnight(day, r.timezone)
        else:
            # A wall time that repeats on that day means its first occurrence; one that is
            # skipped moves forward: fold=0, whatever the fold of now itself.
            naive = datetime.combine(day, local_now.time())
            target = naive.replace(tzinfo=zi, fold=0).astimezone(UTC)
        assert r.comparison(now).end == min(max(target, p.start), p.end)


class TestPandasInstants:
    """Instants as pandas hands them over."""

    def test_a_timestamp_is_an_instant_and_nat_is_refused(self) -> None:
        """An aware pandas Timestamp converts to a UTC datetime; NaT (a missing value that
        passes as a datetime) is InvalidPeriod saying so, not "naive"."""
        pd = pytest.importorskip("pandas")
        instant = as_instant(pd.Timestamp("2026-11-25T16:00", tz=SYDNEY))
        assert instant == datetime(2026, 11, 25, 5, tzinfo=UTC)
        assert type(instant) is datetime
        with pytest.raises(InvalidPeriod, match="missing value") as caught:
            as_instant(pd.NaT, "now")
        assert caught.value.field == "now"
        np = pytest.importorskip("numpy")
        with pytest.raises(InvalidPeriod, match="timezone-aware datetime"):
            as_instant(np.datetime64("2026-11-25T05:00"))


class TestBucketLimit:
    """A range is cut into at most MAX_BUCKETS buckets (bounded work for any range)."""

    def test_a_century_by_day_is_refused_and_by_month_is_not(self) -> None:
        """Two centuries by day would be 73,000 buckets: InvalidPeriod naming ``unit``;
        by month it is 2,400."""
        from smilepass_core.periods import MAX_BUCKETS

        r = DateRange.custom(date(1950, 1, 1), date(2149, 12, 31), timezone=SYDNEY)
        with pytest.raises(InvalidPeriod, match="more than 10,000 buckets") as caught:
            r.bucket_edges(Unit.DAY)
        assert caught.value.field == "unit"
        assert len(r.buckets(Unit.MONTH)) == 2400 < MAX_BUCKETS
        edge = DateRange.custom(
            date(2000, 1, 1), date(2000, 1, 1) + timedelta(days=MAX_BUCKETS - 1), timezone="UTC"
        )
        assert len(edge.buckets(Unit.DAY)) == MAX_BUCKETS
