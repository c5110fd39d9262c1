"""The SQL store (``smilepass_core.sql``): the whole contract kit on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import postgres_server
from smilepass_core import (
    BillingCycle,
    Campaign,
    CurrencyMismatch,
    DateRange,
    InMemoryStore,
    InvalidRecord,
    InvalidRow,
    InvalidValue,
    Member,
    MemberQuery,
    MembershipPlan,
    Money,
    NaiveDatetime,
    NotFound,
    Order,
    Page,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentPlanQuery,
    PaymentPlanTemplate,
    PaymentQuery,
    Practice,
    RuleViolation,
    ScopeQuery,
    SortKey,
    StaffUser,
    VersionConflict,
)
from smilepass_core.demo import DEMO_NOW, load_demo
from smilepass_core.domain.discounts import Discount
from smilepass_core.domain.templates import offer_from_template
from smilepass_core.kpi import dashboard
from smilepass_core.queries import sort_columns
from smilepass_core.read_only_list import ReadOnlyList
from smilepass_core.reports import (
    accounting_export,
    aged_receivables,
    cohort_retention,
    instalment_forecast,
    membership_list,
    payment_plan_list,
    referral_tracking,
    staff_attribution,
    weekly_check,
)
from smilepass_core.repositories import (
    STORE_TYPES,
    MemberBoundaryReader,
    MemberSeriesReader,
    PaymentPlanSeriesReader,
    PaymentWindowReader,
)
from smilepass_core.sql import SqlStore, create_schema, metadata
from smilepass_core.sql.schema import UtcInstant, ddl
from smilepass_core.testing import contracts
from smilepass_core.testing import strategies as sps


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[sa.Engine]:
    """An engine on a PostgreSQL server for the run, its schema made; skips with the
    reason when there is no server binary, except under CI (then it fails)."""
    url = postgres_server.server_url()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL: {postgres_server.REASON}")
        pytest.skip(postgres_server.REASON)
    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    create_schema(engine)
    yield engine
    engine.dispose()


def empty(engine: sa.Engine) -> SqlStore:
    """A store on ``engine`` with every table emptied (children first: ``DELETE`` is
    quicker than ``TRUNCATE`` on the few rows a generated example leaves)."""
    store = SqlStore(engine)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    return store


@pytest.fixture(scope="session")
def sqlite_engine() -> Iterator[sa.Engine]:
    """One in-memory SQLite database for the contract kit's many stores, emptied for
    each (making the schema for each store would cost more than the checks)."""
    store = SqlStore.connect("sqlite://")
    yield store.engine
    store.engine.dispose()


@pytest.mark.slow
class TestSqliteStore(contracts.StoreContract):
    """SqlStore on an in-memory SQLite database honours the whole contract."""

    engine: ClassVar[sa.Engine]

    @pytest.fixture(autouse=True)
    def _engine(self, sqlite_engine: sa.Engine) -> None:
        type(self).engine = sqlite_engine

    def make_store(self) -> SqlStore:
        return empty(self.engine)


@pytest.mark.slow
class TestPostgresStore(contracts.StoreContract):
    """SqlStore on PostgreSQL honours the whole contract."""

    engine: ClassVar[sa.Engine]

    @pytest.fixture(autouse=True)
    def _engine(self, postgres_engine: sa.Engine) -> None:
        type(self).engine = postgres_engine

    def make_store(self) -> SqlStore:
        return empty(self.engine)


class TestTheDocsPage:
    """docs/sql.md cannot drift from the schema the code makes."""

    def test_the_ddl_block_is_what_create_schema_runs(self) -> None:
        """The page's block between the ddl markers is ``ddl()``, fenced."""
        page = (Path(__file__).resolve().parent.parent / "docs" / "sql.md").read_text()
        block = page.split("<!-- ddl:start -->\n")[1].split("<!-- ddl:end -->")[0]
        assert block == f"```sql\n{ddl()}```\n"
        assert "CREATE TABLE members_history" in block
        assert (
            "CHECK (to_status IN ('pending', 'active', 'failed', 'suspended', 'cancelled'))"
            in block
        )


class TestOptionalReads:
    """Which of the dashboard's optional reads SqlStore offers."""

    def test_the_batched_series_reads_only(self) -> None:
        """SqlStore offers the two series reads' Protocols, not the boundary reads' (the
        dashboard reads those one query each)."""
        store = SqlStore.connect("sqlite://")
        assert isinstance(store.members, MemberSeriesReader)
        assert isinstance(store.payment_plans, PaymentPlanSeriesReader)
        assert not isinstance(store.members, MemberBoundaryReader)
        assert not isinstance(store.payments, PaymentWindowReader)


# -- the same answers as the reference store ---------------------------------------------

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _both(dataset: sps.Dataset) -> tuple[InMemoryStore, SqlStore]:
    sql = SqlStore.connect("sqlite://")
    sql.load(dataset.objects())
    return InMemoryStore.from_objects(dataset.objects()), sql


def _reports(store: Any, dataset: sps.Dataset, now: datetime) -> list[Any]:
    ids = [p.id for p in dataset.practices]
    zone = dataset.practices[0].timezone
    window = DateRange.last_days(60, now=now, timezone=zone)
    return [
        membership_list(store, as_of=now, practices=ids, overdue=True, grace_days=3),
        membership_list(store, as_of=now, practices=ids, order=Order(["status", "-start_date"])),
        payment_plan_list(store, as_of=now, practices=ids, order=Order(["progression"])),
        payment_plan_list(store, as_of=now, practices=ids, archived=False, grace_days=1),
        aged_receivables(store, at=now, practices=ids),
        referral_tracking(store, practices=ids),
        staff_attribution(store, date_range=window, now=now, practices=ids),
        accounting_export(store, date_range=window, now=now, practices=ids),
        instalment_forecast(store, date_range=window, practices=ids),
        cohort_retention(store, now=now, practices=ids),
        weekly_check(store, now=now, practices=ids, grace_days=2),
    ]


class TestTheSameAnswersAsInMemory:
    """Random datasets loaded into both stores give equal reports and overdue lists."""

    @SETTINGS
    @given(sps.datasets(), st.integers(0, 200))
    def test_every_report_is_equal(self, dataset: sps.Dataset, days: int) -> None:
        """Each report (lists with overdue filters and orders, receivables, referrals,
        ledger, cohorts, weekly check) is the same on both stores."""
        memory, sql = _both(dataset)
        now = sps.DATASET_START + timedelta(days=days, hours=7)
        assert _reports(sql, dataset, now) == _reports(memory, dataset, now)

    @SETTINGS
    @given(sps.datasets(), st.integers(0, 200), st.integers(0, 5), st.booleans(), st.data())
    def test_overdue_queries_with_orders_and_pages(
        self, dataset: sps.Dataset, days: int, grace: int, late: bool, data: st.DataObject
    ) -> None:
        """The Overdue filter (judged in Python after SQL filters) with a random order and
        page returns what ``matches`` and ``apply_order`` give, as a ReadOnlyList."""
        memory, sql = _both(dataset)
        as_of = sps.DATASET_START + timedelta(days=days)
        page = Page(data.draw(st.none() | st.integers(0, 5)), data.draw(st.integers(0, 3)))
        column = data.draw(st.sampled_from(sorted(sort_columns[Member])))
        order = Order([SortKey(column, data.draw(st.booleans()))], page)
        query = MemberQuery(overdue=late, as_of=as_of, grace_days=grace)
        found = sql.members.find(query, order=order)
        assert isinstance(found, ReadOnlyList)  # read-only, as the in-memory store answers
        assert found == memory.members.find(query, order=order)
        assert sql.members.count(query) == memory.members.count(query)
        plans = PaymentPlanQuery(overdue=late, as_of=as_of, grace_days=grace)
        assert sql.payment_plans.find(plans) == memory.payment_plans.find(plans)
        assert sql.payment_plans.total(plans) == memory.payment_plans.total(plans)


