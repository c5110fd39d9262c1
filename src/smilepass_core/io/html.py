"""Self-contained HTML of the core's results, for notebooks: the ``"html"`` provider.

:func:`to_html` turns a :class:`~smilepass_core.kpi.Dashboard`, its
:class:`~smilepass_core.kpi.Series` and :class:`~smilepass_core.kpi.Feed`, every report
of :mod:`smilepass_core.reports`, the :class:`~smilepass_core.reports.WeeklyCheck`,
:class:`~smilepass_core.money.Money` and :class:`~smilepass_core.periods.DateRange` into
one HTML fragment. Importing this module registers it with
:func:`smilepass_core.presentation.provide`, so each result's ``_repr_html_`` (what
Jupyter shows) calls it.

The fragment is self-contained: its CSS is inline in one ``<style>`` whose selectors all
start with the root class ``.smilepass`` (the notebook's own styles are left alone), it
has no ``<script>`` and loads nothing, and every string in it went through
:func:`html.escape`.

Stable CSS class names (what a browser check or a host's stylesheet may look for):

- ``smilepass``: the root ``<div>`` of each result (``<span>`` for Money and DateRange),
  with one of ``smilepass-dashboard``, ``smilepass-report``, ``smilepass-weekly``,
  ``smilepass-series``, ``smilepass-feed``, ``smilepass-money``, ``smilepass-range``;
  a report's root also has ``smilepass-report-<name>`` (``smilepass-report-membershiplist``);
- ``smilepass-card``: each KPI card of the dashboard (Members, Retention %, one Total
  Revenue card per currency), also ``smilepass-kpi-members``, ``smilepass-kpi-retention``
  or ``smilepass-kpi-revenue``; inside a card: ``smilepass-kpi-title``,
  ``smilepass-kpi-value``, ``smilepass-kpi-month``, ``smilepass-kpi-comparison``,
  ``smilepass-kpi-goal`` and the ``<progress>`` bar ``smilepass-kpi-bar``; the cards sit
  in ``smilepass-kpis``;
- ``smilepass-table``: every table (the series, the feed, each list and summary);
  ``smilepass-num`` on right-aligned cells (money, counts), ``smilepass-undefined`` on
  a cell or figure shown as ``—``;
- ``smilepass-heading`` (each ``<h4>``, with the count), ``smilepass-note`` (a line of
  totals or context), ``smilepass-more`` (``… 153 more rows not shown``),
  ``smilepass-empty`` (a list without rows).

>>> from smilepass_core.money import Money
>>> to_html(Money.of("-1200", "AUD"))
'<span class="smilepass smilepass-money">-AUD 1,200.00</span>'
"""

from __future__ import annotations

import enum
import functools
import html
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import attrs

from smilepass_core.domain import Member
from smilepass_core.kpi import Dashboard, Feed, Kpi, Series
from smilepass_core.money import Money, minor_units
from smilepass_core.periods import DateRange, local_midnight, zone
from smilepass_core.presentation import provide
from smilepass_core.reports import (
    AccountingExport,
    AgedReceivables,
    CohortTable,
    DunningWorklist,
    InstalmentForecast,
    MembershipList,
    PaymentPlanList,
    RecoveredRevenue,
    ReferralTracking,
    RevenueCohortTable,
    StaffAttribution,
    WeeklyCheck,
)
from smilepass_core.reports._table import Report, Rows
from smilepass_core.reports.recovery import RecoveryRow
from smilepass_core.subscriptions import SubscriptionMetrics

__all__ = [
    "CSS",
    "MAX_ROWS",
    "ROOT_CLASS",
    "TAGS",
    "TITLES",
    "UNDEFINED",
    "format_day",
    "format_instant",
    "format_money",
    "format_range",
    "title",
    "to_html",
]

#: How many rows a list shows before ``… N more rows not shown`` (``max_rows=`` changes it).
MAX_ROWS: Final = 20

#: The class of every result's root element; every CSS selector starts with it.
ROOT_CLASS: Final = "smilepass"

#: How an undefined figure is shown.
UNDEFINED: Final = "—"

#: Every tag the fragments use (anything else in the output is text).
TAGS: Final = frozenset(
    {"div", "span", "style", "h4", "p", "table", "thead", "tbody", "tr", "th", "td", "progress"}
)

