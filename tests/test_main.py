"""Tests for the ``python -m smilepass_core`` command line and the lists it prints."""

from __future__ import annotations

import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from smilepass_core import (
    BillingCycle,
    InMemoryStore,
    Member,
    MembershipPlan,
    Money,
    Patient,
    PaymentPlan,
    PaymentType,
    Practice,
    Preset,
)
from smilepass_core.__main__ import (
    main,
    render,
    render_latest_members,
    render_member_counts,
    render_plan_counts,
    render_plans_needing_action,
    render_practice,
)
from smilepass_core.demo import DEMO_NOW, DEMO_SEED, DEMO_TARGETS, DemoData, load_demo
from smilepass_core.io.text import (
    render_dashboard,
    render_recovery,
    render_subscriptions,
    render_weekly,
)
from smilepass_core.kpi import dashboard
from smilepass_core.reports import recovered_revenue, weekly_check
from smilepass_core.subscriptions import subscription_metrics

NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 16:00 in Sydney, midnight in New York
T = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)

SYD = Practice("syd", "Harbour Dental", "Australia/Sydney", "AUD")
NYC = Practice("nyc", "Hudson Smiles", "America/New_York", "USD")
SYD_GOLD = MembershipPlan(
    "syd-gold", "syd", "Gold Care", Money.of("30", "AUD"), BillingCycle.MONTHLY
)
SYD_FAMILY = MembershipPlan(
    "syd-family", "syd", "Family Care", Money.of("80", "AUD"), BillingCycle.MONTHLY
)
NYC_GOLD = MembershipPlan("nyc-gold", "nyc", "Gold", Money.of("35", "USD"), BillingCycle.MONTHLY)


def _enrol(
    member_id: str,
    name: str,
    at: datetime,
    *,
    plan: str = "syd-gold",
    dependents: int = 0,
    practice: str = "syd",
) -> Member:
    """A Pending member enrolled at ``at`` (start date that day), with ``dependents`` children."""
    return Member.enrol(
        id=member_id,
        practice_id=practice,
        plan_id=plan,
        account_holder=Patient(f"pat-{member_id}", name),
        start_date=at.date(),
        at=at,
        dependents=tuple(Patient(f"pat-{member_id}-{k}", f"Child {k}") for k in range(dependents)),
    )


def _offer(
    plan_id: str,
    patient: str,
    total: str,
    payment_type: PaymentType,
    at: datetime,
    *,
    instalments: int = 1,
    practice: str = "syd",
    currency: str = "AUD",
) -> PaymentPlan:
    """A Pending payment plan offered at ``at``."""
    return PaymentPlan.offer(
        id=plan_id,
        practice_id=practice,
        patient=Patient(f"pat-{plan_id}", patient),
        total=Money.of(total, currency),
        payment_type=payment_type,
        instalments=instalments,
        first_due=date(2026, 12, 1),
        at=at,
    )


#: Sydney's members: 1 Pending, 3 Active, 1 Failed, no Suspended, 2 Cancelled.
SYD_MEMBERS = (
    _enrol("m-01", "Ada Lovelace", T).activate(at=T + HOUR),
    _enrol("m-02", "Grace Hopper", T + 4 * DAY, plan="syd-family", dependents=2),
    _enrol("m-03", "Alan Turing", T + 4 * DAY).activate(at=T + 4 * DAY + HOUR).fail(at=T + 5 * DAY),
    _enrol("m-04", "Mary Jackson", T + DAY).activate(at=T + DAY + HOUR).cancel(at=T + 2 * DAY),
    _enrol("m-05", "Edsger Dijkstra", T + 2 * DAY).activate(at=T + 2 * DAY + HOUR),
    _enrol("m-06", "Barbara Liskov", T + 3 * DAY, plan="syd-family", dependents=1).activate(
        at=T + 3 * DAY + HOUR
    ),
    _enrol("m-07", "Hedy Lamarr", T + DAY).cancel(at=T + DAY + 2 * HOUR),
)