# -- faults: nothing half-written, nothing lost, nothing wrong read --------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """An engine with the schema made and every table empty: a SQLite file, or the
    PostgreSQL server of the run."""
    if request.param == "postgresql":
        engine = request.getfixturevalue("postgres_engine")
        empty(engine)
        yield engine
        return
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    SqlStore(engine)  # its SQLite set-up, before the first connection
    create_schema(engine)
    yield engine
    engine.dispose()


def _rows(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


DEMO = load_demo()


def _racer(start: datetime) -> Member:
    """The racing tests' member: ``m`` of practice ``p`` on plan ``gold`` from ``start``'s
    date, enrolled and Active at ``start``."""
    return Member.enrol(
        id="m",
        practice_id="p",
        plan_id="gold",
        account_holder=Patient("pt", "Ada Lovelace"),
        start_date=start.date(),
        at=start,
    ).activate(at=start)


def _race(a: SqlStore, first: Callable[[], object], second: Callable[[], object]) -> object:
    """Run ``first`` in session A's open transaction and ``second`` (session B's write) in
    another thread meanwhile: B must still be waiting on a lock half a second later; once A
    commits, what B's write did: ``"kept"``, or the error it raised."""
    started, outcome = threading.Event(), []

    def racer() -> None:
        started.set()
        try:
            second()
            outcome.append("kept")
        except (RuleViolation, VersionConflict) as error:
            outcome.append(error)

    with a.atomic():
        first()
        thread = threading.Thread(target=racer)
        thread.start()
        started.wait()
        thread.join(0.5)
        assert thread.is_alive(), "B must wait for A's lock"
    thread.join(10)
    assert len(outcome) == 1
    return outcome[0]


