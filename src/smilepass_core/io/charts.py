"""Charts: the dashboard's series and the reports as matplotlib Figures (extra ``[plot]``).

Every function takes a core result (a :class:`~smilepass_core.kpi.Dashboard` or a report)
and returns a new :class:`matplotlib.figure.Figure`, built directly (no pyplot, no global
state, nothing shown): a notebook displays it, ``fig.savefig(...)`` writes it. Money
becomes a float only here, to draw it (:meth:`Money.to_float`); amounts of different
currencies are never added (one axes per currency). An empty result gives a figure holding
a "No data" note.

matplotlib is imported when a chart is drawn, never when this module (or
``smilepass_core``) is imported; without it a chart raises
:class:`~smilepass_core.errors.MissingExtra` (an :class:`ImportError`) naming the extra to
install, ``pip install 'smilepass-core[plot]'``.

>>> from smilepass_core.demo import DEMO_NOW, demo_store
>>> from smilepass_core.reports import aged_receivables
>>> fig = receivables_chart(aged_receivables(demo_store(), at=DEMO_NOW, practices="syd"))
>>> [ax.get_title() for ax in fig.axes]
['AUD: total AUD 13,554.08']
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from smilepass_core.errors import InvalidValue, MissingExtra
from smilepass_core.io.html import format_instant, format_range
from smilepass_core.kpi import Dashboard, SeriesPoint, comparison_dashboard
from smilepass_core.money import Money
from smilepass_core.periods import Unit
from smilepass_core.reports import AgedReceivables, CohortTable, ReferralTracking, StaffAttribution

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.container import BarContainer
    from matplotlib.figure import Figure

__all__ = [
    "cohort_chart",
    "comparison_dashboard",
    "receivables_chart",
    "referral_chart",
    "series_chart",
    "staff_chart",
]

#: The x-axis caption of a series for each bucket unit.
_BUCKET_CAPTION = {
    Unit.DAY: "Day",
    Unit.WEEK: "Week starting",
    Unit.MONTH: "Month",
    Unit.QUARTER: "Quarter starting",
    Unit.YEAR: "Year",
}
_TICK_FORMAT = {
    Unit.DAY: "%d %b",
    Unit.WEEK: "%d %b",
    Unit.MONTH: "%b %Y",
    Unit.QUARTER: "%b %Y",
    Unit.YEAR: "%Y",
}
#: At most this many cells of a cohort heatmap carry their percentage as text.
_ANNOTATED_CELLS = 400
_NO_DATA = "No data"


def _new_figure(width: float, height: float) -> Figure:
    """A new Figure with constrained layout, or a clear error when matplotlib is missing.

    Raises:
        MissingExtra: matplotlib is not installed; the message names the ``[plot]`` extra.
    """
    try:
        # ``import matplotlib`` first: it fails even when a submodule is already imported
        # but the package itself has been hidden or removed.
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingExtra("plot", "matplotlib", wanted="a chart") from error
    fig = Figure(figsize=(width, height), layout="constrained")
    # A notebook shows the chart even where no inline backend registered a Figure
    # formatter (a chart never goes through pyplot).
    fig._repr_png_ = functools.partial(_png, fig)  # type: ignore[attr-defined]
    return fig


def _png(fig: Figure) -> bytes:
    """``fig`` as PNG bytes, what a notebook shows for it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _no_data(title: str, note: str) -> Figure:
    """A figure holding only a title and a centred "No data" note."""
    fig = _new_figure(6, 2.5)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, f"{_NO_DATA}: {note}", ha="center", va="center", transform=ax.transAxes)
    return fig


def _grouped_bars(
    ax: Axes, categories: Sequence[str], groups: Sequence[tuple[str, Sequence[float]]]
) -> list[BarContainer]:
    """One bar per category and group, groups side by side; categories on the x axis."""
    width = 0.8 / len(groups)
    bars = []
    for i, (label, values) in enumerate(groups):
        xs = [k - 0.4 + width * (i + 0.5) for k in range(len(categories))]
        bars.append(ax.bar(xs, values, width, label=label))
    ax.set_xticks(range(len(categories)), categories, rotation=20, ha="right")
    if len(groups) > 1:
        ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return bars


