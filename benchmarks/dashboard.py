"""Dashboard benchmark: the indexed InMemoryStore against a naive rescan peer.

Builds a synthetic, deterministic store (``random.Random(seed)``) of N members with
12 ledger entries each, then prints, per size:

- the time to build the domain objects and the time to load them into
  :class:`~smilepass_core.InMemoryStore` (``from_objects``), measured separately;
- the first (cold) dashboard and the median / p90 of 20 refreshes over different
  date ranges (presets at several ``now``s and custom ranges of 1 to 365 days);
- the naive peer: the same Members / Retention / Revenue / New Members (and
  Committed Payments, latest feed) figures computed by scanning every member,
  payment and payment plan in Python for each range, and the ratio naive/indexed;
- peak traced memory of the load (``tracemalloc``) and the process's max RSS.

For every range the naive peer ran on, the indexed figures must EQUAL the naive
ones; any difference is printed and the script exits with status 1.

This is a script, not a timed test::

    python benchmarks/dashboard.py [--members 10000 100000] [--seed N]
                                   [--skip-naive-above N] [--naive-sample K]
                                   [--practices N] [--profile] [--in-process]

Each size runs in a fresh process (so max RSS is that size's), unless ``--in-process``.
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import concurrent.futures
import cProfile
import gc
import io
import itertools
import math
import multiprocessing
import os
import pstats
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from smilepass_core import InMemoryStore
from smilepass_core.domain import (
    BillingCycle,
    Member,
    MembershipPlan,
    MembershipStatus,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentType,
    Practice,
)
from smilepass_core.kpi import Dashboard, dashboard
from smilepass_core.money import ROUNDING, Money
from smilepass_core.periods import DateRange, local_instant, local_midnight, zone

#: The fixed "now" everything is generated before: 25 Nov 2026, 16:00 in Sydney.
NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
#: Members are enrolled over the two years before NOW.
WINDOW_SECONDS = 730 * 86_400
SYDNEY = "Australia/Sydney"
PRACTICES = (
    ("p-syd", "Harbour Dental", SYDNEY, "AUD"),
    ("p-nyc", "Hudson Smiles", "America/New_York", "USD"),
)
#: The zones (and currencies) the practices after the first two cycle through: both
#: hemispheres' DST, none, and a half-hour offset.
MORE_ZONES = (
    (SYDNEY, "AUD"),
    ("America/New_York", "USD"),
    ("Europe/London", "GBP"),
    ("Australia/Perth", "AUD"),
    ("Australia/Adelaide", "AUD"),
    ("America/Los_Angeles", "USD"),
    ("Pacific/Auckland", "NZD"),
)


def practice_rows(n: int) -> list[tuple[str, str, str, str]]:
    """``n`` practices: the two above, then ``p-002``... cycling through ``MORE_ZONES``."""
    rows = list(PRACTICES[:n])
    for i in range(len(rows), n):
        timezone, currency = MORE_ZONES[i % len(MORE_ZONES)]
        rows.append((f"p-{i:03d}", f"Practice {i}", timezone, currency))
    return rows


PRICE_MINOR = 3_900
ENTRIES_PER_MEMBER = 12
PAYMENT_PLANS = 300
DEFAULT_SEED = 20261125
_ACTIVE = MembershipStatus.ACTIVE
_CHARGE, _REFUND = PaymentKind.CHARGE, PaymentKind.REFUND
_OK, _FAILED = PaymentOutcome.SUCCEEDED, PaymentOutcome.FAILED
_PERCENT = Decimal("0.01")


# -- synthetic data ----------------------------------------------------------------------


def _add_months(at: datetime, k: int) -> datetime:
    """``at`` moved ``k`` calendar months from the anchor (UTC wall clock, day clamped)."""
    month0 = at.month - 1 + k
    year, month = at.year + month0 // 12, month0 % 12 + 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))


def _local_day(at: datetime, timezone: str) -> date:
    return at.astimezone(zone(timezone)).date()


def _midnight_on_or_before(at: datetime, timezone: str) -> datetime:
    return local_midnight(_local_day(at, timezone), timezone)


def _midnight_on_or_after(at: datetime, timezone: str) -> datetime:
    midnight = _midnight_on_or_before(at, timezone)
    if midnight == at:
        return at
    return local_midnight(_local_day(at, timezone) + timedelta(days=1), timezone)


def _between(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A random instant strictly inside ``(start, end)`` (whole seconds from ``start``)."""
    seconds = int((end - start).total_seconds())
    return start + timedelta(seconds=rng.randrange(1, max(2, seconds)))