class TestFaults:
    """Loads are all-or-nothing, concurrent saves cannot lose a change, and values the
    library cannot hold are refused when read."""

    def test_a_bad_object_in_the_middle_of_a_load_leaves_no_row(self, engine: sa.Engine) -> None:
        """The 2,000th object of the demo's load refers to a plan that does not exist:
        the load raises InvalidRecord naming it, and every table stays empty."""
        objects = list(DEMO.objects())
        members = [i for i, o in enumerate(objects) if isinstance(o, Member)]
        bad = members[len(members) // 2]
        objects[bad] = attrs.evolve(objects[bad], plan_id="no-such-plan")
        store = SqlStore(engine)
        with pytest.raises(InvalidRecord) as caught:
            store.load(objects)
        assert (caught.value.table, caught.value.index) == ("Member", bad)
        assert caught.value.field == "plan_id"
        assert set(_rows(engine).values()) == {0}
        store.load(DEMO.objects())  # and the good load lands whole afterwards
        assert _rows(engine)["payments"] == len(DEMO.payments)

    def test_two_sessions_that_read_the_same_version_cannot_both_save(
        self, engine: sa.Engine
    ) -> None:
        """Two stores (two sessions) read version 1 of a member; the first save wins, the
        second raises VersionConflict and the first's change is kept."""
        first, second = SqlStore(engine), SqlStore(engine)
        first.load(DEMO.objects())
        member = next(m for m in DEMO.members if m.status.value == "active")
        a, b = first.members.get(member.id), second.members.get(member.id)
        read = first.members.version(member.id)
        first.members.save(a.suspend(at=NOW, reason="first"), expected_version=read)
        with pytest.raises(VersionConflict) as caught:
            second.members.save(b.cancel(at=NOW, reason="second"), expected_version=read)
        assert (caught.value.expected, caught.value.actual) == (read, read + 1)
        kept = second.members.get(member.id)
        assert kept.status.value == "suspended"
        assert kept.history[-1].reason == "first"

    def test_a_save_racing_another_session_waits_and_then_fails(
        self, postgres_engine: sa.Engine
    ) -> None:
        """PostgreSQL: session A saves inside an open transaction; session B's save of the
        same version blocks on the row lock, and once A commits B raises VersionConflict
        (no lost update, no deadlock)."""
        engine = postgres_engine
        empty(engine)
        a, b = SqlStore(engine), SqlStore(engine)
        a.load(DEMO.objects())
        member = next(m for m in DEMO.members if m.status.value == "active")
        read = a.members.version(member.id)
        outcome = _race(
            a,
            lambda: a.members.save(member.suspend(at=NOW, reason="A"), expected_version=read),
            lambda: b.members.save(member.cancel(at=NOW, reason="B"), expected_version=read),
        )
        assert isinstance(outcome, VersionConflict)
        assert a.members.get(member.id).history[-1].reason == "A"

    @pytest.mark.parametrize("first", ["cancel", "charge"])
    def test_a_charge_and_a_cancellation_racing_are_checked_one_after_the_other(
        self, postgres_engine: sa.Engine, first: str
    ) -> None:
        """PostgreSQL: session A cancels a member (or records a charge for them) inside an
        open transaction; session B records a charge stamped after that cancellation (or
        saves a cancellation before that charge). B waits on the member's row lock, and
        once A commits B is refused: a charge after Cancel never lands."""
        engine = postgres_engine
        empty(engine)
        a, b = SqlStore(engine), SqlStore(engine)
        a.load(DEMO.objects())
        member = next(m for m in DEMO.members if m.status.value == "active")
        plan = next(p for p in DEMO.membership_plans if p.id == member.plan_id)
        charge = Payment(
            "race-charge",
            member.practice_id,
            plan.price,
            PaymentKind.CHARGE,
            PaymentOutcome.SUCCEEDED,
            NOW + timedelta(hours=1),
            member_id=member.id,
        )
        cancelled = member.cancel(at=NOW)
        cancel_a, cancel_b = (
            (lambda: a.members.save(cancelled)),
            (lambda: b.members.save(cancelled)),
        )
        charge_a, charge_b = (lambda: a.payments.add(charge)), (lambda: b.payments.add(charge))
        if first == "cancel":
            outcome = _race(a, cancel_a, charge_b)
        else:
            outcome = _race(a, charge_a, cancel_b)
        assert isinstance(outcome, RuleViolation)
        assert outcome.rule == "charge_after_cancel"
        kept_member = a.members.get(member.id)
        kept_charges = a.payments.find(PaymentQuery(ids={"race-charge"}))
        if first == "cancel":
            assert kept_member.status.value == "cancelled"
            assert kept_charges == []
        else:
            assert kept_member.status.value == "active"
            assert kept_charges == [charge]

    @pytest.mark.parametrize("first", ["reprice", "charge"])
    def test_a_charge_and_a_reprice_racing_are_checked_one_after_the_other(
        self, postgres_engine: sa.Engine, first: str
    ) -> None:
        """PostgreSQL: a monthly member charged 30.00 on 1 January. Session A reprices the
        plan to 40.00 from 1 February (or records February's 30.00), inside an open
        transaction; session B records February's 30.00 (or saves that reprice). B waits on
        the plan's row, and once A commits B is refused: February is priced once."""
        engine = postgres_engine
        empty(engine)
        a, b = SqlStore(engine), SqlStore(engine)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        plan = MembershipPlan("gold", "p", "Gold", Money.of("30", "AUD"), BillingCycle.MONTHLY)
        member = _racer(start)

        def charge(id: str, at: datetime) -> Payment:
            return Payment(
                id, "p", plan.price, PaymentKind.CHARGE, PaymentOutcome.SUCCEEDED, at, "m"
            )

        a.load([Practice("p", "P", "UTC", "AUD"), plan, member, charge("jan", start)])
        february = charge("feb", datetime(2026, 2, 1, 10, tzinfo=UTC))
        dearer = plan.reprice(Money.of("40", "AUD"), on=february.at.date())
        if first == "reprice":
            outcome = _race(
                a, lambda: a.membership_plans.save(dearer), lambda: b.payments.add(february)
            )
        else:
            outcome = _race(
                a, lambda: a.payments.add(february), lambda: b.membership_plans.save(dearer)
            )
        assert isinstance(outcome, RuleViolation)
        kept = a.payments.find(PaymentQuery(ids={"feb"}))
        if first == "reprice":
            assert outcome.rule == "charge_amount"
            assert (a.membership_plans.get("gold"), kept) == (dearer, [])
        else:
            assert outcome.rule == "reprice_backdated"
            assert (a.membership_plans.get("gold"), kept) == (plan, [february])

    @pytest.mark.parametrize("first", ["zone", "charge"])
    def test_a_charge_and_a_time_zone_racing_are_checked_one_after_the_other(
        self, postgres_engine: sa.Engine, first: str
    ) -> None:
        """PostgreSQL: a monthly member in UTC, 5.00 off from date 1, charged 30.00 on
        1 January. Session A moves the practice to Honolulu (or records 25.00 at 00:30 on
        1 February), inside an open transaction; session B records that charge (or saves
        that time zone). B waits on the practice's row, and once A commits B is refused:
        in Honolulu the charge falls on 31 January, when 30.00 is due."""
        engine = postgres_engine
        empty(engine)
        a, b = SqlStore(engine), SqlStore(engine)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        practice = Practice("p", "P", "UTC", "AUD")
        plan = MembershipPlan("gold", "p", "Gold", Money.of("30", "AUD"), BillingCycle.MONTHLY)
        off = Discount("off", "p", "Loyalty", amount=Money.of("5", "AUD"))
        member = _racer(start).grant(off, first=1)

        def charge(id: str, amount: str, at: datetime) -> Payment:
            ok = PaymentOutcome.SUCCEEDED
            return Payment(id, "p", Money.of(amount, "AUD"), PaymentKind.CHARGE, ok, at, "m")

        a.load([practice, plan, member, charge("jan", "30", start + timedelta(hours=10))])
        february = charge("feb", "25", datetime(2026, 2, 1, 0, 30, tzinfo=UTC))
        honolulu = attrs.evolve(practice, timezone="Pacific/Honolulu")
        if first == "zone":
            outcome = _race(a, lambda: a.practices.save(honolulu), lambda: b.payments.add(february))
        else:
            outcome = _race(a, lambda: a.payments.add(february), lambda: b.practices.save(honolulu))
        assert isinstance(outcome, RuleViolation)
        kept = a.payments.find(PaymentQuery(ids={"feb"}))
        if first == "zone":
            assert outcome.rule == "charge_amount"
            assert (a.practices.get("p"), kept) == (honolulu, [])
        else:
            assert (outcome.rule, outcome.field) == ("reprice_backdated", "timezone")
            assert (a.practices.get("p"), kept) == (practice, [february])

    @pytest.mark.parametrize("first", ["zone", "member"])
    def test_a_member_move_and_a_time_zone_racing_are_checked_one_after_the_other(
        self, postgres_engine: sa.Engine, first: str
    ) -> None:
        """PostgreSQL: a monthly member in UTC, repriced from 30.00 to 40.00 from 1 March,
        Suspended from 10 February, charged 30.00 at 10:00 on 1 January, 1 February and
        1 March. Active again at 05:00 UTC on 2 March bills no earlier day in UTC, but in
        Honolulu it is 19:00 on 1 March, which it then bills at 40.00. Session A saves one
        (the practice in Honolulu, or the member Active again) inside an open
        transaction; session B saves the other and waits; once A commits B is refused."""
        engine = postgres_engine
        empty(engine)
        a, b = SqlStore(engine), SqlStore(engine)
        start = datetime(2026, 1, 1, 9, tzinfo=UTC)
        practice = Practice("p", "P", "UTC", "AUD")
        plan = MembershipPlan("gold", "p", "Gold", Money.of("30", "AUD"), BillingCycle.MONTHLY)
        plan = plan.reprice(Money.of("40", "AUD"), on=date(2026, 3, 1))
        member = _racer(start).suspend(at=datetime(2026, 2, 10, tzinfo=UTC))
        ok = PaymentOutcome.SUCCEEDED
        paid = [
            Payment(f"c{k}", "p", plan.price_on(date(2026, 1, 1)), PaymentKind.CHARGE, ok,
                    datetime(2026, k, 1, 10, tzinfo=UTC), "m")
            for k in (1, 2, 3)
        ]  # fmt: skip
        a.load([practice, plan, member, *paid])
        honolulu = attrs.evolve(practice, timezone="Pacific/Honolulu")
        resumed = member.activate(at=datetime(2026, 3, 2, 5, tzinfo=UTC))
        if first == "zone":
            outcome = _race(a, lambda: a.practices.save(honolulu), lambda: b.members.save(resumed))
        else:
            outcome = _race(a, lambda: a.members.save(resumed), lambda: b.practices.save(honolulu))
        assert isinstance(outcome, RuleViolation)
        assert outcome.rule == "reprice_backdated"
        if first == "zone":
            assert outcome.field == "history"
            assert (a.practices.get("p"), a.members.get("m")) == (honolulu, member)
        else:
            assert outcome.field == "timezone"
            assert (a.practices.get("p"), a.members.get("m")) == (practice, resumed)

    def test_a_sign_up_racing_its_campaign_paused_before_it_is_refused(
        self, postgres_engine: sa.Engine
    ) -> None:
        """PostgreSQL: session A saves a campaign paused at an instant, inside an open
        transaction; session B adds a member joining through it after that instant. B waits
        on the campaign's row, and once A commits B is refused: no member joins a Paused
        campaign."""
        engine = postgres_engine
        empty(engine)
        a, b = SqlStore(engine), SqlStore(engine)
        a.load(DEMO.objects())
        campaign = next(
            c for c in DEMO.campaigns if c.status.value == "active" and c.practice_id == "syd"
        )
        plan = next(p for p in DEMO.membership_plans if p.practice_id == "syd")
        joins = NOW + timedelta(hours=2)
        member = Member.enrol(
            id="race-member",
            practice_id="syd",
            plan_id=plan.id,
            account_holder=Patient("race-holder", "Ada"),
            start_date=joins.date(),
            at=joins,
            campaign_id=campaign.id,
        )
        outcome = _race(
            a,
            lambda: a.campaigns.save(campaign.pause(at=NOW + timedelta(hours=1))),
            lambda: b.members.add(member),
        )
        assert isinstance(outcome, RuleViolation)
        assert outcome.rule == "campaign_not_active"
        assert a.members.find(MemberQuery(ids={"race-member"})) == []

    def test_a_read_racing_saves_sees_one_whole_version(self, engine: sa.Engine) -> None:
        """A member is kept in several tables (its row, dependents, history). While a
        writer saves two versions of it in turn (the holder's name and the dependents
        change together), 300 reads by another session each see one of the two whole,
        never one version's row with the other's dependents."""
        store, reader = SqlStore(engine), SqlStore(engine)
        store.load(DEMO.objects())
        member = next(m for m in DEMO.members if m.status.value == "active")
        versions = [
            attrs.evolve(member, account_holder=Patient("h-a", "Ann"), dependents=()),
            attrs.evolve(
                member,
                account_holder=Patient("h-b", "Bob"),
                dependents=(Patient("d-1", "Cy"), Patient("d-2", "Di")),
            ),
        ]
        store.members.save(versions[0])
        done = threading.Event()

        def writer() -> None:
            for i in range(300):
                store.members.save(versions[(i + 1) % 2])
            done.set()

        thread = threading.Thread(target=writer)
        thread.start()
        seen = set()
        try:
            while not done.is_set():
                for read in (
                    reader.members.get(member.id),
                    *reader.members.find(MemberQuery(ids={member.id})),
                ):
                    torn = f"{read.account_holder}, {read.dependents}"
                    assert read in versions, f"a torn read: {torn}"
                    seen.add(versions.index(read))
        finally:
            thread.join(30)
        assert seen == {0, 1}

    @pytest.mark.parametrize(
        ("table", "column", "value", "read", "said"),
        [
            ("members_history", "to_status", "vip", "members", "'vip'"),
            ("payments", "amount_minor", -500, "payments", "must be a positive Money"),
            ("payments", "kind", "chargeback", "payments", "'chargeback'"),
            ("payment_plans", "total_currency", "XXX", "payment_plans", "XXX"),
        ],
    )
    def test_values_another_program_wrote_are_refused_when_read(
        self, engine: sa.Engine, table: str, column: str, value: Any, read: str, said: str
    ) -> None:
        """A status or kind the library does not know (written with the CHECKs off), a
        negative amount, an unknown currency: reading the row raises InvalidRow naming
        the table, the row and the column."""
        store = SqlStore(engine)
        store.load(DEMO.objects())
        target = metadata.tables[table]
        key = target.c.get("member_id" if table == "members_history" else "id")
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
            else:
                for check in target.constraints:
                    if isinstance(check, sa.CheckConstraint):
                        conn.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT {check.name}")
            id = conn.execute(sa.select(key).order_by(key).limit(1)).scalar_one()
            conn.execute(sa.update(target).where(key == id).values({column: value}))
        try:
            with pytest.raises(InvalidRow) as caught:
                getattr(store, read).get(id)
            assert caught.value.table == table
            assert caught.value.id.split("#")[0] == id
            assert caught.value.column == column
            assert said in caught.value.reason
        finally:
            if engine.dialect.name == "postgresql":  # the next test gets its CHECKs back
                metadata.drop_all(engine)
                create_schema(engine)


class TestStatementCount:
    """A dashboard runs the same number of statements whatever the number of members."""

    def test_the_dashboard_does_not_grow_with_the_data(self) -> None:
        """One practice of 10 members and one of 200: the same statements, and reading
        the latest-members feed or a page of the list is a handful, not one per row."""
        counts = []
        for size in (10, 200):
            store = SqlStore.connect("sqlite://")
            store.load(_practice(size))
            statements: list[str] = []

            def record(*args: Any, seen: list[str] = statements) -> None:
                seen.append(args[2])

            sa.event.listen(store.engine, "before_cursor_execute", record)
            board = dashboard(store, practices="p", now=NOW)
            assert board.members.value > 0
            counts.append(len(statements))
            statements.clear()
            store.members.find(MemberQuery(), order=Order(["-start_date"], Page(50)))
            # BEGIN, the rows, dependents, history, plan changes, discounts
            assert len(statements) <= 6
        assert counts[0] == counts[1], counts
        assert counts[0] < 80, counts

    @pytest.mark.parametrize("listed", [500, 0])
    def test_a_read_is_two_statements_by_list_or_by_query(
        self, listed: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every demo object reads back equal from SQLite, its child rows read by the
        parents' ids (up to 500 parents) or by the parents' query again (beyond): the rows,
        then one statement for all their children, whatever the number of objects."""
        import smilepass_core.sql.store as sql_store

        monkeypatch.setattr(sql_store, "_LISTED_PARENTS", listed)
        data = load_demo(DEMO_NOW)
        store = SqlStore.connect("sqlite://")
        store.load(data.objects())
        statements: list[str] = []
        sa.event.listen(
            store.engine, "before_cursor_execute", lambda *args: statements.append(args[2])
        )
        for name in ("members", "payment_plans", "referrals", "campaigns"):
            kept = sorted(
                (o for o in data.objects() if type(o) is STORE_TYPES[name]), key=lambda o: o.id
            )
            statements.clear()
            assert list(iter(getattr(store, name))) == kept
            assert [s.split()[0] for s in statements] == ["BEGIN", "SELECT", "SELECT"]
            assert statements[2].count("UNION ALL") == len(sql_store.layouts[name].children) - 1
            assert ("IN (SELECT" in statements[2]) is (listed < len(kept))

    def test_a_write_checks_in_one_statement_and_rewrites_only_what_changed(self) -> None:
        """Adding a member with a plan, a campaign, a staff user and a dependent: BEGIN,
        the campaign's row held for share (a save of the campaign in progress is waited
        for), one statement for every check, then its row, dependents, history and active
        spans. Saving it with one more status change: BEGIN, the version, the old object
        (its row, then its child rows in one statement), the campaign held, the checks, the
        UPDATE, the new history row, and the spans again (the open span closed); the
        dependents are not touched."""
        store = SqlStore.connect("sqlite://")
        store.load(
            [
                *_practice(3),
                Campaign("p-camp", "p", "Spring", "SPRING", NOW - timedelta(days=9)),
                StaffUser("p-staff", "p", "Sam"),
            ]
        )
        statements: list[str] = []
        sa.event.listen(
            store.engine, "before_cursor_execute", lambda *args: statements.append(args[2])
        )
        member = _member("m-new", practice="p", plan="p-plan")
        member = attrs.evolve(
            member,
            campaign_id="p-camp",
            staff_user_id="p-staff",
            dependents=(Patient("d1", "Dee"),),
        ).activate(at=NOW)
        store.members.add(member)
        assert [s.split()[0] for s in statements] == [
            "BEGIN",
            "SELECT",
            "SELECT",
            *["INSERT"] * 4,
        ]
        assert statements[1].split("FROM")[1].split()[0] == "campaigns"
        # Seven lookups in the one SELECT of the checks: the id, the practice's currency,
        # the plan, the campaign, the staff user, the campaign's plans (it must apply to
        # the member's), and the campaign's status at the enrolment.
        assert statements[2].count("UNION ALL") == 6
        statements.clear()
        store.members.save(member.suspend(at=NOW + timedelta(days=1), reason="away"))
        verbs = [" ".join(s.split()[:3]) for s in statements]
        assert len(statements) == 10, verbs
        writes = [s for s in statements if not s.startswith(("BEGIN", "SELECT"))]
        assert [" ".join(s.split()[:3]) for s in writes] == [
            "UPDATE members SET",
            "INSERT INTO members_history",
            "DELETE FROM members_active_spans",
            "INSERT INTO members_active_spans",
        ], writes
        assert store.members.get("m-new").status.value == "suspended"

    def test_a_status_save_that_cannot_reprice_a_charge_reads_none(self) -> None:
        """A member charged (failed) on 1 February, moved to Failed a minute later: as
        many statements as the same save of a member never charged (Failed bills as Active
        did). Suspended a minute after that: one more, the practice's time zone (a
        suspension bills only the days after it otherwise, so the charge is not read).
        Active again that day (which bills it) reads the charges and the plans too."""
        t0 = datetime(2026, 1, 1, 9, tzinfo=UTC)
        plan = MembershipPlan("gold", "p", "Gold", Money.of("30", "AUD"), BillingCycle.MONTHLY)

        def enrolled(id: str) -> Member:
            holder = Patient(f"{id}-pt", "Ada")
            member = Member.enrol(
                id=id,
                practice_id="p",
                plan_id="gold",
                account_holder=holder,
                start_date=t0.date(),
                at=t0,
            )
            return member.activate(at=t0)

        store = SqlStore.connect("sqlite://")
        store.load([Practice("p", "P", "UTC", "AUD"), plan, enrolled("m"), enrolled("n")])
        charged = t0 + timedelta(days=31)
        failed = PaymentOutcome.FAILED
        store.payments.add(Payment("c", "p", plan.price, PaymentKind.CHARGE, failed, charged, "m"))
        statements: list[str] = []
        sa.event.listen(
            store.engine, "before_cursor_execute", lambda *args: statements.append(args[2])
        )

        def counted(member_id: str, minutes: int, move: str) -> int:
            member = store.members.get(member_id)
            statements.clear()
            at = charged + timedelta(minutes=minutes)
            store.members.save(getattr(member, move)(at=at))
            return len(statements)

        assert counted("m", 1, "fail") == counted("n", 1, "fail")
        # The practice's time zone, read with its key held, tells that the suspension
        # bills only the days after the charge's otherwise.
        assert counted("m", 2, "suspend") == counted("n", 2, "suspend") + 1
        assert counted("m", 3, "activate") > counted("n", 3, "activate") + 1


NOW = DEMO_NOW


@pytest.mark.parametrize("make", [InMemoryStore, lambda: SqlStore.connect("sqlite://")])
def test_every_plan_a_member_was_on_must_be_kept(make: Any) -> None:
    """Both stores refuse a member whose plan changes name a plan they do not keep (or one
    of another practice), naming ``plan_changes``; the plans kept pass."""
    practice = Practice("p", "P", "Australia/Sydney", "AUD")
    other = Practice("q", "Q", "Australia/Sydney", "AUD")
    gold = MembershipPlan("gold", "p", "Gold", Money.of("30.00", "AUD"), BillingCycle.MONTHLY)
    theirs = MembershipPlan("theirs", "q", "Q", Money.of("30.00", "AUD"), BillingCycle.MONTHLY)
    store = make()
    store.load([practice, other, gold, theirs])
    member = Member.enrol(
        id="m1",
        practice_id="p",
        plan_id="gold",
        account_holder=Patient("h1", "Ada Lovelace"),
        start_date=NOW.date(),
        at=NOW,
    )
    for ghost, error in (("ghost", NotFound), ("theirs", InvalidValue)):
        moved = member.change_plan(ghost, at=NOW + timedelta(days=1))
        moved = moved.change_plan("gold", at=NOW + timedelta(days=2))
        with pytest.raises(error) as caught:
            store.members.add(moved)
        assert caught.value.field == "plan_changes"
    assert len(store.members) == 0


def _practice(size: int) -> list[object]:
    """A practice of ``size`` members enrolled over a year, most made Active, some
    suspended, each with a monthly charge."""
    practice = Practice("p", "P", "Australia/Sydney", "AUD")
    plan = MembershipPlan("p-plan", "p", "Plan", Money.of("30.00", "AUD"), BillingCycle.MONTHLY)
    objects: list[object] = [practice, plan]
    for i in range(size):
        at = NOW - timedelta(days=365 - i % 360, hours=i % 24)
        member = Member.enrol(
            id=f"m{i:04}",
            practice_id="p",
            plan_id=plan.id,
            account_holder=Patient(f"h{i}", f"Holder {i}"),
            start_date=at.date(),
            at=at,
        )
        if i % 5:
            member = member.activate(at=at + timedelta(hours=1))
            objects.append(
                Payment(
                    f"pay{i}",
                    "p",
                    Money.of("30.00", "AUD"),
                    PaymentKind.CHARGE,
                    PaymentOutcome.SUCCEEDED,
                    at + timedelta(hours=1),
                    member_id=member.id,
                )
            )
        if i % 7 == 0 and i % 5:
            member = member.suspend(at=at + timedelta(days=30))
        objects.append(member)
    return objects


def _contents(store: Any) -> dict[str, list[Any]]:
    return {name: sorted(getattr(store, name), key=lambda o: o.id) for name in STORE_TYPES}


class TestLoads:
    """A load is checked row by row like ``add`` but written in bulk: the same objects,
    the same refusals as InMemoryStore, whether the database is empty or not."""

    @SETTINGS
    @given(sps.datasets(), st.data())
    def test_a_load_in_two_parts_with_redelivered_payments(
        self, dataset: sps.Dataset, data: st.DataObject
    ) -> None:
        """The objects split at a random point and loaded in two loads, the second also
        re-delivering some payments of the first (a no-op), end up the same in both
        stores; the second load's refunds are checked against the first's charges."""
        objects = list(dataset.objects())
        cut = data.draw(st.integers(0, len(objects)))
        first, second = objects[:cut], objects[cut:]
        again = [o for o in first if isinstance(o, Payment)]
        second += data.draw(st.lists(st.sampled_from(again), max_size=3)) if again else []
        memory, sql = InMemoryStore(), SqlStore.connect("sqlite://")
        for part in (first, second):
            memory.load(part)
            sql.load(part)
        assert _contents(sql) == _contents(memory)

    @pytest.mark.parametrize("same_load", [True, False])
    def test_a_sign_up_through_an_ended_campaign_is_refused(self, same_load: bool) -> None:
        """A member enrolled after its campaign ended is refused by a load, naming the
        record and ``campaign_id``, whether the campaign comes in the same load or was
        kept before; one enrolled while it ran is kept. Both stores agree."""
        ended = Campaign("p-camp", "p", "Spring", "SPRING", NOW - timedelta(days=30), NOW)
        base = [*_practice(0), ended]
        during = Member.enrol(
            id="m-in",
            practice_id="p",
            plan_id="p-plan",
            account_holder=Patient("h1", "Holder"),
            start_date=NOW.date(),
            at=NOW - timedelta(days=1),
            campaign_id="p-camp",
        )
        late = attrs.evolve(_member("m-late"), campaign_id="p-camp")  # enrolled at NOW
        for store in (InMemoryStore(), SqlStore.connect("sqlite://")):
            if not same_load:
                store.load(base)
            with pytest.raises(InvalidRecord) as caught:
                store.load([*(base if same_load else []), during, late])
            assert (caught.value.field, caught.value.index) == ("campaign_id", 1 + 3 * same_load)
            assert "campaign_not_active" in str(caught.value.__cause__.rule)  # type: ignore[union-attr]
            store.load([*(base if same_load else []), during])
            assert store.members.get("m-in") == during

    @SETTINGS
    @given(sps.datasets(), st.data())
    def test_refusals_name_the_same_record(self, dataset: sps.Dataset, data: st.DataObject) -> None:
        """Loading an object twice (again in the same load, or one already kept), or a
        payment id again with other content: both stores refuse with the same table,
        index and field, and the SQL store keeps nothing of the load."""
        objects = list(dataset.objects())
        kept = data.draw(st.booleans())
        twice = data.draw(st.sampled_from(objects))
        if isinstance(twice, Payment):
            twice = attrs.evolve(twice, at=twice.at + timedelta(seconds=1))
        load = [*objects, twice]
        memory, sql = InMemoryStore(), SqlStore.connect("sqlite://")
        if kept:
            memory.load(objects)
            sql.load(objects)
            load = [twice]
        before = _contents(sql)
        with pytest.raises(InvalidRecord) as expected:
            memory.load(load)
        with pytest.raises(InvalidRecord) as got:
            sql.load(load)
        assert (got.value.table, got.value.index, got.value.field) == (
            expected.value.table,
            expected.value.index,
            expected.value.field,
        )
        assert type(got.value.__cause__) is type(expected.value.__cause__)
        assert _contents(sql) == before


_P = Practice("p", "P", "Australia/Sydney", "AUD")
_Q = Practice("q", "Q", "UTC", "USD")
_PLAN = MembershipPlan("p-plan", "p", "Plan", Money.of("30.00", "AUD"), BillingCycle.MONTHLY)
_QPLAN = MembershipPlan("q-plan", "q", "Plan", Money.of("30.00", "USD"), BillingCycle.MONTHLY)


def _member(id: str = "m1", practice: str = "p", plan: str = "p-plan") -> Member:
    return Member.enrol(
        id=id,
        practice_id=practice,
        plan_id=plan,
        account_holder=Patient("h1", "Holder"),
        start_date=NOW.date(),
        at=NOW,
    )


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest) -> Any:
    """Both stores, each holding two practices and a plan in each."""
    made: Any = InMemoryStore() if request.param == "memory" else SqlStore.connect("sqlite://")
    made.load([_P, _Q, _PLAN, _QPLAN])
    return made


class TestTheSameRules:
    """SqlStore refuses what InMemoryStore refuses, with the same errors."""

    def test_an_unknown_practice(self, store: Any) -> None:
        with pytest.raises(NotFound) as caught:
            store.members.add(_member(practice="nowhere"))
        assert (caught.value.kind, caught.value.id, caught.value.field) == (
            "Practice",
            "nowhere",
            "practice_id",
        )

    def test_a_reference_into_another_practice(self, store: Any) -> None:
        with pytest.raises(InvalidValue, match="belongs to practice q, not p") as caught:
            store.members.add(_member(plan="q-plan"))
        assert caught.value.field == "plan_id"

    def test_an_amount_in_another_currency(self, store: Any) -> None:
        plan = attrs.evolve(_PLAN, id="p-usd", price=Money.of("30.00", "USD"))
        with pytest.raises(CurrencyMismatch) as caught:
            store.membership_plans.add(plan)
        assert (caught.value.left, caught.value.right, caught.value.field) == (
            "USD",
            "AUD",
            "price",
        )

    def test_a_practice_holding_amounts_keeps_its_currency(self, store: Any) -> None:
        with pytest.raises(RuleViolation) as caught:
            store.practices.save(attrs.evolve(_P, currency="NZD"))
        assert caught.value.rule == "currency_in_use"
        empty_practice = Practice("r", "R", "UTC", "AUD")
        store.practices.add(empty_practice)
        store.practices.save(attrs.evolve(empty_practice, currency="NZD"))
        assert store.practices.get("r").currency == "NZD"
        assert store.practices.version("r") == 2

    def test_wrong_types_and_unknown_ids(self, store: Any) -> None:
        with pytest.raises(InvalidValue):
            store.members.add(_P)
        with pytest.raises(InvalidValue):
            store.members.save(_P)
        with pytest.raises(InvalidValue):
            store.members.find(PaymentPlanQuery())
        with pytest.raises(NotFound):
            store.members.get(3)
        with pytest.raises(NotFound):
            store.members.version("nobody")
        with pytest.raises(NotFound):
            store.members.save(_member())
        with pytest.raises(RuleViolation) as caught:
            store.payments.save(
                Payment(
                    "x",
                    "p",
                    Money.of("1.00", "AUD"),
                    PaymentKind.CHARGE,
                    PaymentOutcome.SUCCEEDED,
                    NOW,
                    member_id="m1",
                )
            )
        assert caught.value.rule == "append_only"

    def test_a_reprice_is_judged_at_each_members_last_charge(self, store: Any) -> None:
        """m1 is charged on its first two billing dates (25 November and 25 December), twice
        at one instant on the second (the later by id, m1-c, is the last); m2 on the first
        only. A reprice from 25 December is refused naming m1-c; from 26 December it is
        kept."""
        m1, m2 = (_member(id).activate(at=NOW) for id in ("m1", "m2"))
        store.load([m1, m2])

        def charge(id: str, days: int) -> Payment:
            at = NOW + timedelta(days=days, hours=1)
            member = id.split("-")[0]
            return Payment(id, "p", _PLAN.price, "charge", "succeeded", at, member_id=member)

        for entry in (charge("m1-a", 0), charge("m2-a", 0), charge("m1-b", 30)):
            store.payments.add(entry)
        store.payments.add(charge("m1-c", 30))
        dearer = Money.of("40.00", "AUD")
        with pytest.raises(RuleViolation, match=r"member m1 .*last charge m1-c") as caught:
            store.membership_plans.save(_PLAN.reprice(dearer, on=date(2026, 12, 25)))
        assert caught.value.rule == "reprice_backdated"
        later = _PLAN.reprice(dearer, on=date(2026, 12, 26))
        store.membership_plans.save(later)
        assert store.membership_plans.get(_PLAN.id) == later

    def test_nested_atomic_blocks_are_one(self, store: Any) -> None:
        with store.atomic() as outer, outer.atomic() as inner:
            inner.members.add(_member())
        assert store.members.get("m1") == _member()


# -- payment-plan templates ------------------------------------------------------------------

#: Offered from 500 to 15,000 over 6 or 12 instalments, a 100.00 deposit, up to 60 days'
#: deferral, to Active members only.
_ORTHO = PaymentPlanTemplate(
    "p-ortho",
    "p",
    "Ortho",
    Money.of("500.00", "AUD"),
    Money.of("15000.00", "AUD"),
    (6, 12),
    max_deferral_days=60,
    members_only=True,
    deposit=Money.of("100.00", "AUD"),
)
_OFFERED = NOW + timedelta(days=1)  # 26 November, 16:00 in Sydney


def _active_member() -> Member:
    return _member().activate(at=NOW)


def _offer(template: PaymentPlanTemplate = _ORTHO, id: str = "pp1", **changes: Any) -> PaymentPlan:
    """A plan of 1,300.00 (the deposit, then 12 instalments from 1 December) offered from
    ``template`` to the active member m1's holder."""
    fields: dict[str, Any] = {
        "id": id,
        "patient": Patient("h1", "Holder"),
        "total": Money.of("1300.00", "AUD"),
        "instalments": 12,
        "first_due": date(2026, 12, 1),
        "at": _OFFERED,
        "timezone": _P.timezone,
        "member": _active_member(),
    } | changes
    return offer_from_template(template, **fields)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def offering(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each store (SQLite a file; PostgreSQL the run's server), holding practices p (AUD,
    Sydney) and q (USD), their membership plans, the active member m1 and the template
    Ortho of p."""
    store: Any
    if request.param == "memory":
        store = InMemoryStore()
    elif request.param == "postgresql":
        store = empty(request.getfixturevalue("postgres_engine"))
    else:
        store = SqlStore.connect(f"sqlite:///{tmp_path / 'store.db'}")
    store.load([_P, _Q, _PLAN, _QPLAN, _active_member(), _ORTHO])
    yield store
    if request.param == "sqlite":
        store.engine.dispose()


class TestTemplates:
    """Every store keeps payment-plan templates and the plans offered from them by the
    same rules as InMemoryStore (the SQL store on SQLite and PostgreSQL)."""

    def test_a_template_and_its_offer_read_back_equal(self, offering: Any) -> None:
        """The template (its instalment counts, deposit and retirement) and a plan offered
        from it come back equal, by id and by query; accepting the plan keeps it so."""
        plan = _offer()
        offering.payment_plans.add(plan)
        retired = attrs.evolve(_ORTHO, id="p-old", deposit=None, retired_at=NOW)
        offering.payment_plan_templates.add(retired)
        assert offering.payment_plan_templates.get("p-ortho") == _ORTHO
        assert offering.payment_plan_templates.find(ScopeQuery(practices={"p"})) == [
            retired,
            _ORTHO,
        ]
        assert offering.payment_plan_templates.count(ScopeQuery(practices={"q"})) == 0
        assert sorted(offering.payment_plan_templates, key=lambda t: t.id) == [retired, _ORTHO]
        assert offering.payment_plans.get("pp1") == plan
        assert plan.template_id == "p-ortho"
        accepted = plan.activate(at=_OFFERED + timedelta(hours=1))
        offering.payment_plans.save(accepted)
        assert offering.payment_plans.get("pp1") == accepted
        assert offering.payment_plans.version("pp1") == 2

    def test_an_unknown_template_or_one_of_another_practice_is_refused(self, offering: Any) -> None:
        """A plan naming a template no store keeps raises NotFound naming ``template_id``;
        one naming another practice's template raises InvalidValue naming it."""
        with pytest.raises(NotFound) as caught:
            offering.payment_plans.add(attrs.evolve(_offer(), template_id="nowhere"))
        assert (caught.value.kind, caught.value.id, caught.value.field) == (
            "PaymentPlanTemplate",
            "nowhere",
            "template_id",
        )
        theirs = attrs.evolve(
            _ORTHO,
            id="q-ortho",
            practice_id="q",
            min_total=Money.of("500.00", "USD"),
            max_total=Money.of("15000.00", "USD"),
            deposit=None,
        )
        offering.payment_plan_templates.add(theirs)
        with pytest.raises(InvalidValue, match="belongs to practice q, not p") as wrong:
            offering.payment_plans.add(attrs.evolve(_offer(), template_id="q-ortho"))
        assert wrong.value.field == "template_id"
        assert offering.payment_plans.count(PaymentPlanQuery()) == 0

    def test_a_plan_that_is_no_offer_of_its_template_is_refused(self, offering: Any) -> None:
        """A plan whose length the template does not offer, or a kept offer saved with a
        due date moved, raises RuleViolation ``template`` naming the broken rules; a plan
        offered to no member from a members-only template too. Nothing is kept of them."""
        six_only = attrs.evolve(_ORTHO, id="p-six", instalment_counts=(6,))
        offering.payment_plan_templates.add(six_only)
        with pytest.raises(RuleViolation) as caught:
            offering.payment_plans.add(attrs.evolve(_offer(), template_id="p-six"))
        assert caught.value.rule == "template"
        assert caught.value.context["broken"] == ("instalments",)
        with pytest.raises(RuleViolation) as alone:
            offering.payment_plans.add(attrs.evolve(_offer(), member_id=None))
        assert alone.value.context["broken"] == ("members_only",)
        assert offering.payment_plans.count(PaymentPlanQuery()) == 0
        plan = _offer()
        offering.payment_plans.add(plan)
        moved = attrs.evolve(
            plan,
            schedule=(
                *plan.schedule[:3],
                attrs.evolve(plan.schedule[3], due_date=date(2027, 2, 2)),
                *plan.schedule[4:],
            ),
        )
        with pytest.raises(RuleViolation) as saved:
            offering.payment_plans.save(moved)
        assert (saved.value.rule, saved.value.context["broken"]) == ("template", ("schedule",))
        assert offering.payment_plans.get("pp1") == plan

    def test_a_template_with_kept_offers_keeps_its_terms(self, offering: Any) -> None:
        """Once a plan was offered from it, a template's save that changes a term, or
        retires it at the offer, raises RuleViolation ``template_in_use`` naming the field;
        a new name, or a retirement after the offer, is kept."""
        offering.payment_plans.add(_offer())
        for changed, field in [
            (attrs.evolve(_ORTHO, max_total=Money.of("20000.00", "AUD")), "max_total"),
            (attrs.evolve(_ORTHO, instalment_counts=(6, 12, 24)), "instalment_counts"),
            (attrs.evolve(_ORTHO, members_only=False), "members_only"),
            (_ORTHO.retire(at=_OFFERED), "retired_at"),
        ]:
            with pytest.raises(RuleViolation) as caught:
                offering.payment_plan_templates.save(changed)
            assert (caught.value.rule, caught.value.field) == ("template_in_use", field)
            assert caught.value.context["template_id"] == "p-ortho"
        assert offering.payment_plan_templates.get("p-ortho") == _ORTHO
        renamed = attrs.evolve(_ORTHO, name="Orthodontics")
        offering.payment_plan_templates.save(renamed)
        retired = renamed.retire(at=_OFFERED + timedelta(seconds=1))
        offering.payment_plan_templates.save(retired)
        assert offering.payment_plan_templates.get("p-ortho") == retired
        assert offering.payment_plan_templates.version("p-ortho") == 3
        # Without a kept offer, any change is kept.
        spare = attrs.evolve(_ORTHO, id="p-spare")
        offering.payment_plan_templates.add(spare)
        wider = attrs.evolve(spare, max_total=Money.of("20000.00", "AUD"))
        offering.payment_plan_templates.save(wider)
        assert offering.payment_plan_templates.get("p-spare") == wider

    def test_a_template_in_another_currency_is_refused(self, offering: Any) -> None:
        """A template whose amounts are not in its practice's currency raises
        CurrencyMismatch naming ``min_total``."""
        usd = attrs.evolve(
            _ORTHO,
            id="p-usd",
            min_total=Money.of("500.00", "USD"),
            max_total=Money.of("15000.00", "USD"),
            deposit=None,
        )
        with pytest.raises(CurrencyMismatch) as caught:
            offering.payment_plan_templates.add(usd)
        assert (caught.value.left, caught.value.right, caught.value.field) == (
            "USD",
            "AUD",
            "min_total",
        )
        with pytest.raises(NotFound):
            offering.payment_plan_templates.get("p-usd")

    def test_a_practice_keeping_a_template_keeps_its_currency(self, offering: Any) -> None:
        """A practice whose only amounts are a template's cannot change its currency
        (``currency_in_use``), and is kept as it was."""
        bare = Practice("r", "R", "UTC", "AUD")
        offering.practices.add(bare)
        offering.payment_plan_templates.add(attrs.evolve(_ORTHO, id="r-ortho", practice_id="r"))
        with pytest.raises(RuleViolation, match="PaymentPlanTemplate") as caught:
            offering.practices.save(attrs.evolve(bare, currency="NZD"))
        assert (caught.value.rule, caught.value.field) == ("currency_in_use", "currency")
        assert offering.practices.get("r") == bare

    @pytest.mark.parametrize("kept_before", [False, True])
    def test_a_load_offers_from_a_template_it_brings_or_keeps(
        self, offering: Any, kept_before: bool
    ) -> None:
        """A load bringing a template and plans offered from it (or plans offered from a
        kept template) keeps them; one whose plan is no offer of the template raises
        InvalidRecord naming that plan, and keeps nothing of the load."""
        wide = attrs.evolve(_ORTHO, id="p-wide", members_only=False, deposit=None)
        plans = [
            _offer(wide, "pp1"),
            _offer(wide, "pp2", member=None, total=Money.of("600.00", "AUD"), instalments=6),
        ]
        if kept_before:
            offering.payment_plan_templates.add(wide)
        head = [] if kept_before else [wide]
        bad = attrs.evolve(plans[1], id="pp3", template_id="p-six")
        with pytest.raises(InvalidRecord) as caught:
            offering.load([*head, attrs.evolve(_ORTHO, id="p-six", instalment_counts=(6,)), bad])
        assert (caught.value.table, caught.value.index) == ("PaymentPlan", len(head) + 1)
        assert caught.value.__cause__.rule == "template"  # type: ignore[union-attr]
        assert offering.payment_plan_templates.count(ScopeQuery()) == 1 + kept_before
        offering.load([*head, *plans])
        assert offering.payment_plan_templates.get("p-wide") == wide
        assert offering.payment_plans.find(PaymentPlanQuery()) == plans


class TestTemplatesInSql:
    """How the SQL store keeps templates: its columns, its statements, its locks."""

    @pytest.mark.parametrize(
        ("raw", "said"),
        [
            ('"6, 12"', "not a JSON array of whole numbers"),
            ("[6, true]", "not a JSON array of whole numbers"),
            ("[6, 12.5]", "not a JSON array of whole numbers"),
            ("six", "Expecting value"),
            ("[12, 6]", "strictly increasing"),
        ],
    )
    def test_instalment_counts_another_program_wrote_are_refused(
        self, tmp_path: Path, raw: str, said: str
    ) -> None:
        """``instalment_counts`` is a JSON array of whole numbers, in order: anything else
        in the column (a string, a yes/no, a fraction, text that is no JSON, counts out
        of order) raises InvalidRow naming the table, the template and the column."""
        store = SqlStore.connect(f"sqlite:///{tmp_path / 'x.db'}")
        store.load([_P, _ORTHO])
        with store.engine.connect() as conn:
            kept = conn.execute(sa.text("SELECT instalment_counts FROM payment_plan_templates"))
            assert kept.scalar_one() == "[6, 12]"
        with store.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE payment_plan_templates SET instalment_counts = :raw"), {"raw": raw}
            )
        with pytest.raises(InvalidRow) as caught:
            store.payment_plan_templates.get("p-ortho")
        assert (caught.value.table, caught.value.id, caught.value.column) == (
            "payment_plan_templates",
            "p-ortho",
            "instalment_counts",
        )
        assert said in caught.value.reason
        store.engine.dispose()

    def test_an_offer_reads_its_template_once_and_a_save_keeping_it_not_at_all(self) -> None:
        """Adding a plan offered from a kept template to a member: the checks' one lookup,
        the template's row (held for share), the member (its row held for share, its child
        rows), the practice's time zone (its key held: a time-zone change waits), then the
        inserts. Accepting it later reads neither the template nor the member: the offer
        did not change."""
        store = SqlStore.connect("sqlite://")
        store.load([_P, _PLAN, _active_member(), _ORTHO])
        statements: list[str] = []
        sa.event.listen(
            store.engine, "before_cursor_execute", lambda *args: statements.append(args[2])
        )
        plan = _offer()
        store.payment_plans.add(plan)
        reads = [s for s in statements if s.startswith("SELECT")]
        assert len(reads) == 5, reads
        assert reads[1].split("FROM")[1].split()[0] == "payment_plan_templates"
        tables = [r.split("FROM")[1].split()[0] for r in reads[2:]]
        assert tables == ["members", "(SELECT", "practices"]
        assert reads[4].startswith("SELECT practices.timezone")
        statements.clear()
        store.payment_plans.save(plan.activate(at=_OFFERED + timedelta(hours=1)))
        # BEGIN, the version, the old plan (two), the checks' lookup, UPDATE, history.
        assert len(statements) == 7, statements
        rows = ("SELECT payment_plan_templates.", "SELECT members.")
        assert not any(s.startswith(rows) for s in statements), statements
        assert store.payment_plans.get("pp1").status.value == "active"

    @pytest.mark.parametrize("first", ["change", "offer"])
    def test_an_offer_and_a_change_of_terms_racing_are_checked_one_after_the_other(
        self, postgres_engine: sa.Engine, first: str
    ) -> None:
        """PostgreSQL: session A saves Ortho offering 6 instalments only (or adds a plan of
        12 offered from it) inside an open transaction; session B adds that plan (or saves
        that change). B waits on the template's row, and once A commits B is refused: no
        plan is kept that its template's terms no longer offer."""
        engine = postgres_engine
        a, b = empty(engine), SqlStore(engine)
        a.load([_P, _PLAN, _active_member(), _ORTHO])
        plan, six = _offer(), attrs.evolve(_ORTHO, instalment_counts=(6,))
        if first == "change":
            outcome = _race(
                a,
                lambda: a.payment_plan_templates.save(six),
                lambda: b.payment_plans.add(plan),
            )
        else:
            outcome = _race(
                a,
                lambda: a.payment_plans.add(plan),
                lambda: b.payment_plan_templates.save(six),
            )
        assert isinstance(outcome, RuleViolation)
        kept = a.payment_plans.find(PaymentPlanQuery())
        if first == "change":
            assert outcome.rule == "template"
            assert (a.payment_plan_templates.get("p-ortho"), kept) == (six, [])
        else:
            assert outcome.rule == "template_in_use"
            assert (a.payment_plan_templates.get("p-ortho"), kept) == (_ORTHO, [plan])