#: Sydney's payment plans, one or more of each status and payment type.
SYD_PLANS = (
    # Failed twice: its status changed at T + 2 days, its last attempt is at T + 6 days.
    _offer("pp-a", "Ada Lovelace", "300", PaymentType.PLAN, T, instalments=3)
    .record_payment(at=T + DAY)
    .record_failure(at=T + 2 * DAY)
    .record_failure(at=T + 6 * DAY),
    _offer("pp-b", "Bea Smith", "80.50", PaymentType.INSTANT, T + DAY).record_failure(
        at=T + 3 * DAY
    ),
    _offer("pp-c", "Cy Young", "1250", PaymentType.HOLD, T + 2 * DAY),
    _offer("pp-d", "Di Jones", "1200", PaymentType.PLAN, T + DAY, instalments=12),
    _offer("pp-e", "Eve Adams", "100", PaymentType.PLAN, T, instalments=2).record_payment(
        at=T + DAY
    ),
    _offer("pp-f", "Fay Wong", "50", PaymentType.INSTANT, T).record_payment(at=T + HOUR),
    _offer("pp-g", "Gus Lee", "60", PaymentType.INSTANT, T)
    .record_payment(at=T + HOUR)
    .archive(at=T + 2 * DAY),
    _offer("pp-h", "Hal Kim", "70", PaymentType.HOLD, T).cancel(at=T + DAY),
)

NYC_MEMBERS = (
    _enrol("n-01", "Nina Simone", T + 5 * DAY, plan="nyc-gold", practice="nyc").activate(
        at=T + 5 * DAY + HOUR
    ),
)
NYC_PLANS = (
    _offer(
        "pp-n", "Ray Charles", "90", PaymentType.INSTANT, T, practice="nyc", currency="USD"
    ).record_failure(at=T + 20 * DAY),
)


@pytest.fixture(scope="module")
def small() -> DemoData:
    """Two small practices built by hand, generated as of ``NOW``."""
    return DemoData(
        practices=(SYD, NYC),
        staff_users=(),
        membership_plans=(SYD_GOLD, SYD_FAMILY, NYC_GOLD),
        members=(*SYD_MEMBERS, *NYC_MEMBERS),
        payment_plans=(*SYD_PLANS, *NYC_PLANS),
        payments=(),
        campaigns=(),
        referrals=(),
        now=NOW,
    )


@pytest.fixture(scope="module")
def demo() -> DemoData:
    """The bundled demo with its default ``now`` and seed."""
    return load_demo()


class TestMemberCounts:
    def test_every_status_with_its_count_and_the_total(self) -> None:
        """Each status gets a row in lifecycle order (zero included), counts right-aligned."""
        assert render_member_counts(SYD_MEMBERS).splitlines() == [
            "Status     Members",
            "---------  -------",
            "Pending          1",
            "Active           3",
            "Failed           1",
            "Suspended        0",
            "Cancelled        2",
            "Total            7",
        ]

    def test_no_members(self) -> None:
        """With no members every count and the total are 0."""
        lines = render_member_counts([]).splitlines()
        assert [line.split()[-1] for line in lines[2:]] == ["0"] * 6


class TestPlanCounts:
    def test_counts_per_status_and_payment_type_with_totals(self) -> None:
        """One row per status, one column per payment type, row and column totals;
        the archived Instant plan is counted as Completed; numbers right-aligned."""
        assert render_plan_counts(SYD_PLANS).splitlines() == [
            "Status     Instant  Plan  Hold  Total",
            "---------  -------  ----  ----  -----",
            "Pending          0     1     1      2",
            "Active           0     1     0      1",
            "Completed        2     0     0      2",
            "Failed           1     1     0      2",
            "Cancelled        0     0     1      1",
            "Total            3     3     2      8",
        ]