@dataclass
class Dataset:
    practices: list[Practice]
    plans: list[MembershipPlan]
    members: list[Member]
    payment_plans: list[PaymentPlan]
    payments: list[Payment]

    def objects(self) -> list[object]:
        return [
            *self.practices,
            *self.plans,
            *self.members,
            *self.payment_plans,
            *self.payments,
        ]


def _member(
    rng: random.Random, i: int, enrolled: datetime, practice: Practice, plan: MembershipPlan
) -> tuple[Member, list[Payment]]:
    """One member: enrolled, activated, 12 monthly ledger entries, failures/recoveries,
    maybe a suspension, maybe a refund (the 12th entry), maybe a cancellation."""
    tz, price = practice.timezone, plan.price
    t0 = enrolled
    if rng.random() < 0.03:  # enrolled exactly at a local midnight
        t0 = _midnight_on_or_before(t0, tz)
    member_id = f"m{i:06d}"
    member = Member.enrol(
        id=member_id,
        practice_id=practice.id,
        plan_id=plan.id,
        account_holder=Patient(f"pat{i:06d}", f"Patient {i}"),
        start_date=_local_day(t0, tz),
        at=t0,
    )
    roll = rng.random()
    if roll < 0.4:  # activated at the enrolment instant
        activated = t0
    elif roll < 0.45:  # activated exactly at the next local midnight
        activated = _midnight_on_or_after(t0 + timedelta(seconds=1), tz)
    else:
        activated = t0 + timedelta(seconds=rng.randrange(60, 3 * 86_400))
    member = member.activate(at=activated)
    status = _ACTIVE

    refund = rng.random() < 0.03
    n_charges = ENTRIES_PER_MEMBER - 1 if refund else ENTRIES_PER_MEMBER
    due = [_add_months(activated, k) for k in range(n_charges)]
    suspend_gap = rng.randrange(1, n_charges - 1) if rng.random() < 0.04 else None
    resume_at = None
    payments: list[Payment] = []

    def pay(k: int, outcome: PaymentOutcome) -> None:
        payments.append(
            Payment(f"{member_id}-{k:02d}", practice.id, price, _CHARGE, outcome, due[k], member_id)
        )

    pay(0, _OK)  # the first payment collected is what activated the member
    for k in range(1, n_charges):
        if suspend_gap == k - 1:
            member = member.suspend(at=_between(rng, due[k - 1], due[k]))
            status = MembershipStatus.SUSPENDED
            resume_at = k + rng.choice((0, 1, 2, 99))  # 99: never resumed
        if status is MembershipStatus.SUSPENDED:
            if k == resume_at:
                member = member.activate(at=due[k], reason="resumed")
                status = _ACTIVE
                pay(k, _OK)
            else:
                pay(k, _FAILED)  # not collected while paused
        elif rng.random() < 0.06:
            pay(k, _FAILED)
            if status is _ACTIVE and rng.random() < 0.7:
                member = member.fail(at=due[k])
                status = MembershipStatus.FAILED
        else:
            pay(k, _OK)
            if status is MembershipStatus.FAILED:
                member = member.activate(at=due[k], reason="charge recovered")
                status = _ACTIVE

    if refund:
        r = rng.randrange(n_charges)
        end = due[r + 1] if r + 1 < n_charges else due[r] + timedelta(days=20)
        at = _between(rng, due[r], end)
        collected = sum(p.amount.minor for p in payments[: r + 1] if p.succeeded)
        if collected == 0:
            amount, outcome = price, _FAILED  # a failed refund attempt is always allowed
        else:
            wanted = rng.choice((collected, PRICE_MINOR, rng.randrange(1, PRICE_MINOR + 1)))
            amount = Money.from_minor(min(wanted, collected), price.currency)
            outcome = _FAILED if rng.random() < 0.1 else _OK
        payments.append(
            Payment(
                f"{member_id}-{n_charges:02d}", practice.id, amount, _REFUND, outcome, at, member_id
            )
        )

    if rng.random() < 0.18:
        last = max(member.history[-1].at, max(p.at for p in payments))
        cancel = last + timedelta(seconds=rng.randrange(1, 60 * 86_400))
        if rng.random() < 0.2:
            cancel = _midnight_on_or_after(cancel, tz)
        member = member.cancel(at=cancel)
    return member, payments