class TestCampaignCodes:
    """Two sessions writing one practice's campaigns check their codes one after the other."""

    @pytest.mark.parametrize("kind", ["add", "start"])
    def test_two_campaigns_racing_for_a_code_keep_one(
        self, postgres_engine: sa.Engine, kind: str
    ) -> None:
        """PostgreSQL: session A adds Spring (code BLOOM, Active from now) inside an open
        transaction; session B adds Summer with code bloom (or starts a kept Draft with
        it). B waits on the practice's row, and once A commits B is refused: the practice
        never keeps two Active campaigns on one code. Its members' inserts do not wait."""
        engine = postgres_engine
        a, b = empty(engine), SqlStore(engine)
        start = NOW - timedelta(days=1)
        draft = Campaign.draft(
            id="summer",
            practice_id="p",
            name="Summer",
            promo_code="bloom",
            active_from=start,
            at=start - timedelta(days=1),
        )
        a.load([_P, _PLAN, *([draft] if kind == "start" else [])])
        spring = Campaign("spring", "p", "Spring", "BLOOM", start)
        late = Campaign("summer", "p", "Summer", "bloom", start)
        second = (
            (lambda: b.campaigns.add(late))
            if kind == "add"
            else (lambda: b.campaigns.save(draft.activate(at=start)))
        )

        def first() -> None:
            a.campaigns.add(spring)
            added = threading.Event()

            def member() -> None:  # its insert takes the practice's key share
                SqlStore(engine).members.add(_active_member())
                added.set()

            threading.Thread(target=member, daemon=True).start()
            assert added.wait(10), "a member's insert must not wait for a campaign write"

        outcome = _race(a, first, second)
        assert isinstance(outcome, RuleViolation)
        assert outcome.rule == "promo_code_in_use"
        kept = {c.id: c for c in a.campaigns.find(ScopeQuery())}
        assert kept["spring"] == spring
        assert kept.get("summer") == (None if kind == "add" else draft)