class TestLatestMembers:
    def test_newest_first_with_ties_by_id_and_plan_names(self) -> None:
        """Newest enrolment first (same instant: higher id first); the plan's name, or its id
        when the plan is not given; dependents counted and right-aligned."""
        table = render_latest_members(SYD_MEMBERS, [SYD_GOLD], limit=4)
        assert table.splitlines() == [
            "Account holder   Dependents  Plan        Status   Start date",
            "---------------  ----------  ----------  -------  ----------",
            "Alan Turing               0  Gold Care   Failed   2026-11-06",
            "Grace Hopper              2  syd-family  Pending  2026-11-06",
            "Barbara Liskov            1  syd-family  Active   2026-11-05",
            "Edsger Dijkstra           0  Gold Care   Active   2026-11-04",
        ]

    def test_ten_by_default(self) -> None:
        """Without ``limit`` the ten newest of twelve members are listed, newest first."""
        members = [_enrol(f"m-{k:02}", f"Holder {k:02}", T + k * HOUR) for k in range(12)]
        lines = render_latest_members(members, [SYD_GOLD]).splitlines()
        assert [line.split("  ")[0] for line in lines[2:]] == [
            f"Holder {k:02}" for k in range(11, 1, -1)
        ]


class TestPlansNeedingAction:
    def test_failed_then_pending_oldest_activity_first(self) -> None:
        """Failed plans come first, then Pending, each oldest last activity (a status change or
        an attempt) first; Active, Completed and Cancelled plans are left out."""
        table = render_plans_needing_action(SYD_PLANS[::-1])
        assert table.splitlines() == [
            "Patient       Progression       Balance  Status   Payment type  Actions",
            "------------  -----------  ------------  -------  ------------  "
            "------------------------------------",
            "Bea Smith             0/1     AUD 80.50  Failed   Instant       "
            "resend payment link, contact patient",
            "Ada Lovelace          1/3    AUD 200.00  Failed   Plan          "
            "resend payment link, contact patient",
            "Di Jones             0/12  AUD 1,200.00  Pending  Plan          resend payment link",
            "Cy Young              0/1  AUD 1,250.00  Pending  Hold          resend payment link",
        ]

    def test_nothing_to_action(self) -> None:
        """Without a Failed or Pending plan the list is one line saying so."""
        settled = [p for p in SYD_PLANS if p.id in {"pp-e", "pp-f", "pp-g", "pp-h"}]
        assert render_plans_needing_action(settled) == "Nothing to action."
        assert render_plans_needing_action([]) == "Nothing to action."


class TestRenderPractice:
    @pytest.mark.parametrize("date_range", [None, "last_30_days"])
    def test_sections_in_order(self, small: DemoData, date_range: str | None) -> None:
        """The title, the local time, then each section under its heading, separated by blank
        lines; the dashboard uses the range asked for (last 7 days by default)."""
        store = InMemoryStore.from_objects(small.objects())
        if date_range is None:
            text = render_practice(small, SYD, store)
        else:
            text = render_practice(small, SYD, store, date_range)
        span = date_range or "last_7_days"
        board = dashboard(store, practices="syd", date_range=span, now=NOW, targets=DEMO_TARGETS)
        weekly = weekly_check(store, now=NOW, practices="syd")
        assert text == "\n\n".join(
            [
                "Harbour Dental (Australia/Sydney, AUD)\n======================================",
                "As of 2026-11-25 16:00 AEDT",
                "Dashboard, compared with the previous period\n"
                "--------------------------------------------\n" + render_dashboard(board),
                "Recurring revenue over the range\n--------------------------------\n"
                + render_subscriptions(
                    subscription_metrics(
                        store, practices="syd", date_range=span, now=NOW, targets=DEMO_TARGETS
                    )
                ),
                "Failed charges over the range, and what was recovered since\n"
                "-----------------------------------------------------------\n"
                + render_recovery(
                    recovered_revenue(store, now=NOW, date_range=span, practices="syd")
                ),
                "Weekly check\n------------\n" + render_weekly(weekly),
                "Members by status\n-----------------\n" + render_member_counts(SYD_MEMBERS),
                "Payment plans by status and payment type\n"
                "----------------------------------------\n"
                + render_plan_counts(SYD_PLANS)
                + "\n(1 of the completed plans are archived)",
                "Latest members\n--------------\n"
                + render_latest_members(SYD_MEMBERS, [SYD_GOLD, SYD_FAMILY]),
                "Payment plans needing action\n----------------------------\n"
                + render_plans_needing_action(SYD_PLANS),
            ]
        )

    def test_builds_its_own_store_when_none_is_given(self, small: DemoData) -> None:
        """Without a store the summary is the same as with a store holding the data."""
        store = InMemoryStore.from_objects(small.objects())
        assert render_practice(small, NYC) == render_practice(small, NYC, store)

    def test_only_the_practice_itself(self, small: DemoData) -> None:
        """Nothing of the other practice shows: not its members, plans or currency."""
        text = render_practice(small, NYC)
        assert text.startswith(
            "Hudson Smiles (America/New_York, USD)\n=====================================\n\n"
            "As of 2026-11-25 00:00 EST\n\n"
        )
        assert "Nina Simone" in text
        assert "Ray Charles" in text
        for other in ("Harbour Dental", "AUD", "Ada Lovelace", "Bea Smith"):
            assert other not in text