def _payment_plan(
    rng: random.Random, j: int, practice: Practice, member_id: str | None = None
) -> tuple[PaymentPlan, list[Payment]]:
    """An Instant, Plan or Hold payment plan offered in the window, mostly committed, held
    by ``member_id`` when given (its ledger entries are the plan's, not the member's)."""
    tz, currency = practice.timezone, practice.currency
    offered = NOW - timedelta(seconds=rng.randrange(1, WINDOW_SECONDS))
    if rng.random() < 0.05:
        offered = _midnight_on_or_before(offered, tz)
    plan_id = f"pp{j:04d}"
    patient = Patient(f"ppat{j:04d}", f"Plan patient {j}")
    total = Money.from_minor(rng.randrange(20_000, 600_000), currency)
    commit = offered + timedelta(seconds=rng.randrange(0, 5 * 86_400))
    if rng.random() < 0.1:
        commit = _midnight_on_or_after(commit, tz)
    payments: list[Payment] = []

    def ledger(k: int, amount: Money, outcome: PaymentOutcome, at: datetime) -> str:
        pid = f"{plan_id}-{k:02d}"
        payments.append(Payment(pid, practice.id, amount, _CHARGE, outcome, at, None, plan_id))
        return pid

    roll = rng.random()
    kind = PaymentType.INSTANT if roll < 0.3 else PaymentType.HOLD if roll < 0.5 else None
    n = 1 if kind else rng.randrange(3, 13)
    plan = PaymentPlan.offer(
        id=plan_id,
        practice_id=practice.id,
        patient=patient,
        total=total,
        payment_type=kind or PaymentType.PLAN,
        first_due=_local_day(commit, tz),
        at=offered,
        instalments=n,
        cycle=BillingCycle.MONTHLY,
        member_id=member_id,
    )
    if rng.random() < 0.1:  # never committed: still Pending, or cancelled
        if rng.random() < 0.5:
            plan = plan.cancel(at=_between(rng, offered, offered + timedelta(days=30)))
        return plan, payments
    if kind is PaymentType.INSTANT:
        pid = ledger(0, total, _OK, commit)
        return plan.record_payment(at=commit, payment_id=pid), payments
    plan = plan.activate(at=commit)
    if kind is PaymentType.HOLD:
        return plan, payments
    last = commit
    for k, instalment in enumerate(plan.schedule):
        at = max(last, local_midnight(instalment.due_date, tz) + timedelta(hours=10))
        if at >= NOW:
            break
        if rng.random() < 0.08:
            pid = ledger(2 * k + 1, instalment.amount, _FAILED, at)
            plan = plan.record_failure(at=at, payment_id=pid)
            at += timedelta(days=3)
            if at >= NOW:
                break
        pid = ledger(2 * k, instalment.amount, _OK, at)
        plan = plan.record_payment(at=at, payment_id=pid)
        last = at
    return plan, payments


def _holder(j: int, members: int) -> str | None:
    """The member holding payment plan ``j``: member ``j`` for every third plan."""
    return f"m{j:06d}" if j % 3 == 0 and j < members else None