class TestWhatJudgesAnOffer:
    """PostgreSQL: what a template plan's offer is judged by cannot change under it."""

    @pytest.mark.parametrize("first", ["member", "timezone"])
    def test_an_offer_racing_a_change_of_what_judges_it_is_refused(
        self, postgres_engine: sa.Engine, first: str
    ) -> None:
        """Session A suspends member m1 from before the offer (or moves the practice to
        Los Angeles, where the offer's local day is the day before) in an open
        transaction; session B adds the members-only plan offered to m1. B waits on the
        member's row (the practice's key), and once A commits B is refused: no plan is
        kept that what judges it no longer allows."""
        engine = postgres_engine
        a, b = empty(engine), SqlStore(engine)
        a.load([_P, _PLAN, _active_member(), _ORTHO])
        if first == "member":
            change = lambda: a.members.save(_active_member().suspend(at=NOW + timedelta(hours=1)))  # noqa: E731
        else:
            change = lambda: a.practices.save(attrs.evolve(_P, timezone="America/Los_Angeles"))  # noqa: E731
        outcome = _race(a, change, lambda: b.payment_plans.add(_offer()))
        assert isinstance(outcome, RuleViolation)
        assert outcome.rule == "template"
        assert a.payment_plans.find(PaymentPlanQuery()) == []

    def test_a_campaign_save_and_a_practice_write_then_sign_up_do_not_deadlock(
        self, postgres_engine: sa.Engine
    ) -> None:
        """Session A adds campaign D (holding the practice's row), then in the same
        transaction signs a member up through kept campaign C; session B meanwhile saves
        C paused. B takes the practice's row before C's, as A did: B waits, A commits,
        then B's pause is kept (after the sign-up)."""
        engine = postgres_engine
        a, b = empty(engine), SqlStore(engine)
        start = NOW - timedelta(days=30)
        kept = Campaign("c", "p", "C", "CCC", start)
        a.load([_P, _PLAN, kept])
        joined = attrs.evolve(_member(), campaign_id="c")
        paused = kept.pause(at=NOW + timedelta(days=2))
        outcome: list[object] = []

        def session_b() -> None:
            try:
                b.campaigns.save(paused)
                outcome.append("kept")
            except sa.exc.DBAPIError as error:  # a deadlock PostgreSQL broke
                outcome.append(error)

        with a.atomic():
            a.campaigns.add(Campaign("d", "p", "D", "DDD", start))
            thread = threading.Thread(target=session_b)
            thread.start()
            thread.join(0.5)
            assert thread.is_alive(), "B must wait for the practice's row"
            a.members.add(joined)  # holds C's row for share
        thread.join(10)
        assert outcome == ["kept"]
        assert (a.campaigns.get("c"), a.members.get("m1")) == (paused, joined)

    def test_inside_atomic_a_clash_fails_to_serialise_instead_of_landing(
        self, postgres_engine: sa.Engine
    ) -> None:
        """Session A (``atomic()``, REPEATABLE READ) reads the campaigns first; session B
        then adds Spring (code BLOOM) and commits; A adding Summer (code bloom) cannot
        see Spring in its snapshot, and fails to serialise: no clash is kept."""
        engine = postgres_engine
        a, b = empty(engine), SqlStore(engine)
        start = NOW - timedelta(days=1)
        a.load([_P, _PLAN])

        def clash() -> None:
            with a.atomic():
                assert a.campaigns.count(ScopeQuery()) == 0  # A's snapshot starts here
                b.campaigns.add(Campaign("spring", "p", "Spring", "BLOOM", start))
                a.campaigns.add(Campaign("summer", "p", "Summer", "bloom", start))

        with pytest.raises(sa.exc.OperationalError, match="serialize"):
            clash()
        assert [c.id for c in a.campaigns.find(ScopeQuery())] == ["spring"]