class TestRender:
    @pytest.mark.parametrize("date_range", [None, Preset.LAST_30_DAYS])
    def test_every_practice_in_order(self, small: DemoData, date_range: Preset | None) -> None:
        """Each practice's summary in order, two blank lines between, a newline at the end."""
        wanted = date_range or Preset.LAST_7_DAYS
        text = render(small) if date_range is None else render(small, date_range)
        assert text == (
            render_practice(small, SYD, date_range=wanted)
            + "\n\n\n"
            + render_practice(small, NYC, date_range=wanted)
            + "\n"
        )


def _help_parts(text: str) -> tuple[str, str, dict[str, str]]:
    """``--help`` output as (usage, description, help entry per long option), each with its
    line breaks and indentation collapsed to single spaces."""
    usage, description, options = text.split("\n\n")[:3]
    entries: dict[str, str] = {}
    current = ""
    for line in options.splitlines()[1:]:
        if line.startswith("  -"):
            current = line.split()[0].rstrip(",")
            entries[current] = line
        else:
            entries[current] += " " + line
    return (
        " ".join(usage.split()),
        " ".join(description.split()),
        {name: " ".join(entry.split()) for name, entry in entries.items()},
    )


class TestMain:
    def test_prints_the_demo_summary(
        self, demo: DemoData, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``main([])`` prints the summary of the default demo (DEMO_NOW, DEMO_SEED), returns 0."""
        assert main([]) == 0
        captured = capsys.readouterr()
        assert captured.out == render(demo)
        assert captured.err == ""
        assert "Harbour Dental (Australia/Sydney, AUD)" in captured.out
        assert "Hudson Smiles (America/New_York, USD)" in captured.out
        assert "Payment plans needing action" in captured.out
        assert "resend payment link, contact patient" in captured.out

    def test_seed(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``--seed 7`` prints the demo generated from seed 7 (which differs from the default)."""
        assert main(["--seed", "7"]) == 0
        seeded = render(load_demo(DEMO_NOW, 7))
        assert capsys.readouterr().out == seeded
        assert seeded != render(load_demo())

    def test_range(self, demo: DemoData, capsys: pytest.CaptureFixture[str]) -> None:
        """``--range last_30_days`` gives the dashboards that range."""
        assert main(["--range", "last_30_days"]) == 0
        assert capsys.readouterr().out == render(demo, Preset.LAST_30_DAYS)

    def test_unknown_range_refused(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A ``--range`` that is not a preset exits with 2, naming it, and prints nothing."""
        assert main(["--range", "next_year"]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.splitlines()[-1].startswith(
            "smilepass demo: error: argument --range: unknown range 'next_year'; give one of "
            "last-7-days, last-30-days"
        )

    def test_non_integer_seed_refused(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A ``--seed`` that is not a whole number exits with 2."""
        assert main(["--seed", "seven"]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.splitlines()[-1] == (
            "smilepass demo: error: argument --seed: invalid int value: 'seven'"
        )

    def test_naive_now_refused(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A naive ``--now`` exits with 2 and says why on standard error."""
        assert main(["--now", "2026-01-01T00:00:00"]) == 2
        captured = capsys.readouterr()
        assert "no UTC offset" in captured.err
        assert captured.out == ""

    def test_garbage_now_refused(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A ``--now`` that is not ISO 8601 exits with 2."""
        assert main(["--now", "next tuesday"]) == 2
        assert "not an ISO 8601 datetime" in capsys.readouterr().err

    def test_aware_now_accepted(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An aware ``--now`` generates the demo relative to it."""
        assert main(["--now", "2026-01-01T09:00:00+11:00"]) == 0
        assert "As of 2026-01-01 09:00 AEDT" in capsys.readouterr().out

    def test_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        """``--help`` exits with 0 and explains each option, its value and its default."""
        assert main(["demo", "--help"]) == 0
        usage, description, entries = _help_parts(capsys.readouterr().out)
        assert usage == (
            "usage: smilepass demo [-h] [--now ISO8601] [--range RANGE] [--seed SEED] [--store URL]"
        )
        assert description == "Print a summary of the bundled demo practices."
        assert entries["--now"] == (
            "--now ISO8601 generate the demo relative to this aware instant "
            f"(default {DEMO_NOW.isoformat()})"
        )
        assert entries["--range"] == (
            "--range RANGE the dashboards' date range preset (default last-7-days)"
        )
        assert entries["--seed"] == f"--seed SEED demo seed (default {DEMO_SEED})"
        assert entries["--store"] == (
            "--store URL read the figures from this SQL database (e.g. sqlite:///demo.db, "
            "postgresql+psycopg://user@host/db; the [sql] extra), loading the demo into "
            "it when it is empty"
        )

    def test_docs_name_every_option(self, capsys: pytest.CaptureFixture[str]) -> None:
        """docs/index.md describes exactly the options the parser takes."""
        docs = (Path(__file__).parents[1] / "docs" / "index.md").read_text(encoding="utf-8")
        documented = set(re.findall(r"`(--[a-z]+)`", docs))
        main(["demo", "--help"])
        usage, _, _ = _help_parts(capsys.readouterr().out)
        assert (
            set(re.findall(r"\[(--[a-z]+)", usage))
            == documented
            == {
                "--now",
                "--range",
                "--seed",
                "--store",
            }
        )


class TestStoreOption:
    """``--store URL`` reads the figures from a SQL database holding the demo."""

    def test_an_empty_database_is_loaded_and_read_back(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The first run loads the demo into the SQLite file, the second reads what is
        there; both print exactly what the in-memory run prints."""
        url = f"sqlite:///{tmp_path / 'demo.db'}"
        assert main([]) == 0
        expected = capsys.readouterr().out
        for _ in range(2):
            assert main(["--store", url]) == 0
            assert capsys.readouterr().out == expected
        with sa.create_engine(url).connect() as conn:
            members = conn.execute(sa.text("SELECT count(*) FROM members")).scalar_one()
        assert members == len(load_demo().members)

    def test_a_database_holding_other_data_is_refused(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A demo of another seed is not mixed into the database: exit 2 and the reason."""
        url = f"sqlite:///{tmp_path / 'demo.db'}"
        assert main(["--store", url]) == 0
        capsys.readouterr()
        assert main(["--store", url, "--seed", "3"]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == (
            f"smilepass: error: {url} holds other data than this demo "
            "(--now, --seed): use an empty database\n"
        )

    def test_without_the_extra_the_error_names_it(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With SQLAlchemy missing, ``--store`` exits 2 naming the ``[sql]`` extra."""
        for name in [m for m in sys.modules if m.startswith("smilepass_core.sql")]:
            monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, "sqlalchemy", None)
        assert main(["--store", "sqlite://"]) == 2
        err = capsys.readouterr().err
        assert "pip install 'smilepass-core[sql]'" in err