def build_dataset(members: int, seed: int, n_practices: int = 1) -> Dataset:
    """Deterministic objects for ``members`` members split over ``n_practices`` practices."""
    rng = random.Random(seed)
    practices = [Practice(*row) for row in practice_rows(n_practices)]
    plans = [
        MembershipPlan(
            f"plan-{p.id}",
            p.id,
            "Smile Club",
            Money.from_minor(PRICE_MINOR, p.currency),
            BillingCycle.MONTHLY,
        )
        for p in practices
    ]
    # Ids follow enrolment order, as a host reading its members by id would load them.
    enrolled = sorted(
        NOW - timedelta(seconds=rng.randrange(1, WINDOW_SECONDS)) for _ in range(members)
    )
    built = [
        _member(rng, i, t0, practices[i % n_practices], plans[i % n_practices])
        for i, t0 in enumerate(enrolled)
    ]
    member_list = [m for m, _ in built]
    payments = [p for _, ps in built for p in ps]
    # Every third plan is held by member j, of the same practice (members cycle through
    # the practices as plans do): the Overdue list reads their instalments.
    plan_rows = [
        _payment_plan(rng, j, practices[j % n_practices], _holder(j, members))
        for j in range(PAYMENT_PLANS)
    ]
    payment_plans = [plan for plan, _ in plan_rows]
    payments += [p for _, ps in plan_rows for p in ps]
    return Dataset(practices, plans, member_list, payment_plans, payments)


# -- the 20 date ranges ------------------------------------------------------------------


def _syd(*wall: int, fold: int | None = None) -> datetime:
    return local_instant(datetime(*wall), SYDNEY, fold=fold)  # type: ignore[arg-type]


N0 = NOW  # 2026-11-25 16:00 Sydney
N1 = _syd(2026, 10, 1)  # exactly a local midnight, first day of a month and a quarter
N2 = _syd(2026, 4, 5, 2, 30, fold=1)  # the second 02:30 of the day DST ends
N3 = _syd(2026, 3, 1)  # a month's first midnight
N4 = _syd(2025, 12, 31, 12)
N5 = _syd(2026, 7, 15, 9, 30)


@dataclass(frozen=True)
class Case:
    """A refresh: a preset (resolved per practice) or custom days (in Sydney), at ``now``."""

    label: str
    now: datetime
    preset: str | None = None
    days: tuple[date, date] | None = None

    def spec(self) -> str | DateRange:
        if self.preset is not None:
            return self.preset
        assert self.days is not None
        return DateRange.custom(*self.days, timezone=SYDNEY)

    def resolve(self, practice: Practice) -> DateRange:
        spec = self.spec()
        if isinstance(spec, DateRange):
            return spec
        return DateRange.preset(spec, now=self.now, timezone=practice.timezone)


def _custom(first: date, last: date, now: datetime, note: str = "") -> Case:
    days = (last - first).days + 1
    label = f"custom {days}d {first}..{last}" + (f" ({note})" if note else "")
    return Case(label, now, days=(first, last))


CASES: tuple[Case, ...] = (
    Case("last_7_days @N0", N0, "last_7_days"),
    Case("last_30_days @N0", N0, "last_30_days"),
    Case("this_month @N0", N0, "this_month"),
    Case("last_month @N0", N0, "last_month"),
    Case("this_quarter @N0", N0, "this_quarter"),
    Case("year_to_date @N0", N0, "year_to_date"),
    Case("this_month @N1 (empty: now=its first midnight)", N1, "this_month"),
    Case("last_month @N1", N1, "last_month"),
    Case("last_7_days @N2 (DST ends)", N2, "last_7_days"),
    Case("this_quarter @N2", N2, "this_quarter"),
    Case("year_to_date @N3", N3, "year_to_date"),
    Case("year_to_date @N4", N4, "year_to_date"),
    Case("last_30_days @N5", N5, "last_30_days"),
    _custom(date(2026, 8, 10), date(2026, 8, 10), N5, "after now"),
    _custom(date(2026, 3, 25), date(2026, 4, 7), N0, "DST ends"),
    _custom(date(2026, 9, 20), date(2026, 11, 3), N0),
    _custom(date(2026, 6, 1), date(2026, 8, 29), N5, "cut at now"),
    _custom(date(2025, 10, 1), date(2026, 3, 29), N0, "DST starts"),
    _custom(date(2026, 4, 1), date(2026, 10, 17), N0),
    _custom(date(2025, 11, 25), date(2026, 11, 24), N0),
)
NOWS = {"N0": N0, "N1": N1, "N2": N2, "N3": N3, "N4": N4, "N5": N5}