class TestInstants:
    """Instants are kept as UTC and must carry a zone."""

    def test_a_naive_instant_is_refused_and_an_aware_one_kept_in_utc(self) -> None:
        kind = UtcInstant()
        dialect = sa.create_engine("sqlite://").dialect
        with pytest.raises(NaiveDatetime):
            kind.process_bind_param(datetime(2026, 1, 1), dialect)
        sydney = datetime(2026, 1, 1, 11, tzinfo=ZoneInfo("Australia/Sydney"))
        assert kind.process_bind_param(sydney, dialect) == datetime(2026, 1, 1, 0)
        back = kind.process_result_value(datetime(2026, 1, 1, 0), dialect)
        assert back == sydney
        assert back.tzinfo is UTC
        # A column another program declared with a zone comes back in UTC too.
        assert kind.process_result_value(sydney, dialect).tzinfo is UTC

    def test_fractional_minor_units_are_refused_when_read(self, tmp_path: Path) -> None:
        """SQLite keeps whatever it is given: 12.5 cents is refused, naming the column."""
        store = SqlStore.connect(f"sqlite:///{tmp_path / 'x.db'}")
        store.load([_P, _PLAN])
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE membership_plans SET price_minor = 12.5")
        with pytest.raises(InvalidRow) as caught:
            store.membership_plans.get("p-plan")
        assert caught.value.column == "price_minor"
        assert "not a whole number" in caught.value.reason


class TestDays:
    """Dates are kept as dates; text that is no date is refused when read."""

    def test_text_in_a_date_column_is_refused_naming_it(self, tmp_path: Path) -> None:
        """SQLite stores any text in a date column: "yesterday" is an InvalidRow naming
        ``start_date``, not a parser's bare ValueError; a real date round-trips."""
        store = SqlStore.connect(f"sqlite:///{tmp_path / 'x.db'}")
        store.load([_P, _PLAN, _member()])
        assert store.members.get("m1").start_date == NOW.date()
        found = store.members.find(MemberQuery(start_from=NOW.date(), start_until=NOW.date()))
        assert [m.id for m in found] == ["m1"]
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE members SET start_date = 'yesterday'")
        with pytest.raises(InvalidRow) as caught:
            store.members.get("m1")
        assert (caught.value.table, caught.value.id, caught.value.column) == (
            "members",
            "m1",
            "start_date",
        )
        assert "'yesterday' is not a date" in caught.value.reason
