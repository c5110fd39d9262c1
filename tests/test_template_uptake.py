"""Template uptake (docs/reports.md): checked against a count written here on its own over
generated practices, a range split in two adds up, and bad input is refused."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smilepass_core import InMemoryStore, NotFound
from smilepass_core.money import Money
from smilepass_core.periods import DateRange
from smilepass_core.reports import template_uptake
from smilepass_core.testing import strategies as sps

DATASETS = settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
START = sps.DATASET_START


def _hour(hours: int) -> datetime:
    return START + timedelta(hours=hours)


@DATASETS
@given(
    dataset=sps.datasets(),
    a=st.integers(-200, 4000),
    b=st.integers(-200, 4000),
    c=st.integers(-200, 4000),
)
def test_the_rows_are_the_offers_counted_by_hand(
    dataset: sps.Dataset, a: int, b: int, c: int
) -> None:
    """Each template's offers, taken-up count and totals are those of the plans naming it
    created in [start, min(end, as_of)) and committed by as_of; every template has a row."""
    start, end = sorted((_hour(a), _hour(b)))
    as_of = _hour(c)
    store = InMemoryStore.from_objects(dataset.objects())
    report = template_uptake(store, date_range=DateRange(start, end, "UTC"), as_of=as_of)
    stop = max(start, min(end, as_of))
    offers = [p for p in dataset.payment_plans if start <= p.created_at < stop]
    taken = [p for p in offers if p.committed_at is not None and p.committed_at <= as_of]
    got = {(r.practice, r.template_id): r for r in report.rows}
    templates = {(t.practice_id, t.id): t for t in dataset.payment_plan_templates}
    bare = {(p.practice_id, "") for p in offers if p.template_id is None}
    assert set(got) == set(templates) | bare
    count = Counter((p.practice_id, p.template_id or "") for p in offers)
    took = Counter((p.practice_id, p.template_id or "") for p in taken)
    for key, row in got.items():
        assert (row.offers, row.taken_up) == (count[key], took[key])
        zero = Money.zero(row.currency)
        mine = [p.total for p in offers if (p.practice_id, p.template_id or "") == key]
        assert row.offered_total == sum(mine, zero)
        won = [p.total for p in taken if (p.practice_id, p.template_id or "") == key]
        assert row.taken_up_total == sum(won, zero)
        if key in templates:
            retired = templates[key].retired_at
            assert row.still_offered is (retired is None or as_of < retired)
        else:
            assert row.still_offered is None


@DATASETS
@given(dataset=sps.datasets(), a=st.integers(0, 3000), b=st.integers(0, 3000))
def test_a_range_split_in_two_adds_up(dataset: sps.Dataset, a: int, b: int) -> None:
    """Offers, taken-up counts and totals of [s, m) and [m, e) add up to those of [s, e)."""
    middle, end = sorted((_hour(a), _hour(b)))
    start = START - timedelta(days=400)
    as_of = START + timedelta(days=1000)
    store = InMemoryStore.from_objects(dataset.objects())

    def rows(s: datetime, e: datetime) -> dict[tuple[str, str], tuple[int, int, Money, Money]]:
        report = template_uptake(store, date_range=DateRange(s, e, "UTC"), as_of=as_of)
        return {
            (r.practice, r.template_id): (r.offers, r.taken_up, r.offered_total, r.taken_up_total)
            for r in report.rows
        }

    whole, first, second = rows(start, end), rows(start, middle), rows(middle, end)
    assert set(first) | set(second) == set(whole)
    for key, (offers, taken, offered, won) in whole.items():
        parts = [p[key] for p in (first, second) if key in p]
        assert offers == sum(p[0] for p in parts)
        assert taken == sum(p[1] for p in parts)
        assert offered == sum((p[2] for p in parts), Money.zero(offered.currency))
        assert won == sum((p[3] for p in parts), Money.zero(won.currency))


def test_an_unknown_practice_is_refused() -> None:
    """A practice the store does not hold raises NotFound naming it."""
    with pytest.raises(NotFound) as caught:
        template_uptake(
            InMemoryStore(),
            date_range=DateRange(START, START + timedelta(days=1), "UTC"),
            as_of=START,
            practices="nowhere",
        )
    assert caught.value.id == "nowhere"