# -- the figures, from the dashboard and from the naive rescan ---------------------------

Figures = dict[str, Any]


def _percent(numerator: int, denominator: int) -> Decimal | None:
    if denominator == 0:
        return None
    return (Decimal(100 * numerator) / Decimal(denominator)).quantize(_PERCENT, rounding=ROUNDING)


def indexed_figures(d: Dashboard) -> Figures:
    """The comparable figures of a computed dashboard."""

    def series(points: Iterable[Any]) -> tuple[tuple[Any, ...], ...]:
        return tuple((p.day, p.start, p.end, p.value) for p in points)

    return {
        "members (value, previous, this month)": (
            d.members.value,
            d.members.previous,
            d.members.this_month_delta,
        ),
        "retention parts (now, previous)": tuple(
            (r.numerator, r.denominator) for r in d.retention_parts
        ),
        "retention %": (d.retention.value, d.retention.previous),
        "period retention parts": tuple(
            (r.numerator, r.denominator) for r in d.period_retention_parts
        ),
        "period retention %": (d.period_retention.value, d.period_retention.previous),
        "revenue (value, previous, this month)": {
            c: (k.value, k.previous, k.this_month_delta) for c, k in d.revenue.items()
        },
        "new members series": series(d.new_members),
        "committed payments series": {c: series(s) for c, s in d.committed_payments.items()},
        "latest new members": tuple(m.id for m in d.latest_new_members),
    }


@dataclass
class _Bucket:
    start: datetime
    end: datetime
    value: Any


@dataclass
class _Naive:
    active: list[int] = field(default_factory=lambda: [0, 0, 0])  # end, month start, prev end
    ever: list[int] = field(default_factory=lambda: [0, 0])  # before end, before prev end
    kept: list[int] = field(default_factory=lambda: [0, 0])  # range, comparison
    active_start: list[int] = field(default_factory=lambda: [0, 0])  # range, comparison
    revenue: dict[str, list[Money]] = field(default_factory=dict)
    new: dict[date, _Bucket] = field(default_factory=dict)
    committed: dict[str, dict[date, _Bucket]] = field(default_factory=dict)


def _add_bucket(series: dict[date, _Bucket], day: date, start: datetime, end: datetime, v: Any):
    old = series.get(day)
    if old is None:
        series[day] = _Bucket(start, end, v)
    else:
        series[day] = _Bucket(min(old.start, start), max(old.end, end), old.value + v)