#: The inline style sheet: each selector starts with ``.smilepass``.
CSS: Final = """\
.smilepass { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; \
font-size: 13px; line-height: 1.4; }
.smilepass .smilepass-heading { font-size: 1.1em; font-weight: 600; margin: 0.9em 0 0.3em 0; }
.smilepass .smilepass-note { margin: 0.2em 0; opacity: 0.8; }
.smilepass .smilepass-kpis { display: flex; flex-wrap: wrap; gap: 0.75em; margin: 0.5em 0; }
.smilepass .smilepass-card { border: 1px solid rgba(128, 128, 128, 0.45); \
border-radius: 6px; padding: 0.6em 0.9em; min-width: 13em; }
.smilepass .smilepass-kpi-title { font-size: 0.85em; text-transform: uppercase; \
letter-spacing: 0.04em; opacity: 0.75; }
.smilepass .smilepass-kpi-value { font-size: 1.6em; font-weight: 600; \
font-variant-numeric: tabular-nums; }
.smilepass .smilepass-kpi-month, .smilepass .smilepass-kpi-comparison, \
.smilepass .smilepass-kpi-goal { font-size: 0.9em; }
.smilepass .smilepass-kpi-bar { display: block; width: 100%; height: 0.5em; }
.smilepass .smilepass-table { border-collapse: collapse; margin: 0.3em 0; }
.smilepass .smilepass-table th, .smilepass .smilepass-table td { padding: 0.2em 0.7em; \
border-bottom: 1px solid rgba(128, 128, 128, 0.3); text-align: left; white-space: nowrap; }
.smilepass .smilepass-table th { font-weight: 600; }
.smilepass .smilepass-table .smilepass-num { text-align: right; \
font-variant-numeric: tabular-nums; }
.smilepass .smilepass-undefined { opacity: 0.6; }
.smilepass .smilepass-more, .smilepass .smilepass-empty { font-style: italic; opacity: 0.8; \
margin: 0.2em 0; }
"""

