"""From the ledger and the schedules: the accounting export and the instalment forecast."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import ClassVar

import attrs

from smilepass_core.domain import PaymentKind, PaymentOutcome, PaymentPlanStatus
from smilepass_core.money import Money, per_currency
from smilepass_core.periods import DateRange, Unit, as_instant, zone
from smilepass_core.queries import MemberQuery, Order, PaymentPlanQuery, PaymentQuery
from smilepass_core.reports._table import Report, Table, as_it_stood, practice_ids, zones_of
from smilepass_core.repositories import Store

__all__ = [
    "AccountingExport",
    "ExportRow",
    "ForecastRow",
    "InstalmentForecast",
    "accounting_export",
    "instalment_forecast",
]


@attrs.frozen
class ExportRow(Table):
    """One collected payment or refund, as an accountant imports it.

    ``amount`` is signed: positive for a charge, negative for a refund.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "date",
        "time",
        "practice",
        "payer",
        "source",
        "source_id",
        "kind",
        "amount",
        "currency",
        "payment_id",
    )

    date: date
    time: str
    practice: str
    payer: str
    source: str
    source_id: str
    kind: PaymentKind
    amount: Money
    currency: str
    payment_id: str


@attrs.frozen(repr=False)  # Report's short __repr__
class AccountingExport(Report):
    """Every succeeded charge and refund in a range, in time order; ``totals`` equal
    the dashboard's Total Revenue for the same range and practices."""

    ROW: ClassVar[type[Table]] = ExportRow

    rows: tuple[ExportRow, ...]
    date_range: DateRange
    totals: Mapping[str, Money]
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)


def accounting_export(
    store: Store,
    *,
    date_range: DateRange,
    now: datetime,
    practices: Iterable[str] | str | None = None,
) -> AccountingExport:
    """The collected payments and refunds of ``date_range`` cut at ``now`` (dates in
    each practice's time zone); failed attempts are not money and are left out."""
    ids = practice_ids(store, practices)
    cut = date_range.cut(as_instant(now, "now"))
    zones = {p: zone(store.practices.get(p).timezone) for p in ids}
    payers = {m.id: m.account_holder.name for m in store.members.find(MemberQuery(practices=ids))}
    payers |= {
        p.id: p.patient.name for p in store.payment_plans.find(PaymentPlanQuery(practices=ids))
    }
    ledger = store.payments.find(
        PaymentQuery(practices=ids, outcomes={PaymentOutcome.SUCCEEDED}, time_range=cut),
        order=Order(["at"]),
    )
    rows = []
    for p in ledger:
        local = p.at.astimezone(zones[p.practice_id])
        rows.append(
            ExportRow(
                date=local.date(),
                time=local.strftime("%H:%M:%S%z"),
                practice=p.practice_id,
                payer=payers.get(p.source[1], ""),
                source=p.source[0],
                source_id=p.source[1],
                kind=p.kind,
                amount=p.signed,
                currency=p.amount.currency,
                payment_id=p.id,
            )
        )
    return AccountingExport(
        rows=tuple(rows),
        date_range=cut,
        totals=per_currency(r.amount for r in rows),
        timezones=zones_of(store, ids),
    )


@attrs.frozen
class ForecastRow(Table):
    """What falls due in one future bucket."""

    COLUMNS: ClassVar[tuple[str, ...]] = ("practice", "bucket", "instalments", "amount", "currency")

    practice: str
    bucket: date
    instalments: int
    amount: Money
    currency: str


@attrs.frozen(repr=False)  # Report's short __repr__
class InstalmentForecast(Report):
    """Scheduled instalments of Active plans, per practice and bucket."""

    ROW: ClassVar[type[Table]] = ForecastRow

    rows: tuple[ForecastRow, ...]
    date_range: DateRange
    totals: Mapping[str, Money]
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)
    as_of: datetime | None = attrs.field(default=None, kw_only=True)


def instalment_forecast(
    store: Store,
    *,
    date_range: DateRange,
    unit: Unit = Unit.MONTH,
    practices: Iterable[str] | str | None = None,
    as_of: datetime | None = None,
) -> InstalmentForecast:
    """The unpaid instalments of Active plans whose due day falls in each ``unit`` bucket
    of ``date_range`` (buckets by the range's time zone, due days as local dates); with
    ``as_of``, the plans Active then and the instalments unpaid then."""
    ids = practice_ids(store, practices)
    at = None if as_of is None else as_instant(as_of, "as_of")
    tz = zone(date_range.timezone)
    buckets = date_range.buckets(unit)
    firsts = [b.start.astimezone(tz).date() for b in buckets]
    last = (date_range.end.astimezone(tz)).date()
    rows = []
    for practice_id in ids:
        currency = store.practices.get(practice_id).currency
        counts = [0] * len(buckets)
        sums = [Money.zero(currency)] * len(buckets)
        if at is None:
            active = store.payment_plans.find(
                PaymentPlanQuery(practices=(practice_id,), statuses={PaymentPlanStatus.ACTIVE})
            )
        else:
            plans = store.payment_plans.find(PaymentPlanQuery(practices=(practice_id,)))
            active = as_it_stood(plans, at, {PaymentPlanStatus.ACTIVE})
        for plan in active:
            for i in plan.schedule[plan.paid_count :]:
                if not firsts or i.due_date < firsts[0] or i.due_date >= last:
                    continue
                k = max(j for j, f in enumerate(firsts) if f <= i.due_date)
                counts[k] += 1
                sums[k] = sums[k] + i.amount
        rows += [
            ForecastRow(practice_id, firsts[k], counts[k], sums[k], currency)
            for k in range(len(buckets))
        ]
    return InstalmentForecast(
        rows=tuple(rows),
        date_range=date_range,
        totals=per_currency(r.amount for r in rows),
        timezones=zones_of(store, ids),
        as_of=at,
    )