def _integer_axis(ax: Axes) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _money_axes(
    fig: Figure, row: int, rows: int, items: Sequence[tuple[str, Money]], what: str
) -> int:
    """One bar axes per currency of ``items`` (category label, amount), from subplot ``row``.

    Returns:
        The next free subplot row.
    """
    currencies = sorted({money.currency for _, money in items})
    for currency in currencies:
        mine = [(label, money) for label, money in items if money.currency == currency]
        ax = fig.add_subplot(rows, 1, row + 1)
        total = sum((money for _, money in mine), Money.zero(currency))
        _grouped_bars(ax, [label for label, _ in mine], [(what, [m.to_float() for _, m in mine])])
        ax.set_title(f"{what} ({currency}): total {total}")
        ax.set_ylabel(f"Amount ({currency})")
        row += 1
    return row


def _practices(ids: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(ids))


# -- the dashboard's series ------------------------------------------------------------------


def _period(board: Dashboard) -> str:
    """The period a board's series cover, cut at its ``now`` (``27 Oct – 25 Nov 2026 16:00
    (Sydney)``)."""
    cut = {p: format_range(r.cut(board.now)) for p, r in board.ranges.items()}
    if len(set(cut.values())) == 1:
        return next(iter(cut.values()))
    return "; ".join(f"{p}: {text}" for p, text in cut.items())


def _draw_series(
    ax: Axes,
    current: Sequence[float],
    comparison: Sequence[float] | None,
    current_label: str,
    comparison_label: str,
) -> None:
    ax.plot(range(len(current)), current, marker="o", label=current_label)
    if comparison is not None:
        ax.plot(
            range(len(comparison)),
            comparison,
            marker=".",
            linestyle="--",
            color="0.5",
            label=comparison_label,
        )
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)


def series_chart(
    board: Dashboard, *, comparison: Dashboard | None = None, title: str | None = None
) -> Figure:
    """The New Members series and the Committed Payments series (one axes per currency),
    each with its comparison period's series beside it.

    The dashboard holds only the current period's series; pass the comparison period's
    dashboard as ``comparison`` (:func:`comparison_dashboard` computes it). Both are drawn
    bucket by bucket (the k-th day of this period over the k-th day of the comparison
    period); the x axis names the current period's buckets.

    Args:
        board: The dashboard.
        comparison: The comparison period's dashboard for the same practices; none drawn
            when omitted.
        title: The figure's title; by default the practices and the period.

    Returns:
        A figure: "New members" on top, then "Committed payments (CUR)" per currency.

    Raises:
        InvalidValue: ``comparison`` is for other practices than ``board``.
        MissingExtra: matplotlib is not installed (the ``[plot]`` extra).
    """
    if comparison is not None and comparison.practices != board.practices:
        raise InvalidValue(
            "comparison", comparison.practices, f"must be for the practices {board.practices}"
        )
    heading = title or (
        f"New members and committed payments: {_practices(board.practices)}\n{_period(board)}"
    )
    if not board.new_members:
        return _no_data(heading, "the period has not started at its now")
    currencies = sorted(board.committed_payments)
    rows = 1 + len(currencies)
    fig = _new_figure(9, 1 + 2.6 * rows)
    fig.suptitle(heading)
    current_label = f"This period, {_period(board)}"
    comparison_label = "" if comparison is None else f"Comparison, {_period(comparison)}"

    members = fig.add_subplot(rows, 1, 1)
    values = [p.value for p in board.new_members]
    before = None if comparison is None else [p.value for p in comparison.new_members]
    _draw_series(
        members,
        values,
        before,
        f"{current_label}: {sum(values)}",
        f"{comparison_label}: {sum(before or ())}",
    )
    members.set_title("New members")
    members.set_ylabel("New members")
    _integer_axis(members)
    last = members
    for i, currency in enumerate(currencies, start=2):
        ax = fig.add_subplot(rows, 1, i, sharex=members)
        series = board.committed_payments[currency]
        previous = None if comparison is None else comparison.committed_payments.get(currency)
        _draw_series(
            ax,
            [p.value.to_float() for p in series],
            None if previous is None else [p.value.to_float() for p in previous],
            f"{current_label}: {_total(series, currency)}",
            f"{comparison_label}: {_total(previous or (), currency)}",
        )
        ax.set_title(f"Committed payments ({currency})")
        ax.set_ylabel(f"Committed ({currency})")
        last = ax
    _bucket_ticks(last, board)
    return fig


def _total(series: Iterable[SeriesPoint[Money]], currency: str) -> Money:
    return sum((p.value for p in series), Money.zero(currency))


def _bucket_ticks(ax: Axes, board: Dashboard) -> None:
    """At most eight labelled ticks on the bottom axes: the current period's buckets."""
    timezones = sorted({r.timezone for r in board.ranges.values()})
    unit = board.bucket
    days = [p.day for p in board.new_members]
    step = math.ceil(len(days) / 8)
    ticks = range(0, len(days), step)
    ax.set_xticks(ticks, [days[k].strftime(_TICK_FORMAT[unit]) for k in ticks])
    ax.set_xlabel(f"{_BUCKET_CAPTION[unit]} of this period ({', '.join(timezones)})")