_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun")
_MONTHS_2: Final = ("Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ONE_DAY: Final = timedelta(days=1)

# -- text formatters (plain strings; the HTML functions escape them) -----------------------


def format_money(money: Money, *, signed: bool = False) -> str:
    """``money`` for a person: the currency, thousands separators, the currency's decimals.

    A negative amount puts its sign first; ``signed=True`` also marks a positive one.

    >>> format_money(Money.of("1200", "AUD")), format_money(Money.of("-12", "AUD"))
    ('AUD 1,200.00', '-AUD 12.00')
    >>> format_money(Money.of("1234567", "JPY")), format_money(Money.of("5", "KWD"), signed=True)
    ('JPY 1,234,567', '+KWD 5.000')
    """
    scale = minor_units(money.currency)
    sign = "-" if money.is_negative() else "+" if signed and money.is_positive() else ""
    return f"{sign}{money.currency} {abs(money.amount):,.{scale}f}"


def format_day(day: date) -> str:
    """A calendar day as ``5 Oct 2026`` (English month names, whatever the locale).

    >>> format_day(date(2026, 10, 5))
    '5 Oct 2026'
    """
    return f"{day.day} {_month(day)} {day.year}"


def _month(day: date) -> str:
    return (*_MONTHS, *_MONTHS_2)[day.month - 1]


def _city(timezone: str) -> str:
    """``America/New_York`` -> ``New York``: the last part of the IANA name."""
    return timezone.rsplit("/", 1)[-1].replace("_", " ")


def _clock(local: datetime) -> str:
    """A local wall-clock time, ``09:30`` (seconds when there are some); in a DST overlap,
    where the wall time happens twice, the UTC offset tells which one is meant."""
    text = local.strftime("%H:%M:%S" if local.second or local.microsecond else "%H:%M")
    other = local.replace(fold=1 - local.fold)
    if other.utcoffset() != local.utcoffset():
        offset = local.strftime("%z")
        text += f" {offset[:3]}:{offset[3:5]}"
    return text


def format_instant(instant: datetime, timezone: str | None = None) -> str:
    """An instant as a local date and time with the city: ``24 Nov 2026 09:00 (Sydney)``;
    without a time zone, in UTC.

    >>> from datetime import UTC
    >>> format_instant(datetime(2026, 11, 23, 22, tzinfo=UTC), "Australia/Sydney")
    '24 Nov 2026 09:00 (Sydney)'
    >>> format_instant(datetime(2026, 11, 23, 22, tzinfo=UTC))
    '23 Nov 2026 22:00 (UTC)'
    """
    name = timezone or "UTC"
    local = instant.astimezone(zone(name))
    return f"{format_day(local.date())} {_clock(local)} ({_city(name)})"


def _days(first: date, last: date) -> str:
    """Whole days from ``first`` through ``last``, the shared month and year said once."""
    if first == last:
        return format_day(first)
    if first.year == last.year and first.month == last.month:
        return f"{first.day}–{format_day(last)}"
    if first.year == last.year:
        return f"{first.day} {_month(first)} – {format_day(last)}"
    return f"{format_day(first)} – {format_day(last)}"


def format_range(date_range: DateRange, *, city: bool = True) -> str:
    """A half-open range ``[start, end)`` for a person, in its practice's time zone.

    When both edges are local midnights the range is whole days: it shows its first and
    its last included day (the end minus one day), saying a shared month or year once.
    Otherwise it shows both edges' local times. The city (the IANA zone's last part)
    follows in brackets unless ``city`` is false.

    >>> sydney = "Australia/Sydney"
    >>> format_range(DateRange.custom(date(2026, 11, 1), date(2026, 11, 30), timezone=sydney))
    '1–30 Nov 2026 (Sydney)'
    >>> format_range(DateRange.custom(date(2026, 9, 28), date(2026, 10, 4), timezone=sydney))
    '28 Sep – 4 Oct 2026 (Sydney)'
    >>> format_range(DateRange.custom(date(2026, 12, 30), date(2027, 1, 5), timezone=sydney))
    '30 Dec 2026 – 5 Jan 2027 (Sydney)'
    >>> format_range(DateRange.custom(date(2026, 10, 5), date(2026, 10, 5), timezone=sydney))
    '5 Oct 2026 (Sydney)'
    >>> from datetime import UTC
    >>> format_range(DateRange(datetime(2026, 10, 5, 9, tzinfo=UTC),
    ...     datetime(2026, 10, 6, 13, 30, tzinfo=UTC), "America/New_York"))
    '5 Oct 2026 05:00 – 6 Oct 2026 09:30 (New York)'
    """
    tz = date_range.timezone
    start, end = date_range.local_start, date_range.local_end
    suffix = f" ({_city(tz)})" if city else ""
    whole_days = (
        date_range.end > date_range.start
        and date_range.start == local_midnight(start.date(), tz)
        and date_range.end == local_midnight(end.date(), tz)
    )
    if whole_days:
        return _days(start.date(), end.date() - _ONE_DAY) + suffix
    if date_range.is_empty():
        return f"nothing at {format_day(start.date())} {_clock(start)}{suffix}"
    if start.date() == end.date():
        return f"{format_day(start.date())} {_clock(start)}–{_clock(end)}{suffix}"
    first, last = f"{format_day(start.date())} {_clock(start)}", format_day(end.date())
    return f"{first} – {last} {_clock(end)}{suffix}"


def _percent(value: Decimal | None, *, signed: bool = False) -> str:
    if value is None:
        return UNDEFINED
    sign = "+" if signed and value > 0 else ""
    return f"{sign}{value:,} %"


def _figure(value: Any, *, signed: bool = False) -> str:
    """A KPI figure: money, a count or ``—``."""
    if value is None:
        return UNDEFINED
    if isinstance(value, Money):
        return format_money(value, signed=signed)
    sign = "+" if signed and value > 0 else ""
    return f"{sign}{value:,}"


def _words(value: str) -> str:
    """An enum value as words: ``resend_payment_link`` -> ``Resend payment link``."""
    text = value.replace("_", " ")
    return text[:1].upper() + text[1:]


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


# -- HTML building blocks --------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _el(tag: str, content: str, cls: str | None = None, **attributes: str) -> str:
    """``<tag class="cls" ...>content</tag>``; ``content`` is HTML already, attributes text."""
    attrs_text = f' class="{_e(cls)}"' if cls else ""
    attrs_text += "".join(f' {name}="{_e(value)}"' for name, value in attributes.items())
    return f"<{tag}{attrs_text}>{content}</{tag}>"


def _root(kind: str, body: str, extra: str = "") -> str:
    classes = f"{ROOT_CLASS} {ROOT_CLASS}-{kind}" + (f" {extra}" if extra else "")
    return _el("div", _el("style", CSS) + body, classes)


def _heading(text: str) -> str:
    return _el("h4", _e(text), "smilepass-heading")


def _note(text: str) -> str:
    return _el("p", _e(text), "smilepass-note")


@attrs.frozen
class _Cell:
    """A table cell: its text (unescaped), right-aligned or not, undefined or not."""

    text: str
    numeric: bool = False

    @property
    def undefined(self) -> bool:
        return self.text == UNDEFINED


def _table(headers: Sequence[str], rows: Sequence[Sequence[_Cell]], *, max_rows: int | None) -> str:
    """A ``smilepass-table`` of the first ``max_rows`` rows (all when ``None``), then how
    many more there are; a column is right-aligned when any shown cell of it is numeric."""
    shown = list(rows if max_rows is None else rows[:max_rows])
    numeric = [any(r[i].numeric for r in rows) for i in range(len(headers))]

    def cls(i: int, cell: _Cell | None = None) -> str | None:
        names = ["smilepass-num"] if numeric[i] else []
        if cell is not None and cell.undefined:
            names.append("smilepass-undefined")
        return " ".join(names) or None

    head = "".join(_el("th", _e(h), cls(i)) for i, h in enumerate(headers))
    body = "".join(
        _el("tr", "".join(_el("td", _e(c.text), cls(i, c)) for i, c in enumerate(r))) for r in shown
    )
    result = _el("table", _el("thead", _el("tr", head)) + _el("tbody", body), "smilepass-table")
    hidden = len(rows) - len(shown)
    if hidden:
        result += _el("p", _e(f"… {_count(hidden, 'more row')} not shown"), "smilepass-more")
    elif not rows:
        result += _el("p", "No rows.", "smilepass-empty")
    return result


def _check_max_rows(max_rows: int | None) -> int | None:
    if max_rows is not None and (
        not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 0
    ):
        raise ValueError(f"max_rows must be a whole number >= 0 or None, not {max_rows!r}")
    return max_rows


# -- tables of rows ----------------------------------------------------------------------------

#: Column titles: the manual's own names first, then titles clearer than the field name.
TITLES: Final[Mapping[str, str]] = {
    # The manual: Referral tracking, the Membership list, the Payment Plan list.
    "account_holder": "Account Holder",
    "dependents": "Dependents",
    "start_date": "Start Date",
    "campaign": "Campaign",
    "user": "User",
    "status": "Status",
    "plan": "Plan",
    "progression": "Progression",
    "balance": "Balance",
    "payment_type": "Payment Type",
    # Clearer than the field name.
    "converted_at": "Converted",
    "failed_at": "Failed Since",
    "staff_user": "Staff",
    "referring_member": "Referred By",
    "new_account_holder": "New Account Holder",
    "key": "ID",
    "conversion_rate": "Conversion %",
    "retention": "Retention % at Month Ends",
    "active": "Active at Month Ends",
    "members_attributed": "New Members Attributed",
    "bucket": "Bucket",
}

#: Columns that read as numbers although they hold text (``4/12``).
_RIGHT: Final = frozenset({"progression"})


def title(column: str) -> str:
    """A column's title: the manual's name where it names it, else words from the field
    name (``amount_overdue`` -> ``Amount Overdue``, ``member_id`` -> ``Member ID``)."""
    if column in TITLES:
        return TITLES[column]
    return " ".join("ID" if w == "id" else w.capitalize() for w in column.split("_"))


def _cell(value: Any, column: str = "", timezone: str | None = None) -> _Cell:
    """A value as a cell (instants in ``timezone``, UTC when unknown)."""
    if value is None:
        return _Cell(UNDEFINED)
    if isinstance(value, bool):
        return _Cell("yes" if value else "no")
    if isinstance(value, Money):
        return _Cell(format_money(value), True)
    if isinstance(value, enum.Enum):
        return _Cell(_words(str(value.value)))
    if isinstance(value, datetime):
        return _Cell(format_instant(value, timezone))
    if isinstance(value, date):
        return _Cell(format_day(value))
    if isinstance(value, int | Decimal):
        return _Cell(f"{value:,}", True)
    if isinstance(value, tuple):
        return _Cell(", ".join(_cell(v, column, timezone).text for v in value))
    return _Cell(str(value), column in _RIGHT)


def _rows_table(
    rows: Collection[Any],
    columns: Sequence[str],
    *,
    max_rows: int | None,
    zones: Mapping[str, str] | None = None,
) -> str:
    """Rows of a :class:`Table` (or any attrs rows) under titled ``columns``; instants in
    the zone of the row's practice when ``zones`` knows it."""
    known = zones or {}
    cells = [
        [_cell(getattr(r, c), c, known.get(getattr(r, "practice", ""))) for c in columns]
        for r in rows
    ]
    return _table([title(c) for c in columns], cells, max_rows=max_rows)


# -- the dashboard --------------------------------------------------------------------------


def _card(kind: str, name: str, kpi: Kpi[Any], *, percent: bool = False) -> str:
    def figure(value: Any, *, signed: bool = False) -> str:
        return _percent(value, signed=signed) if percent else _figure(value, signed=signed)

    def line(cls: str, text: str) -> str:
        return _el("div", _e(text), cls)

    value = kpi.value
    value_cls = "smilepass-kpi-value" + (" smilepass-undefined" if value is None else "")
    parts = [
        line("smilepass-kpi-title", name),
        line(value_cls, figure(value)),
        line("smilepass-kpi-month", _this_month(kpi, figure)),
        line(
            "smilepass-kpi-comparison",
            f"Previous {figure(kpi.previous)} · change {figure(kpi.change, signed=True)}",
        ),
    ]
    goal = kpi.goal
    has_goal = goal is not None and not (goal.is_zero() if isinstance(goal, Money) else goal == 0)
    if has_goal:
        progress = kpi.progress
        text = _e(f"{_percent(progress)} of goal {figure(goal)}")
        if progress is not None:
            bar = min(max(progress, Decimal(0)), Decimal(100))
            text += _el("progress", "", "smilepass-kpi-bar", max="100", value=f"{bar}")
        parts.append(_el("div", text, "smilepass-kpi-goal"))
    return _el("div", "".join(parts), f"smilepass-card smilepass-kpi-{kind}")


def _where(board: Dashboard) -> str:
    spans: dict[str, list[str]] = {}
    for practice_id in board.practices:
        spans.setdefault(format_range(board.ranges[practice_id]), []).append(practice_id)
    return "; ".join(f"{', '.join(ids)}: {span}" for span, ids in spans.items())


def _dashboard_body(board: Dashboard, max_rows: int | None) -> str:
    first = board.ranges[board.practices[0]]
    comparisons = sorted({format_range(r.comparison(board.now)) for r in board.ranges.values()})
    parts = [
        _heading(f"Dashboard · {_where(board)}"),
        _note(
            f"Compared with {'; '.join(comparisons)} · now "
            f"{format_instant(board.now, first.timezone)}"
        ),
    ]
    cards = [
        _card("members", "Members", board.members),
        _card("retention", "Retention %", board.retention, percent=True),
    ]
    cards += [
        _card("revenue", f"Total Revenue ({currency})", kpi)
        for currency, kpi in board.revenue.items()
    ]
    parts.append(_el("div", "".join(cards), "smilepass-kpis"))
    parts.append(
        _heading(f"New Members and Committed Payments · {_count(len(board.new_members), 'bucket')}")
    )
    # Every bucket: cutting a series would hide its newest buckets.
    parts.append(_series_table(board, max_rows=None))
    parts.append(_heading(f"Latest New Members · {len(board.latest_new_members):,}"))
    zones = {p: r.timezone for p, r in board.ranges.items()}
    parts.append(_feed_table(board.latest_new_members, zones, max_rows=max_rows))
    return "".join(parts)


def _bucket(start: datetime, end: datetime, day: date, timezone: str | None) -> str:
    if timezone is None:
        return f"from {format_day(day)}"
    return format_range(DateRange(start, end, timezone), city=False)


def _series_table(board: Dashboard, *, max_rows: int | None) -> str:
    zones = {r.timezone for r in board.ranges.values()}
    tz = next(iter(zones)) if len(zones) == 1 else None
    committed = {
        c: {p.day: p.value for p in series} for c, series in board.committed_payments.items()
    }
    goals = any(p.goal is not None for p in board.new_members)
    headers = [
        "Bucket",
        "New Members",
        *(["Goal"] if goals else []),
        *(f"Committed Payments ({c})" for c in committed),
    ]
    rows = [
        [
            _Cell(_bucket(p.start, p.end, p.day, tz)),
            _cell(p.value),
            *([_cell(p.goal)] if goals else []),
            *(_cell(committed[c].get(p.day)) for c in committed),
        ]
        for p in board.new_members
    ]
    return _table(headers, rows, max_rows=max_rows)


def _feed_table(
    members: Iterable[Member], zones: Mapping[str, str], *, max_rows: int | None
) -> str:
    headers = ["Account Holder", "Dependents", "Practice", "Plan", "Status", "First Active"]
    rows = [
        [
            _Cell(m.account_holder.name),
            _cell(len(m.dependents)),
            _Cell(m.practice_id),
            _Cell(m.plan_id),
            _cell(m.status),
            _cell(m.first_activated_at, timezone=zones.get(m.practice_id)),
        ]
        for m in members
    ]
    return _table(headers, rows, max_rows=max_rows)


# -- reports ------------------------------------------------------------------------------------


@attrs.frozen
class _Shape:
    """How a report is introduced: its title, what its rows are, its notes and extra tables."""

    title: str
    noun: str
    plural: str
    notes: Callable[[Any], list[str]] = lambda report: []
    tables: Callable[[Any, int | None], list[str]] = lambda report, max_rows: []


def _totals(totals: Mapping[str, Money]) -> str:
    return ", ".join(format_money(m) for m in totals.values()) or UNDEFINED


def _statuses(counts: Mapping[str, int]) -> str:
    return " · ".join(f"{_words(s)} {n:,}" for s, n in sorted(counts.items())) or "none"


def _conversion_tables(report: ReferralTracking, max_rows: int | None) -> list[str]:
    columns = type(report.by_campaign[0]).COLUMNS if report.by_campaign else ()
    if not columns and report.by_user:
        columns = type(report.by_user[0]).COLUMNS
    result = []
    for name, summaries in (("campaign", report.by_campaign), ("staff user", report.by_user)):
        result.append(_heading(f"Conversion by {name} · {len(summaries):,}"))
        result.append(_rows_table(summaries, columns, max_rows=max_rows))
    return result


def _discrepancy_tables(report: PaymentPlanList, max_rows: int | None) -> list[str]:
    if not report.discrepancies:
        return []
    columns = [f.name for f in attrs.fields(type(report.discrepancies[0]))]
    return [
        _heading(f"Ledger discrepancies · {len(report.discrepancies):,}"),
        _rows_table(report.discrepancies, columns, max_rows=max_rows),
    ]


def _aged_tables(report: AgedReceivables, max_rows: int | None) -> list[str]:
    headers = ["Practice", *report.labels]
    rows = [
        [_Cell(practice), *(_cell(buckets.get(label)) for label in report.labels)]
        for practice, buckets in report.by_practice.items()
    ]
    return [_heading("By practice and days past due"), _table(headers, rows, max_rows=max_rows)]


_SHAPES: Final[Mapping[type[Report], _Shape]] = {
    ReferralTracking: _Shape(
        "Referral tracking",
        "referral",
        "referrals",
        lambda r: [f"Revenue over {format_range(r.revenue_range)}"] if r.revenue_range else [],
        _conversion_tables,
    ),
    StaffAttribution: _Shape(
        "Per-staff attribution",
        "staff user",
        "staff users",
        lambda r: [f"Over {format_range(r.date_range)}"],
    ),
    MembershipList: _Shape(
        "Membership list",
        "member",
        "members",
        lambda r: [
            f"As of {format_instant(r.as_of, r.shared_timezone)} · {_statuses(r.counts)}",
            f"Overdue: {_count(r.overdue_members, 'member')} · {_totals(r.total_overdue)}",
        ],
    ),
    PaymentPlanList: _Shape(
        "Payment plan list",
        "payment plan",
        "payment plans",
        lambda r: [
            f"As of {format_instant(r.as_of, r.shared_timezone)} · {_statuses(r.counts)}",
            f"Outstanding {_totals(r.outstanding)} · overdue {_totals(r.overdue)} · "
            f"{_count(len(r.discrepancies), 'ledger discrepancy', 'ledger discrepancies')}",
        ],
        _discrepancy_tables,
    ),
    AgedReceivables: _Shape(
        "Aged receivables",
        "unpaid charge",
        "unpaid charges",
        lambda r: [f"At {format_instant(r.at, r.shared_timezone)} · total {_totals(r.totals)}"],
        _aged_tables,
    ),
    CohortTable: _Shape(
        "Cohort retention",
        "cohort",
        "cohorts",
        lambda r: [f"Now {format_instant(r.now, r.shared_timezone)}"],
    ),
    DunningWorklist: _Shape(
        "Dunning worklist",
        "action",
        "actions",
        lambda r: [f"Due at {format_instant(r.now, r.shared_timezone)}"],
    ),
    RevenueCohortTable: _Shape(
        "Revenue cohorts",
        "cohort",
        "cohorts",
        lambda r: [f"Now {format_instant(r.now, r.shared_timezone)}"],
    ),
    RecoveredRevenue: _Shape(
        "Recovered revenue",
        "practice",
        "practices",
        lambda r: [
            "Failed in "
            + ", ".join(f"{p} {format_range(span)}" for p, span in r.ranges.items())
            + f" · counted at {format_instant(r.now, r.shared_timezone)}"
        ],
    ),
    AccountingExport: _Shape(
        "Accounting export",
        "payment",
        "payments",
        lambda r: [f"Over {format_range(r.date_range)} · total {_totals(r.totals)}"],
    ),
    InstalmentForecast: _Shape(
        "Instalment forecast",
        "bucket",
        "buckets",
        lambda r: [f"Over {format_range(r.date_range)} · total {_totals(r.totals)}"],
    ),
}


def _shape(report: Report) -> _Shape:
    for cls in type(report).__mro__:
        if cls in _SHAPES:
            return _SHAPES[cls]
    name = type(report).__name__
    return _Shape(name, "row", "rows")


def _report_body(report: Report, max_rows: int | None) -> str:
    shape = _shape(report)
    parts = [_heading(f"{shape.title} · {_count(len(report.rows), shape.noun, shape.plural)}")]
    parts += [_note(n) for n in shape.notes(report)]
    parts.append(
        _rows_table(report.rows, report.ROW.COLUMNS, max_rows=max_rows, zones=report.timezones)
    )
    parts += shape.tables(report, max_rows)
    return "".join(parts)


def _this_month(kpi: Kpi[Any], figure: Callable[..., str]) -> str:
    """``Change this month +2`` for a level, ``Month to date AUD 270.00`` for a flow."""
    if kpi.this_month_kind == "to_date":
        return f"Month to date {figure(kpi.this_month_delta)}"
    if kpi.this_month_kind == "change":
        return f"Change this month {figure(kpi.this_month_delta, signed=True)}"
    return f"This month {figure(kpi.this_month_delta)}"


# -- the weekly check ---------------------------------------------------------------------------


def _weekly_body(check: WeeklyCheck, max_rows: int | None) -> str:
    zones = {p: r.timezone for p, r in check.dashboard.ranges.items()}
    sections: list[tuple[str, Rows[Any]]] = [
        ("Failed payment plans to action", check.failed_plans),
        ("Overdue members", check.overdue_members),
        ("Referrals converted this week", check.converted_referrals),
    ]
    parts = [
        _heading(f"Weekly check · week of {format_range(check.week)}"),
        _note(
            f"{_count(len(check.failed_plans), 'failed plan')} to action · "
            f"{_count(len(check.overdue_members), 'overdue member')} · "
            f"{_count(len(check.converted_referrals), 'referral')} converted"
        ),
        _dashboard_body(check.dashboard, max_rows),
    ]
    for name, rows in sections:
        parts.append(_heading(f"{name} · {len(rows):,}"))
        parts.append(_rows_table(tuple(rows), rows.row.COLUMNS, max_rows=max_rows, zones=zones))
    if check.recovery is not None:
        recovery = check.recovery
        parts.append(_heading("Charges that failed last week, and what was recovered since"))
        parts.append(
            _rows_table(recovery.rows, RecoveryRow.COLUMNS, max_rows=max_rows, zones=zones)
        )
    return "".join(parts)


# -- the provider -------------------------------------------------------------------------------


@functools.singledispatch
def to_html(obj: object, *, max_rows: int | None = MAX_ROWS) -> str:
    """Self-contained HTML of a result: what a notebook shows for it.

    Args:
        obj: A Dashboard, a Series or Feed of one, a report, a WeeklyCheck, Money or a
            DateRange.
        max_rows: How many rows each table shows before ``… N more rows not shown``;
            ``None`` shows them all.

    Raises:
        TypeError: ``obj`` is none of those.
        ValueError: ``max_rows`` is not a whole number >= 0 or ``None``.
    """
    raise TypeError(f"no HTML for {type(obj).__name__}")


@to_html.register
def _(obj: Money, *, max_rows: int | None = MAX_ROWS) -> str:
    return _el("span", _e(format_money(obj)), f"{ROOT_CLASS} {ROOT_CLASS}-money")


@to_html.register
def _(obj: DateRange, *, max_rows: int | None = MAX_ROWS) -> str:
    return _el("span", _e(format_range(obj)), f"{ROOT_CLASS} {ROOT_CLASS}-range", title=str(obj))


@to_html.register
def _(obj: Dashboard, *, max_rows: int | None = MAX_ROWS) -> str:
    return _root("dashboard", _dashboard_body(obj, _check_max_rows(max_rows)))


@to_html.register(Series)
def _(obj: Series[Any], *, max_rows: int | None = MAX_ROWS) -> str:
    limit = _check_max_rows(max_rows)
    value = "Count" if obj.currency is None else f"Amount ({obj.currency})"
    goals = any(p.goal is not None for p in obj)
    rows = [
        [
            _Cell(_bucket(p.start, p.end, p.day, obj.timezone)),
            _cell(p.value),
            *([_cell(p.goal)] if goals else []),
        ]
        for p in obj
    ]
    headers = ["Bucket", value, *(["Goal"] if goals else [])]
    body = _heading(f"Series · {_count(len(obj), 'bucket')}")
    return _root("series", body + _table(headers, rows, max_rows=limit))


@to_html.register
def _(obj: SubscriptionMetrics, *, max_rows: int | None = MAX_ROWS) -> str:
    _check_max_rows(max_rows)
    m = obj.mrr
    rows: list[tuple[str, _Cell]] = [
        ("MRR at the start", _cell(m.start)),
        ("New", _Cell(format_money(m.new, signed=True), True)),
        ("Expansion", _Cell(format_money(m.expansion, signed=True), True)),
        ("Contraction", _Cell(format_money(-m.contraction, signed=True), True)),
        ("Reactivation", _Cell(format_money(m.reactivation, signed=True), True)),
        ("Churn", _Cell(format_money(-m.churn, signed=True), True)),
        ("MRR at the end", _cell(m.end)),
        ("ARR", _cell(obj.arr)),
        ("Members counting at the start", _cell(obj.members_start)),
        ("Members counting at the end", _cell(obj.members_end)),
        ("Churned members", _cell(obj.churned_members)),
        ("Logo churn", _Cell(_percent(obj.logo_churn), True)),
    ]
    if obj.churn_goal is not None:
        rows.append(("Logo churn goal (at most)", _Cell(_percent(obj.churn_goal), True)))
    rows += [
        ("Revenue churn", _Cell(_percent(obj.revenue_churn), True)),
        ("Gross revenue retention", _Cell(_percent(obj.grr), True)),
        ("Net revenue retention", _Cell(_percent(obj.nrr), True)),
        ("ARPU", _cell(obj.arpu)),
        ("LTV", _cell(obj.ltv)),
    ]
    body = _heading(f"Recurring revenue · {', '.join(obj.practices)}: {format_range(obj.range)}")
    table = _table(["Figure", "Value"], [[_Cell(name), cell] for name, cell in rows], max_rows=None)
    return _root("subscriptions", body + table)


@to_html.register
def _(obj: Feed, *, max_rows: int | None = MAX_ROWS) -> str:
    limit = _check_max_rows(max_rows)
    zones = {m.practice_id: obj.timezone for m in obj}
    body = _heading(f"Latest New Members · {len(obj):,}")
    return _root("feed", body + _feed_table(obj, zones, max_rows=limit))


@to_html.register
def _(obj: Rows, *, max_rows: int | None = MAX_ROWS) -> str:  # type: ignore[type-arg]
    limit = _check_max_rows(max_rows)
    zones = {getattr(r, "practice", ""): obj.timezone for r in obj}
    name = re.sub(r"(?<!^)(?=[A-Z])", " ", obj.row.__name__).capitalize()
    body = _heading(f"{name}s · {len(obj):,}")
    table = _rows_table(tuple(obj), obj.row.COLUMNS, max_rows=limit, zones=zones)
    return _root("rows", body + table)


@to_html.register
def _(obj: Report, *, max_rows: int | None = MAX_ROWS) -> str:
    extra = f"{ROOT_CLASS}-report-{type(obj).__name__.lower()}"
    return _root("report", _report_body(obj, _check_max_rows(max_rows)), extra)


@to_html.register
def _(obj: WeeklyCheck, *, max_rows: int | None = MAX_ROWS) -> str:
    return _root("weekly", _weekly_body(obj, _check_max_rows(max_rows)))


provide("html", to_html)
