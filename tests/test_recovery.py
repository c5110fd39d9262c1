"""Recovered revenue: of the charges that failed in a period, what was collected since,
what is outstanding and what was written off; flows that tile."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smilepass_core import DateRange, InMemoryStore, InvalidValue, Money, Practice, dashboard
from smilepass_core.demo import DEMO_NOW, demo_store
from smilepass_core.periods import Preset
from smilepass_core.reports import recovered_revenue
from smilepass_core.testing import strategies as sps
from test_billing import SYD, _charge, _local, _member, _plan


def _store(*payments: object, cancel: datetime | None = None) -> InMemoryStore:
    member = _member(date(2026, 1, 28))
    if cancel is not None:
        member = member.cancel(at=cancel)
    return InMemoryStore.from_objects(
        [Practice("syd", "Harbour", SYD, "AUD"), _plan(), member, *payments]
    )


class TestExamples:
    def test_a_failure_recovered_later(self) -> None:
        """February's charge fails on 28 Feb and is collected on 3 March; March's fails on
        28 March and is still unpaid. Counted over March, only March's failed."""
        store = _store(
            _charge("c0", _local(date(2026, 1, 28), 10)),
            _charge("f1", _local(date(2026, 2, 28), 10), "failed"),
            _charge("c1", _local(date(2026, 3, 3), 10)),
            _charge("f2", _local(date(2026, 3, 28), 10), "failed"),
        )
        now = _local(date(2026, 4, 5))
        february = DateRange.custom(date(2026, 2, 1), date(2026, 2, 28), timezone=SYD)
        (row,) = recovered_revenue(store, now=now, date_range=february).rows
        assert (row.failed_charges, str(row.failed), str(row.recovered)) == (
            1,
            "AUD 30.00",
            "AUD 30.00",
        )
        assert str(row.recovery_rate) == "100.00"
        march = DateRange.custom(date(2026, 3, 1), date(2026, 3, 31), timezone=SYD)
        (row,) = recovered_revenue(store, now=now, date_range=march).rows
        assert (row.failed_charges, str(row.recovered), str(row.outstanding)) == (
            1,
            "AUD 0.00",
            "AUD 30.00",
        )
        assert row.written_off.is_zero()

    def test_a_cancelled_member_writes_off_what_is_outstanding(self) -> None:
        store = _store(
            _charge("c0", _local(date(2026, 1, 28), 10)),
            _charge("f1", _local(date(2026, 2, 28), 10), "failed"),
            cancel=_local(date(2026, 3, 10)),
        )
        february = DateRange.custom(date(2026, 2, 1), date(2026, 2, 28), timezone=SYD)
        (before,) = recovered_revenue(store, now=_local(date(2026, 3, 5)), date_range=february).rows
        assert (str(before.outstanding), str(before.written_off)) == ("AUD 30.00", "AUD 0.00")
        (after,) = recovered_revenue(store, now=_local(date(2026, 3, 20)), date_range=february).rows
        assert (str(after.outstanding), str(after.written_off)) == ("AUD 30.00", "AUD 30.00")

    def test_nothing_failed_has_no_rate(self) -> None:
        (row,) = recovered_revenue(_store(), now=_local(date(2026, 3, 1))).rows
        assert (row.failed_charges, row.recovery_rate) == (0, None)

    def test_the_demo_year(self) -> None:
        report = recovered_revenue(demo_store(), now=DEMO_NOW, date_range="year_to_date")
        assert [r.practice for r in report.rows] == ["nyc", "syd"]
        for row in report.rows:
            assert row.failed_charges > 0
            assert row.recovered + row.outstanding == row.failed
            assert Money.zero(row.currency) < row.written_off <= row.outstanding


class TestProperties:
    @settings(max_examples=20)
    @given(dataset=sps.datasets(), data=st.data())
    def test_a_period_split_in_two_adds_up(self, dataset: sps.Dataset, data: st.DataObject) -> None:
        """For a boundary inside a range: the two halves' failed, recovered and written
        off add up to the whole's; recovered + outstanding = failed."""
        store = InMemoryStore.from_objects(dataset.objects())
        a, b, c, now = sorted(data.draw(st.lists(sps.boundaries(dataset), min_size=4, max_size=4)))
        whole, first, second = (
            recovered_revenue(store, now=now, date_range=DateRange(x, y, "UTC"))
            for x, y in ((a, c), (a, b), (b, c))
        )
        for w, f, s in zip(whole.rows, first.rows, second.rows, strict=True):
            assert w.failed_charges == f.failed_charges + s.failed_charges
            for field in ("failed", "recovered", "outstanding", "written_off"):
                assert getattr(w, field) == getattr(f, field) + getattr(s, field)
            assert w.recovered + w.outstanding == w.failed
            assert not w.written_off.is_negative()
            assert w.written_off <= w.outstanding


class TestTheDashboard:
    """A dashboard says what of the failed charges in its range was recovered."""

    def test_each_practice_over_its_own_range(self) -> None:
        """Last month resolved in Sydney and in New York: each practice's row is the
        report over that practice's range, and the failed charges split into recovered
        and outstanding."""
        store = demo_store()
        board = dashboard(store, practices=("syd", "nyc"), date_range="last_month", now=DEMO_NOW)
        assert board.ranges["syd"] != board.ranges["nyc"]
        report = board.recovery(store)
        assert report.ranges == {p: board.ranges[p].cut(DEMO_NOW) for p in ("syd", "nyc")}
        alone = [
            recovered_revenue(store, now=DEMO_NOW, date_range=board.ranges[p], practices=p).rows
            for p in ("syd", "nyc")
        ]
        assert report.rows == alone[0] + alone[1]
        assert all(r.failed_charges > 0 for r in report.rows)
        assert all(r.recovered + r.outstanding == r.failed for r in report.rows)

    @settings(max_examples=20)
    @given(dataset=sps.datasets(), data=st.data())
    def test_the_same_as_the_report_per_practice(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        store = InMemoryStore.from_objects(dataset.objects())
        now = data.draw(sps.boundaries(dataset), label="now")
        preset = data.draw(st.sampled_from(list(Preset)), label="preset")
        ids = tuple(p.id for p in dataset.practices)
        board = dashboard(store, practices=ids, date_range=preset, now=now)
        expected = tuple(
            row
            for p in ids
            for row in recovered_revenue(store, now=now, date_range=preset, practices=p).rows
        )
        assert board.recovery(store).rows == expected

    def test_ranges_by_practice_must_name_each_one(self) -> None:
        store = demo_store()
        week = DateRange.last_days(7, now=DEMO_NOW, timezone="Australia/Sydney")
        with pytest.raises(InvalidValue, match="has no 'nyc'"):
            recovered_revenue(
                store, now=DEMO_NOW, date_range={"syd": week}, practices=("syd", "nyc")
            )
