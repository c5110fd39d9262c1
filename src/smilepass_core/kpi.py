"""The dashboard: Members, Retention %, Total Revenue, the two series and the latest feed.

Every figure has one definition, written out in ``docs/metrics.md``. In short,
for a range ``R`` and ``now``:

- the **effective end** ``E = min(R.end, now)``; figures "at the end" are taken at ``E``,
  sums run over ``[R.start, E)``;
- the **state at a boundary B** is the state after every change strictly before ``B``;
- **this month** is the calendar month (practice time) holding ``E - 1 µs``;
- the **comparison period** is ``R.comparison(now)``: ``R.previous()``, cut as far into it
  as ``now`` is into ``R`` (same number of local days, same wall-clock time);
- a figure whose denominator is zero is **undefined** (``None``).

The calculator only reads through the repository protocols (``count``, ``find``,
``total`` with time bounds) and the optional batched reads a store may offer (several
instants, spans or buckets in one call: ``docs/repositories.md``), so a host can answer
each read with one indexed query.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final, Generic, NamedTuple, TypeVar

import attrs

from smilepass_core._memo import MEMO_UP_TO, Memo
from smilepass_core.domain import Member, Practice
from smilepass_core.errors import CurrencyMismatch, InvalidValue
from smilepass_core.money import ROUNDING, Money, exact_decimal, round_exact
from smilepass_core.periods import (
    DateRange,
    Preset,
    Unit,
    add_units,
    as_instant,
    local_midnight,
    zone,
)
from smilepass_core.presentation import Items, Tabular
from smilepass_core.queries import (
    MemberQuery,
    Order,
    Page,
    PaymentPlanQuery,
    PaymentQuery,
    apply_order,
)
from smilepass_core.repositories import Store

if TYPE_CHECKING:
    from smilepass_core.reports.recovery import RecoveredRevenue

__all__ = [
    "GOAL_PERIODS",
    "Dashboard",
    "Feed",
    "Goals",
    "Kpi",
    "KpiTargets",
    "Ratio",
    "Series",
    "SeriesPoint",
    "comparison_dashboard",
    "dashboard",
    "effective_end",
    "month_share",
    "series_buckets",
    "this_month",
    "weighted_goal",
]

V = TypeVar("V")

_HUNDRED = Decimal(100)
_PERCENT = Decimal("0.01")
_ONE_US = timedelta(microseconds=1)


def _whole(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidValue(attribute.name, value, "must be a whole number >= 0")


def _percent_goal(value: Any) -> Decimal:
    result = exact_decimal(value, "retention")
    if not 0 <= result <= 100:
        raise InvalidValue("retention", value, "must be a percentage between 0 and 100")
    return result


def _revenue_goal(value: Any) -> Money | Decimal:
    result = value if isinstance(value, Money) else exact_decimal(value, "revenue")
    if (result.amount if isinstance(result, Money) else result) < 0:
        raise InvalidValue("revenue", value, "must not be negative")
    return result


def _local_days(at: datetime, timezone: str) -> Fraction:
    """``at`` as a count of local days: its local date's ordinal plus the elapsed share
    of that day (a 23- or 25-hour day is still one day)."""
    day = at.astimezone(zone(timezone)).date()
    start = local_midnight(day, timezone)
    length = local_midnight(day + timedelta(days=1), timezone) - start
    return day.toordinal() + Fraction((at - start) // _ONE_US, length // _ONE_US)


#: What a revenue goal is stated per: a calendar month (scaled to the range shown) or the
#: range itself (used as given).
GOAL_PERIODS: Final = ("month", "range")


def _new_members_goal(value: Any) -> Decimal | None:
    if value is None:
        return None
    result = exact_decimal(value, "new_members")
    if result < 0:
        raise InvalidValue("new_members", value, "must not be negative")
    return result


def _churn_goal(value: Any) -> Decimal | None:
    if value is None:
        return None
    result = exact_decimal(value, "churn")
    if not 0 <= result <= 100:
        raise InvalidValue("churn", value, "must be a percentage between 0 and 100")
    return result


def month_share(span: DateRange) -> Fraction:
    """How many calendar months (of ``span``'s zone) ``span`` covers: each month it overlaps
    adds the share of that month's local days it covers (a part of a day counts as the part
    of that day's duration). A 7-day range in a 30-day month is 7/30."""
    return _month_share(span)


@functools.lru_cache(maxsize=1024)
def _month_share(span: DateRange) -> Fraction:
    """:func:`month_share` of ``span`` (the 1,024 ranges asked most recently are kept)."""
    tz = span.timezone
    share = Fraction(0)
    if span.end > span.start:
        month = span.start.astimezone(zone(tz)).date().replace(day=1)
        while local_midnight(month, tz) < span.end:
            following = add_units(month, Unit.MONTH, 1)
            first = max(Fraction(month.toordinal()), _local_days(span.start, tz))
            last = min(Fraction(following.toordinal()), _local_days(span.end, tz))
            if last > first:
                share += (last - first) / (following - month).days
            month = following
    return share


def _half_up(exact: Fraction, places: int = 2) -> Decimal:
    scaled = exact * 10**places
    rounded = round_exact(scaled)
    return Decimal(rounded).scaleb(-places)


def _goal_period(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in GOAL_PERIODS:
        raise InvalidValue(attribute.name, value, 'must be "month" or "range"')


@attrs.frozen(cache_hash=True)  # a key of the dashboard's groups, per practice
class Goals:
    """Goal targets of one practice: the manual's defaults are 25 members, 95 %, 2,000.

    ``revenue`` is Money (it must then be in the practice's currency) or a plain
    amount meaning "in the practice's currency", stated per ``revenue_per``: a calendar
    month (the default; the dashboard scales it to its range, :meth:`revenue_for`) or the
    range shown (used as given). ``members`` (Active members at the end) and
    ``retention`` (a share) are levels: they are not scaled.

    Two goals have no default (``None``: no goal shown): ``new_members``, first activations
    per calendar month, scaled to each bucket of the New Members series
    (:meth:`new_members_for`); ``churn``, the highest acceptable logo churn per calendar
    month in percent, scaled to the range of the subscription figures
    (:meth:`churn_for`).
    """

    members: int = attrs.field(default=25, validator=_whole)
    retention: Decimal = attrs.field(default=Decimal(95), converter=_percent_goal)
    revenue: Money | Decimal = attrs.field(default=Decimal(2000), converter=_revenue_goal)
    revenue_per: str = attrs.field(default="month", validator=_goal_period)
    new_members: Decimal | None = attrs.field(default=None, converter=_new_members_goal)
    churn: Decimal | None = attrs.field(default=None, converter=_churn_goal)

    def new_members_for(self, span: DateRange) -> Decimal | None:
        """The new-members goal for ``span`` (a bucket): the monthly goal times
        :func:`month_share`, rounded half up to two decimals; ``None`` without a goal.

        >>> day = DateRange.custom(date(2026, 11, 2), date(2026, 11, 2), timezone="UTC")
        >>> Goals(new_members=12).new_members_for(day)
        Decimal('0.40')
        """
        if self.new_members is None:
            return None
        return _half_up(Fraction(self.new_members) * month_share(span))

    def churn_for(self, span: DateRange) -> Decimal | None:
        """The churn ceiling for ``span``: the monthly goal times :func:`month_share`
        (proportional, not compounded), rounded half up to two decimals, at most 100;
        ``None`` without a goal.

        >>> quarter = DateRange.custom(date(2026, 1, 1), date(2026, 3, 31), timezone="UTC")
        >>> Goals(churn=2).churn_for(quarter)
        Decimal('6.00')
        """
        if self.churn is None:
            return None
        return min(_HUNDRED, _half_up(Fraction(self.churn) * month_share(span)))

    def revenue_in(self, practice: Practice) -> Money:
        """The revenue goal as Money in ``practice``'s currency.

        Raises:
            CurrencyMismatch: the goal is Money in another currency.
        """
        if isinstance(self.revenue, Money):
            if self.revenue.currency != practice.currency:
                raise CurrencyMismatch(self.revenue.currency, practice.currency, "set a goal of")
            return self.revenue
        return Money.of(self.revenue, practice.currency)

    def revenue_for(self, practice: Practice, span: DateRange) -> Money:
        """The revenue goal for the range ``span`` (its full length, not cut at ``now``).

        Per month (the default): each calendar month (in ``span``'s zone: for a preset,
        the practice's) that ``span`` overlaps adds the goal times the share of that
        month's local days it covers (a part of a day counts as the part of that day's
        duration); the sum is rounded once, half up, to the minor unit. Per range: the
        goal as given.

        >>> from smilepass_core import Practice
        >>> syd = Practice("syd", "Harbour", "Australia/Sydney", "AUD")
        >>> week = DateRange.custom(date(2026, 11, 1), date(2026, 11, 7), timezone=syd.timezone)
        >>> str(Goals().revenue_for(syd, week))
        'AUD 466.67'
        >>> str(Goals(revenue_per="range").revenue_for(syd, week))
        'AUD 2,000.00'
        """
        goal = self.revenue_in(practice)
        if self.revenue_per == "range":
            return goal
        exact = goal.minor * month_share(span)  # months in the range's zone
        rounded = round_exact(exact)
        return Money.from_minor(rounded, goal.currency)


def _goals(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, Goals):
        raise InvalidValue(attribute.name, value, "must be Goals")


def _overrides(value: Mapping[str, Goals]) -> Mapping[str, Goals]:
    if not isinstance(value, Mapping):
        raise InvalidValue("practices", value, "must map practice ids to Goals")
    result = dict(value)
    for practice_id, goals in result.items():
        if not isinstance(goals, Goals):
            raise InvalidValue("practices", practice_id, "each override must be Goals")
    return result


@attrs.frozen
class KpiTargets:
    """Goals for every practice (``default``), with per-practice overrides."""

    default: Goals = attrs.field(factory=Goals, validator=_goals)
    practices: Mapping[str, Goals] = attrs.field(factory=dict, converter=_overrides)

    @classmethod
    def of(cls, targets: KpiTargets | Goals | None) -> KpiTargets:
        """``targets`` as KpiTargets: one ``Goals`` for every practice, or the manual's
        defaults for ``None``.

        Raises:
            InvalidValue: neither KpiTargets, Goals nor ``None``.
        """
        if isinstance(targets, Goals):
            return cls(default=targets)
        if targets is None:
            return cls()
        if not isinstance(targets, KpiTargets):
            raise InvalidValue(
                "targets", targets, "must be KpiTargets, or Goals for every practice"
            )
        return targets

    def for_practice(self, practice_id: str) -> Goals:
        """The goals of ``practice_id`` (its override, or the default)."""
        return self.practices.get(practice_id, self.default)


@attrs.frozen
class Kpi(Generic[V]):
    """A headline figure: its value, the comparison period's value, the goal.

    Attributes:
        value: The figure for the range (at its effective end, or summed over it).
        previous: The same figure for the comparison period.
        goal: The target.
        this_month_delta: What this month adds (where defined): for a level (Members),
            the change since the month began; for a flow (Revenue), the month to date.
        this_month_kind: Which of the two ``this_month_delta`` is: ``"change"`` or
            ``"to_date"`` (``None`` where undefined); not part of equality.
    """

    value: V
    previous: V
    goal: V
    this_month_delta: V | None = None
    this_month_kind: str | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def progress(self) -> Decimal | None:
        """``value / goal`` in percent (two decimals); ``None`` if undefined or the goal is 0."""
        return _percent(self.value, self.goal)

    @property
    def change(self) -> V | None:
        """``value - previous``; ``None`` when either is undefined."""
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous  # type: ignore[no-any-return, operator]


def _percent(part: Any, whole: Any) -> Decimal | None:
    """``100 * part / whole`` rounded to two decimals; ``None`` when undefined."""
    if part is None or whole is None:
        return None
    if isinstance(whole, Money):
        if whole.is_zero():
            return None
        ratio = part / whole
    else:
        if not whole:
            return None
        ratio = Decimal(part) / Decimal(whole)
    percent: Decimal = (ratio * _HUNDRED).quantize(_PERCENT, rounding=ROUNDING)
    return percent


@attrs.frozen
class Ratio:
    """A share with its parts, so that several practices combine exactly."""

    numerator: int
    denominator: int

    @property
    def percent(self) -> Decimal | None:
        """``100 * numerator / denominator`` (two decimals); ``None`` when the denominator is 0."""
        return _percent(self.numerator, self.denominator)

    def __add__(self, other: Ratio) -> Ratio:
        return Ratio(self.numerator + other.numerator, self.denominator + other.denominator)


@attrs.frozen
class SeriesPoint(Generic[V]):
    """One bucket of a series: its local first day, its instants ``[start, end)``, its value,
    and its goal (``None`` where the series has none)."""

    day: date
    start: datetime
    end: datetime
    value: V
    goal: Decimal | None = None


T = TypeVar("T")


class Series(Items[SeriesPoint[V]]):
    """A series of the dashboard, oldest bucket first, that is also a typed table
    (``series.to_polars()``, ``pl.DataFrame(series)``).

    It iterates, indexes and compares like the plain tuple of its points (``timezone``
    and ``currency`` take no part in equality).

    Attributes:
        timezone: The IANA zone its instants are shown in (the first practice's).
        currency: The ISO code of a money series; ``None`` for a series of counts.
    """

    __slots__ = ("currency", "timezone")
    timezone: str
    currency: str | None

    def __init__(
        self,
        points: Iterable[SeriesPoint[V]] = (),
        *,
        timezone: str = "UTC",
        currency: str | None = None,
    ) -> None:
        super().__init__(points)
        object.__setattr__(self, "timezone", timezone)
        object.__setattr__(self, "currency", currency)

    def __repr__(self) -> str:
        """One line: the buckets' first days and the total.

        >>> from smilepass_core.demo import DEMO_NOW, demo_store
        >>> board = dashboard(demo_store(), practices="syd", now=DEMO_NOW)
        >>> board.new_members
        <Series: 7 buckets 2026-11-19..2026-11-25, total 1>
        >>> board.committed_payments["AUD"]
        <Series: 7 buckets 2026-11-19..2026-11-25, total AUD 550.00>
        """
        points = self._items
        if not points:
            return "<Series: 0 buckets>"
        values: list[Any] = [p.value for p in points]
        total = sum(values[1:], values[0])
        span = f"{points[0].day.isoformat()}..{points[-1].day.isoformat()}"
        return f"<Series: {_count(len(points), 'bucket')} {span}, total {total}>"


class Feed(Items[Member]):
    """The Latest New Members feed, newest first, that is also a typed table; it iterates,
    indexes and compares like the plain tuple of its members.

    Attributes:
        timezone: The IANA zone its instants are shown in (the first practice's).
    """

    __slots__ = ("timezone",)
    timezone: str

    def __init__(self, members: Iterable[Member] = (), *, timezone: str = "UTC") -> None:
        super().__init__(members)
        object.__setattr__(self, "timezone", timezone)

    def __repr__(self) -> str:
        """One line: how many members, newest first."""
        return f"<Feed: {_count(len(self._items), 'member')}, newest first>"


@attrs.frozen
class Dashboard(Tabular):
    """The dashboard for some practices, a date range and ``now``.

    Attributes:
        practices: The practice ids, in the order given.
        ranges: Each practice's resolved range (a preset is resolved in its time zone).
        now: The instant the dashboard was computed for.
        members: Active members at the effective end; delta since this month began.
        retention: Of the members ever Active before the effective end, the share Active
            at it (the manual's "percentage of members still active"), in percent.
        period_retention: Of the members Active at the range's start, the share still
            Active at its effective end, in percent.
        revenue: Collected (succeeded charges minus succeeded refunds) per currency.
        new_members: First activations per bucket (a :class:`Series`).
        committed_payments: Value of the payment plans committed to per bucket, per currency
            (each a :class:`Series`).
        latest_new_members: The most recently activated members, newest first (a
            :class:`Feed`).
        retention_parts, period_retention_parts: The counts behind the two percentages,
            for the range and the comparison period.
        bucket: The unit of the series' buckets (the first practice's, when several).
    """

    practices: tuple[str, ...]
    ranges: Mapping[str, DateRange]
    now: datetime
    members: Kpi[int]
    retention: Kpi[Decimal | None]
    period_retention: Kpi[Decimal | None]
    revenue: Mapping[str, Kpi[Money]]
    new_members: Series[int]
    committed_payments: Mapping[str, Series[Money]]
    latest_new_members: Feed
    retention_parts: tuple[Ratio, Ratio]
    period_retention_parts: tuple[Ratio, Ratio]
    bucket: Unit

    def recovery(self, store: Store) -> RecoveredRevenue:
        """Of the charges that first failed in each practice's range (cut at ``now``), what
        was recovered by ``now``, what is outstanding and what is written off:
        :func:`~smilepass_core.reports.recovered_revenue` over this dashboard's practices
        and ranges. Read from ``store``'s ledger when asked, not with the index-backed
        figures (docs/reports.md, "Recovered revenue").

        >>> from smilepass_core.demo import DEMO_NOW, demo_store
        >>> store = demo_store()
        >>> board = dashboard(store, practices="syd", date_range="year_to_date", now=DEMO_NOW)
        >>> row = board.recovery(store).rows[0]
        >>> row.failed_charges, str(row.recovered), row.failed == row.recovered + row.outstanding
        (50, 'AUD 9,218.47', True)
        """
        # Imported here: the reports import this module (reports.cohorts reads Ratio).
        from smilepass_core.reports.recovery import recovered_revenue

        return recovered_revenue(
            store, now=self.now, date_range=dict(self.ranges), practices=self.practices
        )

    def __repr__(self) -> str:
        """One line with the headline figures and the counts, never the whole dashboard.

        >>> from smilepass_core.demo import DEMO_NOW, demo_store
        >>> dashboard(demo_store(), practices="syd", now=DEMO_NOW)
        <Dashboard syd 2026-11-19..2026-11-26: 139 members, retention 78.53 %,
            revenue AUD 3,895.27, 7 buckets, 5 latest>
        """
        spans: dict[str, list[str]] = {}
        for practice_id in self.practices:
            spans.setdefault(_span(self.ranges[practice_id]), []).append(practice_id)
        where = ", ".join(f"{'+'.join(ids)} {span}" for span, ids in spans.items())
        retention = "—" if self.retention.value is None else f"{self.retention.value} %"
        revenue = " / ".join(str(kpi.value) for kpi in self.revenue.values())
        return (
            f"<Dashboard {where}: {_count(self.members.value, 'member')}, "
            f"retention {retention}, revenue {revenue}, "
            f"{_count(len(self.new_members), 'bucket')}, {len(self.latest_new_members)} latest>"
        )


def _count(n: int, noun: str) -> str:
    """``"1 member"``, ``"3 members"``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _span(date_range: DateRange) -> str:
    """A range in short: its local first and end days (``2026-11-19..2026-11-26``, the end
    excluded) when both edges are local midnights, else its local start and end times."""
    start, end = date_range.local_start, date_range.local_end
    tz = date_range.timezone
    if date_range.start == local_midnight(start.date(), tz) and date_range.end == local_midnight(
        end.date(), tz
    ):
        return f"{start.date()}..{end.date()}"
    return f"{start:%Y-%m-%d %H:%M}..{end:%Y-%m-%d %H:%M}"


def comparison_dashboard(
    store: Store,
    board: Dashboard,
    *,
    targets: KpiTargets | Goals | None = None,
    latest: int = 5,
) -> Dashboard:
    """The dashboard of ``board``'s comparison period: the same practices, ``now`` and
    bucket unit, over ``range.comparison(board.now)`` (what a chart draws beside it).

    Raises:
        InvalidValue: ``board``'s practices have different ranges (a preset resolved in
            several time zones): compare one practice at a time.
    """
    ranges = set(board.ranges.values())
    if len(ranges) != 1:
        raise InvalidValue(
            "board",
            board.practices,
            "its practices have different ranges (a preset resolved in several time zones); "
            "compare one practice at a time",
        )
    current = ranges.pop()
    return dashboard(
        store,
        practices=board.practices,
        date_range=current.comparison(board.now),
        now=board.now,
        targets=targets,
        bucket=board.bucket,
        latest=latest,
    )


def effective_end(date_range: DateRange, now: datetime) -> datetime:
    """``min(range.end, now)``: where figures "at the end" are taken. Before the range's
    start when the whole range lies after ``now`` (then nothing of the range has happened)."""
    return min(date_range.end, as_instant(now, "now"))


def this_month(date_range: DateRange, now: datetime) -> DateRange:
    """The calendar month (in the range's zone) holding the range's last instant,
    ``effective_end - 1 µs``, from its first day up to the effective end."""
    end = effective_end(date_range, now)
    first_day = (end - _ONE_US).astimezone(zone(date_range.timezone)).date().replace(day=1)
    return DateRange(local_midnight(first_day, date_range.timezone), end, date_range.timezone)


@attrs.frozen
class _GroupFigures:
    """Everything the dashboard needs for a group of practices that share a range, a
    currency and goals (read in one scope: counts and money add), before combining."""

    practices: tuple[Practice, ...]
    scope: frozenset[str]  # their ids
    goals: Goals
    date_range: DateRange
    active_end: int
    active_month_start: int
    active_previous: int
    retention: Ratio
    retention_previous: Ratio
    period_retention: Ratio
    period_retention_previous: Ratio
    revenue: Money
    revenue_month: Money
    revenue_previous: Money
    new_members: tuple[int, ...]  # per bucket of the dashboard (0 outside the range)
    committed: tuple[Money, ...]

    @property
    def currency(self) -> str:
        """The currency every practice of the group keeps."""
        return self.practices[0].currency

    @property
    def revenue_goal(self) -> Money:
        """The group's revenue goal: each practice's, for its range."""
        return _group_revenue_goal(self.goals, self.practices[0], self.date_range) * len(
            self.practices
        )


def _group_revenue_goal(goals: Goals, practice: Practice, span: DateRange) -> Money:
    """``goals.revenue_for(practice, span)``, kept in :data:`_revenue_goals` (it depends on
    the practice's currency alone)."""
    key = (goals, practice.currency, span)
    found = _revenue_goals.get(key)
    if found is None:
        found = _revenue_goals.put(key, goals.revenue_for(practice, span))
    return found


#: The revenue goals of the groups asked lately, by goals, currency and range.
_revenue_goals: Memo[tuple[Goals, str, DateRange], Money] = Memo(256)


def weighted_goal(goals: Sequence[Decimal], weights: Sequence[int]) -> Decimal:
    """Several practices' percentage goal: their common goal, else each goal weighted by
    the members its practice's figure is over (equal weights when none has any), rounded
    half up to two decimals."""
    if all(g == goals[0] for g in goals):
        return goals[0]
    total = sum(weights)
    if total == 0:
        weights, total = [1] * len(goals), len(goals)
    exact = sum((g * w for g, w in zip(goals, weights, strict=True)), Decimal(0)) / total
    return exact.quantize(Decimal("0.01"), rounding=ROUNDING)


def series_buckets(ranges: Sequence[DateRange], now: datetime, unit: Unit) -> tuple[DateRange, ...]:
    """The buckets of the dashboard's series, on one clock: ``unit``s of the first range's
    zone tiling ``[earliest start, latest effective end)`` of ``ranges`` (one range: that
    range cut at ``now``). A bucket is cut where the span starts or ends mid-unit."""
    return _series_span(ranges, now).buckets(unit)


def _series_span(ranges: Sequence[DateRange], now: datetime) -> DateRange:
    """What :func:`series_buckets` cuts: ``[earliest start, latest effective end)``."""
    start = min(r.start for r in ranges)
    end = max(start, *(effective_end(r, now) for r in ranges))
    return DateRange(start, end, ranges[0].timezone)


class _Plan(NamedTuple):
    """What a group's reads are over, from its range, ``now`` and the series' buckets."""

    end: datetime  # the range's effective end
    month: DateRange  # this_month(...)
    comparison: DateRange
    #: Each bucket cut to the range (``None`` outside it): what it adds to the series.
    windows: tuple[DateRange | None, ...]
    inside: tuple[DateRange, ...]  # the windows that are not None: they tile the range
    edges: tuple[datetime, ...]  # the edges of ``inside``


def _plan(date_range: DateRange, now: datetime, span: DateRange, unit: Unit) -> _Plan:
    """The :class:`_Plan` of ``date_range`` at ``now`` over ``span``'s ``unit`` buckets
    (kept in :data:`_plans` unless there are more than :data:`MEMO_UP_TO`)."""
    end = effective_end(date_range, now)
    key = (date_range, end, span, unit)  # all it depends on
    found = _plans.get(key)
    if found is not None:
        return found
    buckets = _buckets(span, unit)
    windows = tuple(
        DateRange(max(b.start, date_range.start), min(b.end, end), b.timezone)
        if max(b.start, date_range.start) < min(b.end, end)
        else None
        for b in buckets
    )
    inside = tuple(w for w in windows if w is not None)
    edges = (inside[0].start, *(w.end for w in inside)) if inside else ()
    plan = _Plan(
        end, this_month(date_range, now), date_range.comparison(now), windows, inside, edges
    )
    return plan if len(buckets) > MEMO_UP_TO else _plans.put(key, plan)


def _buckets(span: DateRange, unit: Unit) -> tuple[DateRange, ...]:
    """``span.buckets(unit)`` (kept in :data:`_cuts` unless there are more than
    :data:`MEMO_UP_TO`)."""
    found = _cuts.get((span, unit))
    if found is None:
        found = span.buckets(unit)
        if len(found) <= MEMO_UP_TO:
            _cuts.put((span, unit), found)
    return found


#: The series buckets and the groups' plans of the dashboards asked lately (a
#: refresh asks the same again): at most about 16 and 10 MiB with every entry at
#: :data:`MEMO_UP_TO` buckets, about 2 and 1.3 MiB at 31 (measured by tracemalloc).
_cuts: Memo[tuple[DateRange, Unit], tuple[DateRange, ...]] = Memo(128)
_plans: Memo[tuple[DateRange, datetime, DateRange, Unit], _Plan] = Memo(256)


def _group_figures(
    store: Store,
    practices: tuple[Practice, ...],
    goals: Goals,
    date_range: DateRange,
    now: datetime,
    plan: _Plan,
) -> _GroupFigures:
    currency = practices[0].currency
    scope = frozenset(p.id for p in practices)
    members, plans, ledger = store.members, store.payment_plans, store.payments
    end, month, comparison = plan.end, plan.month, plan.comparison
    edges, inside = list(plan.edges), plan.inside
    new_members = iter(
        _reads(
            getattr(members, "first_activated_counts", None),
            lambda w: members.count(MemberQuery(practices=scope, first_activated_in=w)),
            scope,
            edges=edges if inside else [],
            each=inside,
        )
    )
    committed = iter(
        _reads(
            getattr(plans, "committed_totals", None),
            lambda w: plans.total(PaymentPlanQuery(practices=scope, committed_in=w)),
            scope,
            edges=edges if inside else [],
            each=inside,
        )
    )
    # Period retention over the range and over the comparison: undefined (0 of 0), and
    # not read, for one not started at its end.
    spans = [(date_range.start, end), (comparison.start, comparison.end)]
    started = [span for span in spans if span[0] <= span[1]]
    # Active at the effective end, at the comparison's end, at the start of this month,
    # and at the start of each period started.
    active = _reads(
        getattr(members, "active_counts", None),
        lambda a: members.count(MemberQuery(practices=scope, active_at=a)),
        scope,
        at=[end, comparison.end, month.start, *(start for start, _ in started)],
    )
    ever = _reads(
        getattr(members, "ever_active_counts", None),
        lambda b: members.count(MemberQuery(practices=scope, ever_active_before=b)),
        scope,
        before=[end, comparison.end],
    )
    kept = _reads(
        getattr(members, "retained_counts", None),
        lambda s: members.count(MemberQuery(practices=scope, active_at=s[0], retained_until=s[1])),
        scope,
        spans=started,
    )
    retained = map(Ratio, kept, active[3:])
    period = [next(retained) if span[0] <= span[1] else Ratio(0, 0) for span in spans]
    # Revenue in the range, in this month to date, and in the comparison.
    windows = [
        (start, max(start, stop))
        for start, stop in [(date_range.start, end), (month.start, end), spans[1]]
    ]
    revenue = [
        _only(totals, currency)
        for totals in _reads(
            getattr(ledger, "window_totals", None),
            lambda w: ledger.total(
                PaymentQuery(practices=scope, time_range=DateRange(w[0], w[1], date_range.timezone))
            ),
            scope,
            windows=windows,
        )
    ]
    zero = Money.zero(currency)
    return _GroupFigures(
        practices=practices,
        scope=scope,
        goals=goals,
        date_range=date_range,
        active_end=active[0],
        active_month_start=active[2],
        active_previous=active[1],
        retention=Ratio(active[0], ever[0]),
        retention_previous=Ratio(active[1], ever[1]),
        period_retention=period[0],
        period_retention_previous=period[1],
        revenue=revenue[0],
        revenue_month=revenue[1],
        revenue_previous=revenue[2],
        new_members=tuple(0 if w is None else next(new_members) for w in plan.windows),
        committed=tuple(
            zero if w is None else _only(next(committed), currency) for w in plan.windows
        ),
    )


def _reads(
    batched: Callable[..., Sequence[Any]] | None,
    one: Callable[[Any], Any],
    scope: frozenset[str],
    *,
    each: Sequence[Any] | None = None,
    **asked: Sequence[Any],
) -> list[Any]:
    """A group's answers to one kind of read: one ``batched`` call with ``asked`` (its one
    keyword) when the repository offers it (docs/repositories.md, "Optional batched
    reads"), else ``one`` read per value of ``each`` (by default, of ``asked``).

    Raises:
        InvalidValue: naming the batched read, when it answers more or fewer values than
            ``each`` has.
    """
    ((keyword, values),) = asked.items()
    each = values if each is None else each
    if not each:
        return []
    if batched is None:
        return [one(v) for v in each]
    answers = list(batched(practices=scope, **{keyword: values}))
    if len(answers) != len(each):  # a host's read: a clear error, not a wrong figure
        name = getattr(batched, "__name__", "a batched read")
        raise InvalidValue(name, answers, f"must answer once per item asked ({len(each)})")
    return answers


def _only(totals: Mapping[str, Money], currency: str) -> Money:
    """The total in ``currency`` (zero if absent); another currency is an error."""
    for code, amount in totals.items():
        if code != currency and not amount.is_zero():
            raise CurrencyMismatch(code, currency, "total")
    return totals.get(currency, Money.zero(currency))


def _resolve(date_range: DateRange | Preset | str, practice: Practice, now: datetime) -> DateRange:
    if isinstance(date_range, DateRange):
        return date_range
    return DateRange.preset(date_range, now=now, timezone=practice.timezone)


def _merged_points(
    buckets: Sequence[DateRange], days: Sequence[date], series: Sequence[Sequence[V]]
) -> tuple[SeriesPoint[V], ...]:
    """The points of ``buckets`` (starting on local ``days``), with the groups' values in
    ``series`` added bucket by bucket (there is at least one group)."""
    sums = [functools.reduce(operator.add, values) for values in zip(*series, strict=True)]
    return tuple(
        SeriesPoint(day, b.start, b.end, value)
        for b, day, value in zip(buckets, days, sums, strict=True)
    )


def _with_goals(
    points: Sequence[SeriesPoint[int]],
    buckets: Sequence[DateRange],
    groups: Sequence[_GroupFigures],
    now: datetime,
) -> tuple[SeriesPoint[int], ...]:
    """The New Members points with each bucket's goal: each practice's goal for the part of
    the bucket inside its own range (months in its zone), added; ``None`` unless every
    practice has one."""
    if any(f.goals.new_members is None for f in groups):
        return tuple(points)

    def goal(bucket: DateRange) -> Decimal:
        total = Decimal(0)
        for f in groups:
            r = f.date_range
            start, stop = max(bucket.start, r.start), min(bucket.end, effective_end(r, now))
            if start < stop:
                each = f.goals.new_members_for(DateRange(start, stop, r.timezone))
                total += (each or Decimal(0)) * len(f.practices)
        return total

    return tuple(attrs.evolve(p, goal=goal(b)) for p, b in zip(points, buckets, strict=True))


def dashboard(
    store: Store,
    *,
    practices: Iterable[str] | str,
    date_range: DateRange | Preset | str = Preset.LAST_7_DAYS,
    now: datetime,
    targets: KpiTargets | Goals | None = None,
    bucket: Unit | None = None,
    latest: int = 5,
) -> Dashboard:
    """Compute the dashboard of ``practices`` over ``date_range`` as seen at ``now``.

    Args:
        store: The host's repositories (or an :class:`~smilepass_core.InMemoryStore`).
        practices: One practice id or several; counts add, money adds per currency.
        date_range: A :class:`DateRange` (used as given) or a preset such as
            ``"last_7_days"`` (the default), resolved in each practice's time zone.
        now: The instant "now"; the range is cut there.
        targets: Goals per practice (``KpiTargets``), or one ``Goals`` for every practice;
            the manual's defaults when omitted.
        bucket: The series' bucket unit; by default day up to 31 days, week up
            to 186, month beyond.
        latest: How many members the Latest New Members feed shows.

    Raises:
        NotFound: an unknown practice id.
        InvalidValue: no practices, or a negative ``latest``.
        CurrencyMismatch: a Money goal in another currency than its practice; revenue
            in another currency than its practice's (checked per group of practices
            read together: docs/metrics.md, "Several practices").
    """
    ids = (practices,) if isinstance(practices, str) else tuple(dict.fromkeys(practices))
    if not ids:
        raise InvalidValue("practices", ids, "name at least one practice")
    if not isinstance(latest, int) or isinstance(latest, bool) or latest < 0:
        raise InvalidValue("latest", latest, "must be a whole number >= 0")
    now = as_instant(now, "now")
    targets = KpiTargets.of(targets)
    found = [store.practices.get(practice_id) for practice_id in ids]
    by_zone: dict[str, DateRange] = {}  # a preset resolves the same in one zone
    for practice in found:
        if practice.timezone not in by_zone:
            by_zone[practice.timezone] = _resolve(date_range, practice, now)
    resolved = [by_zone[practice.timezone] for practice in found]
    unit = bucket or resolved[0].default_bucket_unit()
    whole = _series_span(list(by_zone.values()), now)  # the first practice's zone first
    buckets = _buckets(whole, unit)  # one clock for every practice's series
    # Practices sharing a range, a currency and goals are read together: every figure
    # below adds over practices, so one scope answers for all of them.
    groups: dict[tuple[DateRange, str, Goals], list[Practice]] = {}
    for practice, span in zip(found, resolved, strict=True):
        key = (span, practice.currency, targets.for_practice(practice.id))
        groups.setdefault(key, []).append(practice)
    figures = [
        _group_figures(store, tuple(group), goals, r, now, _plan(r, now, whole, unit))
        for (r, _, goals), group in groups.items()
    ]

    def per_group(attribute: str) -> Decimal:
        # weighted_goal over the practices, per group: a group's goal is each of its
        # practices', its weight (its denominator) theirs together; with no weight at
        # all, each practice weighs the same, so a group weighs its number of practices.
        goals = [f.goals.retention for f in figures]
        weights = [getattr(f, attribute).denominator for f in figures]
        if not any(weights):
            weights = [len(f.practices) for f in figures]
        return weighted_goal(goals, weights)

    retention_goal = per_group("retention")
    period_goal = per_group("period_retention")

    def combined(attribute: str) -> Ratio:
        return sum((getattr(f, attribute) for f in figures), Ratio(0, 0))

    days = [b.local_start.date() for b in buckets]  # each bucket's first local day
    currencies = sorted({f.currency for f in figures})
    revenue: dict[str, Kpi[Money]] = {}
    committed: dict[str, Series[Money]] = {}
    for currency in currencies:
        mine = [f for f in figures if f.currency == currency]
        zero = Money.zero(currency)
        revenue[currency] = Kpi(
            value=sum((f.revenue for f in mine), zero),
            previous=sum((f.revenue_previous for f in mine), zero),
            goal=sum((f.revenue_goal for f in mine), zero),
            this_month_delta=sum((f.revenue_month for f in mine), zero),
            this_month_kind="to_date",
        )
        committed[currency] = Series(
            _merged_points(buckets, days, [f.committed for f in mine]),
            timezone=resolved[0].timezone,
            currency=currency,
        )

    order = Order(["-first_activated_at"], Page(limit=latest))
    feeds = (
        store.members.find(
            MemberQuery(practices=f.scope, ever_active_before=effective_end(f.date_range, now)),
            order=order,
        )
        for f in figures
    )
    feed = apply_order([m for found in feeds for m in found], Member, order)
    # Shown as they stood at `now` (each was activated before it, so each existed then).
    feed = [then for m in feed if (then := m.as_of(now)) is not None]
    retention_parts = (combined("retention"), combined("retention_previous"))
    period_parts = (combined("period_retention"), combined("period_retention_previous"))
    active_end = sum(f.active_end for f in figures)
    # Merged series follow the first practice's buckets; the feed mixes practices, so
    # it is shown in their zone when they share one, else in UTC.
    shown_in = resolved[0].timezone
    zones = {r.timezone for r in resolved}
    feed_zone = shown_in if len(zones) == 1 else "UTC"
    return Dashboard(
        practices=ids,
        ranges={p.id: r for p, r in zip(found, resolved, strict=True)},
        now=now,
        members=Kpi(
            value=active_end,
            previous=sum(f.active_previous for f in figures),
            goal=sum(f.goals.members * len(f.practices) for f in figures),
            this_month_delta=active_end - sum(f.active_month_start for f in figures),
            this_month_kind="change",
        ),
        retention=Kpi(retention_parts[0].percent, retention_parts[1].percent, retention_goal),
        period_retention=Kpi(period_parts[0].percent, period_parts[1].percent, period_goal),
        revenue=revenue,
        new_members=Series(
            _with_goals(
                _merged_points(buckets, days, [f.new_members for f in figures]),
                buckets,
                figures,
                now,
            ),
            timezone=shown_in,
        ),
        committed_payments=committed,
        latest_new_members=Feed(feed, timezone=feed_zone),
        retention_parts=retention_parts,
        period_retention_parts=period_parts,
        bucket=unit,
    )