# -- reports ---------------------------------------------------------------------------------


def cohort_chart(table: CohortTable, *, title: str | None = None) -> Figure:
    """Cohort retention as a heatmap per practice: a row per cohort (oldest on top), a
    column per month end after joining, each cell the share of the cohort Active then.

    Cells of months that have not ended (and undefined shares) are left blank; with at most
    400 cells, each carries its percentage.

    Args:
        table: The report of :func:`~smilepass_core.reports.cohort_retention`.
        title: The figure's title; by default the practices and the report's ``now``.

    Returns:
        A figure with one heatmap (an image, percent 0-100) and colour bar per practice.

    Raises:
        MissingExtra: matplotlib is not installed (the ``[plot]`` extra).
    """
    practices = list(dict.fromkeys(r.practice for r in table.rows))
    when = format_instant(table.now, table.shared_timezone)
    heading = title or f"Cohort retention: {_practices(practices)}, as of {when}"
    if not table.rows:
        return _no_data(heading, "no member has been Active yet")
    heights = [len([r for r in table.rows if r.practice == p]) for p in practices]
    fig = _new_figure(10, 1.5 + sum(0.3 * h + 1.2 for h in heights))
    fig.suptitle(heading)
    import numpy as np  # after the figure: matplotlib's own dependency

    for i, practice in enumerate(practices):
        rows = [r for r in table.rows if r.practice == practice]
        columns = max(1, *(len(r.active) for r in rows))
        cells = np.full((len(rows), columns), np.nan)
        for y, row in enumerate(rows):
            for x, share in enumerate(row.retention):
                if share is not None:
                    cells[y, x] = float(share)  # a percentage, drawn as a colour
        ax = fig.add_subplot(len(practices), 1, i + 1)
        image = ax.imshow(
            np.ma.masked_invalid(cells), aspect="auto", cmap="viridis", vmin=0, vmax=100
        )
        fig.colorbar(image, ax=ax, label="Active at month end (% of cohort)")
        if cells.size <= _ANNOTATED_CELLS:
            for y, x in zip(*np.nonzero(~np.isnan(cells)), strict=True):
                value = cells[y, x]
                colour = "white" if value < 50 else "black"
                ax.text(x, y, f"{value:.0f}", ha="center", va="center", fontsize=6, color=colour)
        ax.set_yticks(range(len(rows)), [f"{r.cohort:%b %Y} (n={r.size})" for r in rows])
        ax.set_xticks(range(columns))
        ax.set_title(f"Practice {practice}")
        ax.set_ylabel("Cohort (joined in)")
        ax.set_xlabel("Months after the joining month (0: end of the joining month)")
    return fig


def receivables_chart(report: AgedReceivables, *, title: str | None = None) -> Figure:
    """Aged receivables as bars: per bucket (Current, 1-30, ...), one bar per practice, one
    axes per currency.

    Args:
        report: The report of :func:`~smilepass_core.reports.aged_receivables`.
        title: The figure's title; by default the practices and the report's instant.

    Returns:
        A figure whose bars are ``report.by_practice[practice][bucket]`` (0 where absent).

    Raises:
        MissingExtra: matplotlib is not installed (the ``[plot]`` extra).
    """
    practices = list(report.by_practice)
    when = format_instant(report.at, report.shared_timezone)
    heading = title or f"Aged receivables: {_practices(practices)}, at {when}"
    if not report.rows:
        return _no_data(heading, "nothing due is unpaid")
    currencies = sorted(report.totals)
    fig = _new_figure(9, 1 + 3.2 * len(currencies))
    fig.suptitle(heading)
    for i, currency in enumerate(currencies):
        ax = fig.add_subplot(len(currencies), 1, i + 1)
        groups = [
            (
                f"Practice {practice}",
                [_bucket_amount(buckets, label, currency) for label in report.labels],
            )
            for practice, buckets in report.by_practice.items()
            if any(m.currency == currency for m in buckets.values())
        ]
        _grouped_bars(ax, report.labels, groups)
        ax.set_title(f"{currency}: total {report.totals[currency]}")
        ax.set_ylabel(f"Unpaid ({currency})")
        ax.set_xlabel("Days past due")
    return fig


def _bucket_amount(buckets: Mapping[str, Money], label: str, currency: str) -> float:
    money = buckets.get(label)
    return 0.0 if money is None or money.currency != currency else money.to_float()


