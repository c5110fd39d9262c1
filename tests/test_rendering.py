"""Tests for smilepass_core.io.text: aligned tables, displayed figures, the dashboard text."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest

from smilepass_core import (
    BillingCycle,
    InMemoryStore,
    Member,
    MembershipPlan,
    Money,
    Patient,
    Practice,
)
from smilepass_core.io.text import format_table, render_dashboard, show
from smilepass_core.kpi import Goals, dashboard

SYDNEY = ZoneInfo("Australia/Sydney")
#: Monday 5 October 2026, 09:00 in Sydney.
NOW = datetime(2026, 10, 5, 9, 0, tzinfo=SYDNEY)


def _setup(practice_id: str, timezone: str) -> list[object]:
    """A practice in ``timezone`` (AUD) and its one membership plan."""
    return [
        Practice(practice_id, f"Practice {practice_id}", timezone, "AUD"),
        MembershipPlan(
            f"{practice_id}-plan",
            practice_id,
            "Essential",
            Money.of("30", "AUD"),
            BillingCycle.MONTHLY,
        ),
    ]


def _enrol(member_id: str, name: str, at: datetime) -> Member:
    """A Pending member of ``p1`` enrolled at ``at``."""
    return Member.enrol(
        id=member_id,
        practice_id="p1",
        plan_id="p1-plan",
        account_holder=Patient(f"pat-{member_id}", name),
        start_date=at.date(),
        at=at,
    )


class TestFormatTable:
    def test_aligns_columns(self) -> None:
        """Columns are padded to their widest cell; right-aligned ones pad on the left."""
        table = format_table(["Name", "N"], [["Ada", "1"], ["Bo", "12"]], right=[1])
        assert table.splitlines() == ["Name   N", "----  --", "Ada    1", "Bo    12"]

    def test_no_trailing_spaces_and_headers_only_without_rows(self) -> None:
        """A short cell in the last column leaves no trailing space; no rows, no body."""
        assert format_table(["N", "Name"], [["1", "Ada"], ["2", "Bo"]]) == (
            "N  Name\n-  ----\n1  Ada\n2  Bo"
        )
        assert format_table(["Name", "N"], []) == "Name  N\n----  -"

    @pytest.mark.parametrize("row", [["Ada"], ["Ada", "1", "extra"]], ids=["short", "long"])
    def test_a_row_of_another_length_is_refused(self, row: list[str]) -> None:
        """A row with fewer or more cells than there are headers raises ValueError (zip's)."""
        with pytest.raises(ValueError, match=r"^zip\(\) argument \d+ is (shorter|longer) than "):
            format_table(["Name", "N"], [["Bo", "2"], row])


class TestShow:
    @pytest.mark.parametrize(
        ("value", "percent", "signed", "expected"),
        [
            (None, False, False, "—"),
            (None, True, True, "—"),
            (Decimal("12.50"), True, False, "12.50 %"),
            (Decimal("-0.32"), True, False, "-0.32 %"),
            (Decimal("0.00"), True, True, "0.00 %"),
            (Decimal("0.5"), False, True, "+0.5"),
            (Decimal("-0.5"), False, True, "-0.5"),
            (Decimal("4.19"), True, True, "+4.19 %"),
            (Decimal("-8.33"), True, True, "-8.33 %"),
            (0, False, True, "0"),
            (1, False, True, "+1"),
            (-3, False, True, "-3"),
            (Money.of("0", "AUD"), False, True, "AUD 0.00"),
            (Money.of("17378.78", "AUD"), False, True, "+AUD 17,378.78"),
            (Money.of("-258.89", "AUD"), False, True, "-AUD 258.89"),
            (Money.of("-258.89", "AUD"), False, False, "AUD -258.89"),
        ],
    )
    def test_figures(self, value: object, percent: bool, signed: bool, expected: str) -> None:
        """Undefined is a dash; signed figures get + when above zero, - when below, nothing
        at zero (fractions between 0 and 1 included); percentages end in " %"."""
        assert show(value, percent=percent, signed=signed) == expected


class TestRenderDashboard:
    def test_ranges_of_several_practices_are_listed(self) -> None:
        """A board over practices in two time zones lists both ranges, sorted, comma-separated."""
        store = InMemoryStore.from_objects(
            [*_setup("p1", "Australia/Sydney"), *_setup("p2", "Australia/Perth")]
        )
        board = dashboard(store, practices=["p1", "p2"], date_range="last_week", now=NOW)
        assert render_dashboard(board).splitlines()[0] == (
            "Range: [2026-09-28 00:00 → 2026-10-05 00:00) Australia/Perth, "
            "[2026-09-28 00:00 → 2026-10-05 00:00) Australia/Sydney"
        )

    def test_the_series_shows_a_goal_column_only_with_a_goal(self) -> None:
        """With a new-members goal (30 a month) each day of September shows 1.00 of it; the
        column is left out without one."""
        store = InMemoryStore.from_objects(_setup("p1", "Australia/Sydney"))
        plain = render_dashboard(dashboard(store, practices="p1", date_range="last_week", now=NOW))
        assert "Bucket from  New members  Committed (AUD)" in plain.splitlines()
        goals = Goals(new_members=30)
        board = dashboard(store, practices="p1", date_range="last_week", now=NOW, targets=goals)
        lines = render_dashboard(board).splitlines()
        header = lines.index("Bucket from  New members  Goal  Committed (AUD)")
        assert lines[header + 2 : header + 5] == [
            "2026-09-28             0  1.00         AUD 0.00",
            "2026-09-29             0  1.00         AUD 0.00",
            "2026-09-30             0  1.00         AUD 0.00",
        ]

    def test_feed_shows_local_first_activation_or_nothing(self) -> None:
        """The feed gives each member's first activation as a local date, and leaves the cell
        empty for a member never activated (a board built by hand may hold one)."""
        ada = _enrol("m1", "Ada Lovelace", datetime(2026, 9, 30, 9, tzinfo=UTC))
        ada = ada.activate(at=datetime(2026, 9, 30, 14, tzinfo=UTC))  # Oct 1, 00:00 in Sydney
        grace = _enrol("m2", "Grace Hopper", datetime(2026, 10, 2, tzinfo=UTC))
        store = InMemoryStore.from_objects([*_setup("p1", "Australia/Sydney"), ada, grace])
        board = dashboard(store, practices="p1", date_range="last_week", now=NOW)
        assert board.latest_new_members == (ada,)
        lines = render_dashboard(attrs.evolve(board, latest_new_members=(grace, ada))).splitlines()
        assert lines[-5:] == [
            "",
            "Account holder  Practice  First active",
            "--------------  --------  ------------",
            "Grace Hopper    p1",
            "Ada Lovelace    p1        2026-10-01",
        ]