def naive_figures(data: Dataset, case: Case, latest: int = 5) -> Figures:
    """The same figures by scanning every member, payment and payment plan in Python.

    Written from the definitions in ``docs/metrics.md``; only the period arithmetic
    (preset resolution, ``comparison``, bucket edges) is the library's own.
    """
    now = case.now
    acc = _Naive()
    feed: list[Member] = []
    # The series run on one clock: the first practice's units, from the earliest start
    # to the latest effective end; each practice counts inside its own range only.
    ranges = [case.resolve(practice) for practice in data.practices]
    first_range = ranges[0]
    clock_start = min(r.start for r in ranges)
    clock_end = max(clock_start, *(min(r.end, now) for r in ranges))
    edges = DateRange(clock_start, clock_end, first_range.timezone).bucket_edges(
        first_range.default_bucket_unit()
    )
    new = [0] * (len(edges) - 1)
    committed_by: dict[str, list[Money]] = {}
    for practice, r in zip(data.practices, ranges, strict=True):
        pid, currency = practice.id, practice.currency
        local = zone(r.timezone)  # a DateRange is used as given, in its own zone
        start = r.start
        end = min(r.end, now)  # the effective end E (before start if R lies after now)
        month_first = (end - timedelta(microseconds=1)).astimezone(local).date().replace(day=1)
        m_start = local_midnight(month_first, r.timezone)  # this month: [m_start, E)
        comparison = r.comparison(now)
        c_start, c_end = comparison.start, comparison.end
        started = end >= start  # period retention is undefined (0/0) before the range starts
        for m in data.members:
            if m.practice_id != pid:
                continue
            at_end = m.status_before(end) is _ACTIVE
            at_start = m.status_before(start) is _ACTIVE
            at_c_end = m.status_before(c_end) is _ACTIVE
            at_c_start = m.status_before(c_start) is _ACTIVE
            acc.active[0] += at_end
            acc.active[1] += m.status_before(m_start) is _ACTIVE
            acc.active[2] += at_c_end
            acc.active_start[0] += started and at_start
            acc.active_start[1] += at_c_start
            acc.kept[0] += started and at_start and at_end
            acc.kept[1] += at_c_start and at_c_end
            first = m.first_activated_at
            if first is not None:
                acc.ever[0] += first < end
                acc.ever[1] += first < c_end
                if start <= first < end:
                    new[bisect.bisect_right(edges, first) - 1] += 1
                if first < end:
                    feed.append(m)
        zero = Money.zero(currency)
        revenue = acc.revenue.setdefault(currency, [zero, zero, zero])
        for p in data.payments:
            if p.practice_id != pid:
                continue
            at = p.at
            if start <= at < end:
                revenue[0] += p.signed
            if c_start <= at < c_end:
                revenue[1] += p.signed
            if m_start <= at < end:
                revenue[2] += p.signed
        committed = committed_by.setdefault(currency, [zero] * (len(edges) - 1))
        for plan in data.payment_plans:
            if plan.practice_id != pid:
                continue
            at = plan.committed_at
            if at is not None and start <= at < end:
                committed[bisect.bisect_right(edges, at) - 1] += plan.total
    shown = zone(first_range.timezone)
    for currency in committed_by:  # a series per currency, even with no bucket
        acc.committed.setdefault(currency, {})
    for k, (a, b) in enumerate(itertools.pairwise(edges)):
        day = a.astimezone(shown).date()
        _add_bucket(acc.new, day, a, b, new[k])
        for currency, committed in committed_by.items():
            _add_bucket(acc.committed.setdefault(currency, {}), day, a, b, committed[k])

    # The feed: per practice, first activated strictly before its own E; merged by
    # instant, newest first, ties by id.
    feed.sort(key=lambda m: m.id)
    feed.sort(key=lambda m: m.first_activated_at, reverse=True)  # stable: ties stay by id

    def series(buckets: dict[date, _Bucket]) -> tuple[tuple[Any, ...], ...]:
        return tuple(
            (d, buckets[d].start, buckets[d].end, buckets[d].value) for d in sorted(buckets)
        )

    retention = ((acc.active[0], acc.ever[0]), (acc.active[2], acc.ever[1]))
    period = ((acc.kept[0], acc.active_start[0]), (acc.kept[1], acc.active_start[1]))
    return {
        "members (value, previous, this month)": (
            acc.active[0],
            acc.active[2],
            acc.active[0] - acc.active[1],
        ),
        "retention parts (now, previous)": retention,
        "retention %": tuple(_percent(*part) for part in retention),
        "period retention parts": period,
        "period retention %": tuple(_percent(*part) for part in period),
        "revenue (value, previous, this month)": {c: tuple(v) for c, v in acc.revenue.items()},
        "new members series": series(acc.new),
        "committed payments series": {c: series(s) for c, s in acc.committed.items()},
        "latest new members": tuple(m.id for m in feed[:latest]),
    }


def differences(indexed: Figures, naive: Figures) -> list[str]:
    """Human-readable differences (empty when every figure is equal)."""
    out = []
    for key in naive.keys() | indexed.keys():
        a, b = indexed.get(key), naive.get(key)
        if a != b:
            out.append(f"{key}: indexed={_short(a)} naive={_short(b)}")
    return sorted(out)