def _conversion_axes(
    ax: Axes,
    labels: Sequence[str],
    referrals: Sequence[int],
    conversions: Sequence[int],
    rates: Sequence[Decimal | None] | None = None,
) -> None:
    """Referrals and conversions side by side per label; with ``rates`` (percent), each
    conversion bar is topped by its rate ("—" where undefined)."""
    bars = _grouped_bars(ax, labels, [("Referrals", referrals), ("Conversions", conversions)])
    if rates is not None:
        ax.bar_label(bars[-1], ["—" if r is None else f"{r} %" for r in rates], fontsize="x-small")
    ax.set_ylabel("Referrals")
    _integer_axis(ax)


def referral_chart(
    report: ReferralTracking,
    *,
    by: Literal["campaign", "user"] = "campaign",
    title: str | None = None,
) -> Figure:
    """Conversion per campaign (or per staff user): referrals and conversions side by side,
    the conversion rate on top; with the report's ``revenue_range``, the revenue from
    converted members below, one axes per currency.

    Args:
        report: The report of :func:`~smilepass_core.reports.referral_tracking`.
        by: ``"campaign"`` for ``report.by_campaign``, ``"user"`` for ``report.by_user``.
        title: The figure's title; by default what is charted and the practices.

    Returns:
        A figure whose bars are the summaries' ``referrals`` and ``conversions``.

    Raises:
        InvalidValue: ``by`` is neither ``"campaign"`` nor ``"user"``.
        MissingExtra: matplotlib is not installed (the ``[plot]`` extra).
    """
    if by not in ("campaign", "user"):
        raise InvalidValue("by", by, "must be 'campaign' or 'user'")
    summaries = report.by_campaign if by == "campaign" else report.by_user
    practices = _practices([r.practice for r in report.rows])
    heading = title or "".join(
        (
            f"Referral conversion per {'campaign' if by == 'campaign' else 'staff user'}",
            f": {practices}" if practices else "",
            "" if report.revenue_range is None else f"\nrevenue over {report.revenue_range}",
        )
    )
    if not summaries:
        return _no_data(heading, "no referrals")
    several = len({s.currency for s in summaries}) > 1
    labels = [f"{s.name} ({s.currency})" if several else s.name for s in summaries]
    revenue = [
        (label, s.revenue)
        for label, s in zip(labels, summaries, strict=True)
        if s.revenue is not None
    ]
    rows = 1 + len({m.currency for _, m in revenue})
    fig = _new_figure(9, 1 + 3.2 * rows)
    fig.suptitle(heading)
    ax = fig.add_subplot(rows, 1, 1)
    _conversion_axes(
        ax,
        labels,
        [s.referrals for s in summaries],
        [s.conversions for s in summaries],
        [s.conversion_rate for s in summaries],
    )
    ax.set_title("Referrals and conversions (conversion rate on top)")
    _money_axes(fig, 1, rows, revenue, "Revenue from converted members")
    return fig


def staff_chart(report: StaffAttribution, *, title: str | None = None) -> Figure:
    """Per-staff attribution: per staff user, the referrals started in the range and those
    converted in it (no rate: a conversion may come from an earlier referral), then the
    revenue collected from the members attributed to them, one axes per currency.

    Args:
        report: The report of :func:`~smilepass_core.reports.staff_attribution`.
        title: The figure's title; by default the practices and the report's range.

    Returns:
        A figure whose bars are the rows' ``referrals``, ``conversions`` and ``revenue``.

    Raises:
        MissingExtra: matplotlib is not installed (the ``[plot]`` extra).
    """
    practices = [r.practice for r in report.rows]
    where = f": {_practices(practices)}" if practices else ""
    heading = title or f"Per-staff attribution{where}\n{report.date_range}"
    if not report.rows:
        return _no_data(heading, "no staff users")
    several = len(set(practices)) > 1
    labels = [f"{r.name} ({r.practice})" if several else r.name for r in report.rows]
    rows = 1 + len({r.currency for r in report.rows})
    fig = _new_figure(9, 1 + 3.2 * rows)
    fig.suptitle(heading)
    ax = fig.add_subplot(rows, 1, 1)
    _conversion_axes(
        ax, labels, [r.referrals for r in report.rows], [r.conversions for r in report.rows]
    )
    ax.set_title("Referrals started in the range, and referrals converted in it")
    revenue = [(label, r.revenue) for label, r in zip(labels, report.rows, strict=True)]
    _money_axes(fig, 1, rows, revenue, "Revenue collected")
    return fig