def _short(value: Any, limit: int = 400) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# -- measuring ---------------------------------------------------------------------------


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def _p90(values: Sequence[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _naive_indexes(n_members: int, skip_above: int | None, sample: int) -> list[int]:
    """Which of the 20 ranges the naive peer runs on: all, or ``sample`` spread evenly."""
    if skip_above is None or n_members <= skip_above:
        return list(range(len(CASES)))
    if sample <= 0:
        return []
    if sample == 1:
        return [0]
    last = len(CASES) - 1
    return sorted({round(k * last / (sample - 1)) for k in range(min(sample, len(CASES)))})


def run_size(
    n_members: int,
    seed: int,
    n_practices: int,
    skip_above: int | None,
    sample: int,
    profile: bool,
) -> dict[str, Any]:
    """Build, load and benchmark one size; returns its summary and its per-range report."""
    gc.collect()
    build_s, data = _timed(lambda: build_dataset(n_members, seed, n_practices))
    objects = data.objects()
    result = _measure(data, objects, _naive_indexes(n_members, skip_above, sample), profile)
    result.update(
        members=n_members,
        payments=len(data.payments),
        payment_plans=len(data.payment_plans),
        build_s=build_s,
        max_rss_mib=_max_rss_mib(),  # before tracemalloc's own bookkeeping inflates it
    )
    # Peak memory of the load, traced in a second load once the measured store is gone.
    gc.collect()
    tracemalloc.start()
    traced_store = InMemoryStore.from_objects(objects)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced_store
    result.update(store_mib=current / 2**20, peak_mib=peak / 2**20)
    return result


def _measure(
    data: Dataset, objects: list[object], naive_at: list[int], profile: bool
) -> dict[str, Any]:
    """Load, first dashboard, the 20 refreshes, the naive peer, equality, optional profile."""
    load_s, store = _timed(lambda: InMemoryStore.from_objects(objects))
    ids = [p.id for p in data.practices]

    def refresh(case: Case) -> Dashboard:
        return dashboard(store, practices=ids, date_range=case.spec(), now=case.now)

    first_s, _ = _timed(lambda: refresh(CASES[0]))
    refreshes = [_timed(lambda c=c: refresh(c)) for c in CASES]
    indexed_s = [t for t, _ in refreshes]

    naive_s: dict[int, float] = {}
    mismatches: list[str] = []
    wrong: set[int] = set()
    for k in naive_at:
        t, expected = _timed(lambda k=k: naive_figures(data, CASES[k]))
        naive_s[k] = t
        for diff in differences(indexed_figures(refreshes[k][1]), expected):
            wrong.add(k)
            mismatches.append(f"[{k + 1}] {CASES[k].label}: {diff}")

    report = [
        f"\n== {len(data.members):,} members, {len(data.payments):,} payments, "
        f"{len(data.payment_plans)} payment plans, {len(data.practices)} practice(s) "
        f"(load average {os.getloadavg()[0]:.1f}) =="
    ]
    rows = []
    for k, case in enumerate(CASES):
        r = case.resolve(data.practices[0]).cut(case.now)
        naive = naive_s.get(k)
        rows.append(
            [
                str(k + 1),
                case.label,
                next(n for n, v in NOWS.items() if v == case.now),
                str(r.days),
                r.default_bucket_unit().value if r.days else "-",
                f"{indexed_s[k] * 1e3:.2f}",
                "-" if naive is None else f"{naive * 1e3:.0f}",
                "-" if naive is None else f"{naive / indexed_s[k]:.0f}x",
                "-" if naive is None else ("NO" if k in wrong else "yes"),
            ]
        )
    headers = [
        "#",
        "range",
        "now",
        "cut days",
        "bucket",
        "indexed ms",
        "naive ms",
        "ratio",
        "equal",
    ]
    report.append(_table(headers, rows, right={0, 3, 5, 6, 7}))

    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for case in CASES:
            refresh(case)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(15)
        report.append("\ncProfile of the 20 refreshes (sorted by cumulative time):")
        report.append(out.getvalue())

    naive_times = [naive_s[k] for k in naive_at]
    same_indexed = [indexed_s[k] for k in naive_at]
    return {
        "load_s": load_s,
        "first_ms": first_s * 1e3,
        "median_ms": statistics.median(indexed_s) * 1e3,
        "p90_ms": _p90(indexed_s) * 1e3,
        "naive_n": len(naive_at),
        "naive_median_ms": statistics.median(naive_times) * 1e3 if naive_times else None,
        "ratio": (
            statistics.median(naive_times) / statistics.median(same_indexed)
            if naive_times
            else None
        ),
        "mismatches": mismatches,
        "report": "\n".join(report),
    }


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _summary(results: Sequence[dict[str, Any]]) -> str:
    headers = [
        "members",
        "payments",
        "build s",
        "load s",
        "first ms",
        "refresh median ms",
        "refresh p90 ms",
        "naive median ms (ranges)",
        "naive/indexed",
        "load peak traced MiB",
        "store traced MiB",
        "max RSS MiB",
    ]
    rows = []
    for r in results:
        naive = (
            "skipped"
            if r["naive_median_ms"] is None
            else f"{r['naive_median_ms']:.0f} ({r['naive_n']})"
        )
        rows.append(
            [
                f"{r['members']:,}",
                f"{r['payments']:,}",
                f"{r['build_s']:.1f}",
                f"{r['load_s']:.2f}",
                f"{r['first_ms']:.1f}",
                f"{r['median_ms']:.2f}",
                f"{r['p90_ms']:.2f}",
                naive,
                "-" if r["ratio"] is None else f"{r['ratio']:.0f}x",
                f"{r['peak_mib']:.0f}",
                f"{r['store_mib']:.0f}",
                f"{r['max_rss_mib']:.0f}",
            ]
        )
    return _table(headers, rows, right=set(range(len(headers))))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--skip-naive-above",
        type=int,
        default=50_000,
        metavar="N",
        help="above N members run the naive peer on --naive-sample ranges only (default 50000)",
    )
    parser.add_argument(
        "--naive-sample",
        type=int,
        default=3,
        metavar="K",
        help="ranges the naive peer runs on above --skip-naive-above (0: none; default 3)",
    )
    parser.add_argument(
        "--practices", type=int, default=1, help="practices the members are split over"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the 20 refreshes")
    parser.add_argument("--in-process", action="store_true", help="no fresh process per size")
    args = parser.parse_args(argv)

    print(
        f"smilepass_core dashboard benchmark: Python {sys.version.split()[0]}, "
        f"{multiprocessing.cpu_count()} CPUs, {args.practices} practice(s), seed {args.seed}"
    )
    nows = ", ".join(f"{n}={v.astimezone(zone(SYDNEY)):%Y-%m-%d %H:%M %z}" for n, v in NOWS.items())
    print(f"now (Sydney): {nows}")
    results = []
    for n in args.members:
        job = (n, args.seed, args.practices, args.skip_naive_above, args.naive_sample, args.profile)
        if args.in_process:
            result = run_size(*job)
        else:
            spawn = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
                result = pool.submit(run_size, *job).result()
        print(result["report"], flush=True)
        results.append(result)

    print("\n== summary ==")
    print(_summary(results))
    print(
        "first: the first dashboard after the load (last_7_days at N0); refresh: the 20 ranges "
        "above, each once; naive/indexed: median naive / median indexed over the ranges the "
        "naive peer ran on; load peak traced: tracemalloc peak during a second from_objects; "
        "store traced: what it still holds after (the store's structures, objects excluded)."
    )
    mismatches = [m for r in results for m in r["mismatches"]]
    if mismatches:
        print(f"\nFAILED: {len(mismatches)} indexed figure(s) differ from the naive rescan:")
        for m in mismatches:
            print("  " + m)
        return 1
    checked = sum(r["naive_n"] for r in results)
    print(f"\nOK: indexed figures equal the naive rescan on all {checked} range(s) checked.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
