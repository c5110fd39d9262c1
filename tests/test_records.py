"""Plain records: round trips, and every bad record refused with its table, index and field."""

import copy
import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings

from smilepass_core import (
    InMemoryStore,
    InvalidRecord,
    InvalidValue,
    MemberQuery,
    MembershipStatus,
    Money,
    Patient,
    PaymentPlan,
    PaymentPlanTemplate,
    PaymentType,
    Practice,
    ScopeQuery,
    StatusChange,
)
from smilepass_core.demo import demo_store, load_demo
from smilepass_core.domain import offer_from_template
from smilepass_core.io.records import (
    TABLES,
    from_records,
    load_records,
    store_from_records,
    to_records,
)
from smilepass_core.testing import strategies as sps


def _demo_objects() -> list[Any]:
    return list(load_demo().objects())


def _demo_tables(objects: list[Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    written = to_records(_demo_objects() if objects is None else objects)
    return json.loads(json.dumps(written))


DEMO = _demo_tables()


def _refused(tables: dict[str, Any]) -> InvalidRecord:
    with pytest.raises(InvalidRecord) as caught:
        from_records(tables)
    return caught.value


def _assert_names(error: InvalidRecord, table: str, index: int, field: str, reason: str) -> None:
    """The error names exactly this table, row, field and reason, and says so in its message."""
    assert (error.table, error.index, error.field, error.reason) == (table, index, field, reason)
    assert str(error) == f"{table}[{index}].{field}: {reason}"


Path = tuple[str | int, ...]


def _with(table: str, index: int, path: Path, value: Any) -> dict[str, list[dict[str, Any]]]:
    """The demo's ``table`` up to record ``index``, that record with ``value`` set at ``path``."""
    record = copy.deepcopy(DEMO[table][index])
    target: Any = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return {table: [*DEMO[table][:index], record]}


def _dig(obj: Any, path: Path) -> Any:
    """Follow ``path`` through an object: names are attributes, numbers are positions."""
    for key in path:
        obj = obj[key] if isinstance(key, int) else getattr(obj, key)
    return obj


SYDNEY = ZoneInfo("Australia/Sydney")
PENDING, ACTIVE = MembershipStatus.PENDING, MembershipStatus.ACTIVE


def _aud(amount: str) -> Money:
    return Money.of(amount, "AUD")


def template_objects(*, deposit: bool = True, retired: bool = True) -> tuple[Any, ...]:
    """A practice, a template (with or without a deposit and a retirement), a plan offered
    from it and a plan offered without one: as an export holds them, in load order."""
    practice = Practice("syd", "Harbour Dental", "Australia/Sydney", "AUD")
    template = PaymentPlanTemplate(
        id="syd-t-ortho",
        practice_id="syd",
        name="Orthodontics",
        min_total=_aud("1000"),
        max_total=_aud("8000.00"),
        instalment_counts=(6, 12, 24),
        max_deferral_days=30,
        deposit=_aud("250.00") if deposit else None,
        retired_at=datetime(2026, 9, 1, tzinfo=UTC) if retired else None,
    )
    offered = offer_from_template(
        template,
        id="syd-pp-1",
        patient=Patient("pat1", "Ada Lovelace"),
        total=_aud("4015.00"),
        instalments=6,
        first_due=date(2026, 8, 17),
        at=datetime(2026, 8, 8, 2, 20, tzinfo=UTC),
        timezone="Australia/Sydney",
    )
    plain = PaymentPlan.offer(
        id="syd-pp-2",
        practice_id="syd",
        patient=Patient("pat2", "Grace Hopper"),
        total=_aud("300.00"),
        payment_type=PaymentType.PLAN,
        first_due=date(2026, 8, 20),
        at=datetime(2026, 8, 8, 3, tzinfo=UTC),
        instalments=3,
        timezone="Australia/Sydney",
    )
    return practice, template, offered, plain


class TestRoundTrip:
    """to_records and from_records are inverses, through JSON too."""

    @settings(max_examples=50)
    @given(sps.datasets())
    def test_every_object_survives_a_json_round_trip(self, dataset: sps.Dataset) -> None:
        """Objects -> records -> JSON -> records -> objects gives the same objects in order."""
        tables = json.loads(json.dumps(to_records(dataset.objects())))
        assert [obj for _, _, obj in from_records(tables)] == list(dataset.objects())

    def test_the_demo_loads_from_records_like_from_objects(self) -> None:
        """A store loaded from the demo's records answers like one loaded from its objects."""
        from_recs = store_from_records(DEMO)
        from_objs = demo_store()
        for name in TABLES:
            assert len(getattr(from_recs, name)) == len(getattr(from_objs, name))
        query = MemberQuery(statuses={"active"})
        assert from_recs.members.count(query) == from_objs.members.count(query) > 0

    def test_flat_strings_as_read_from_csv_are_accepted(self) -> None:
        """Empty strings mean absent, and booleans and numbers may be strings."""
        tables = copy.deepcopy(DEMO)
        plan = next(p for p in tables["payment_plans"] if p["attempts"])
        plan["member_id"] = ""
        plan["archived_at"] = ""
        for attempt in plan["attempts"]:
            attempt["succeeded"] = "true" if attempt["succeeded"] else "false"
            attempt["number"] = str(attempt["number"])
        parsed = {(t, i): o for t, i, o in from_records({"payment_plans": [plan]})}
        assert parsed["payment_plans", 0].member_id is None
        assert parsed["payment_plans", 0].attempts[0].number == 1

    def test_the_demo_records_load_as_the_very_same_objects(self) -> None:
        """Every demo record, dependents and attempt payment ids included, parses back equal.

        The records are written here, not taken from the module-level ``DEMO`` (built at
        import), so that writing them is part of this test (as mutation testing sees it).
        """
        objects = _demo_objects()
        assert [obj for _, _, obj in from_records(_demo_tables(objects))] == objects

    @pytest.mark.parametrize(
        ("table", "index", "path", "value", "expected"),
        [
            *[
                ("payment_plans", 9, ("attempts", 5, "succeeded"), text, parsed)
                for text, parsed in [
                    ("true", True),
                    ("1", True),
                    ("yes", True),
                    (" YES ", True),
                    ("false", False),
                    ("0", False),
                    ("no", False),
                    ("No", False),
                    (False, False),
                ]
            ],
            ("payment_plans", 0, ("attempts", 1, "number"), " 2 ", 2),
            ("payment_plans", 0, ("attempts", 1, "payment_id"), " pay-7 ", "pay-7"),
            ("payment_plans", 0, ("attempts", 1, "payment_id"), "", None),
            ("members", 4, ("start_date",), date(2024, 2, 29), date(2024, 2, 29)),
            (
                "payments",
                3,
                ("at",),
                datetime(2026, 1, 1, 11, 30, tzinfo=SYDNEY),
                datetime(2026, 1, 1, 0, 30, tzinfo=UTC),
            ),
            (
                "members",
                0,
                ("history",),
                [
                    {"at": "2025-06-02T01:40:00+00:00", "to": "pending"},
                    {"at": "2025-06-02T11:54:00+10:00", "to": "Active", "reason": ""},
                ],
                (
                    StatusChange(datetime(2025, 6, 2, 1, 40, tzinfo=UTC), None, PENDING, ""),
                    StatusChange(datetime(2025, 6, 2, 1, 54, tzinfo=UTC), PENDING, ACTIVE, ""),
                ),
            ),
        ],
    )
    def test_an_accepted_value_is_parsed(
        self, table: str, index: int, path: Path, value: Any, expected: Any
    ) -> None:
        """Flat strings, native dates and instants, and ``to`` history keys parse exactly."""
        loaded = from_records(_with(table, index, path, value))
        assert loaded[-1][:2] == (table, index)
        assert _dig(loaded[-1][2], path) == expected


class TestRefusals:
    """A bad record raises InvalidRecord naming table, index and field; nothing is loaded."""

    @pytest.mark.parametrize(
        ("table", "index", "field", "value", "expected_field", "reason"),
        [
            ("members", 5, "start_date", "2026-13-01", "start_date", "month"),
            ("members", 2, "plan_id", "", "plan_id", "required"),
            ("payments", 3, "amount", "1.234", "amount", "2 decimals"),
            ("payments", 4, "amount", 12.5, "amount", "float"),
            ("payments", 1, "kind", "chargeback", "kind", "allowed: charge, refund"),
            ("payments", 0, "at", "2026-01-01T00:00:00", "at", "naive"),
            ("practices", 1, "timezone", "Mars/Olympus", "timezone", "IANA"),
            ("practices", 0, "currency", "XYZ", "currency", "ISO 4217"),
            ("membership_plans", 2, "billing_cycle", "daily", "billing_cycle", "allowed"),
        ],
    )
    def test_a_bad_field_is_named(
        self, table: str, index: int, field: str, value: Any, expected_field: str, reason: str
    ) -> None:
        """Each bad field value is reported with its table, record index and field."""
        tables = copy.deepcopy(DEMO)
        tables[table][index][field] = value
        error = _refused(tables)
        assert (error.table, error.index, error.field) == (table, index, expected_field)
        assert reason in error.reason
        assert f"{table}[{index}].{expected_field}" in str(error)

    @pytest.mark.parametrize(
        ("table", "index", "path", "value", "field", "reason"),
        [
            (
                "payment_plans",
                0,
                ("attempts", 1, "succeeded"),
                "maybe",
                "attempts[1].succeeded",
                "expected true or false, got 'maybe'",
            ),
            (
                "payment_plans",
                0,
                ("attempts", 1, "number"),
                True,
                "attempts[1].number",
                "expected a whole number, got a bool",
            ),
            (
                "payment_plans",
                0,
                ("schedule", 2, "number"),
                0,
                "schedule[2]",
                "number: must be a whole number >= 1 (got 0)",
            ),
            ("members", 3, ("account_holder", "name"), "", "account_holder.name", "is required"),
            ("members", 6, ("dependents", 2, "name"), "  ", "dependents[2].name", "is required"),
            ("members", 4, ("history", 1, "at"), "", "history[1].at", "is required"),
            ("members", 4, ("history",), 5, "history", "expected a list of records"),
            ("referrals", 1, ("dependents",), ["x"], "dependents", "expected a list of records"),
            ("practices", 1, ("name",), 5, "name", "expected a string, got int"),
            (
                "members",
                4,
                ("start_date",),
                datetime(2025, 1, 1, tzinfo=UTC),
                "start_date",
                "expected a string, got datetime",
            ),
        ],
    )
    def test_a_malformed_value_is_refused_exactly(
        self, table: str, index: int, path: Path, value: Any, field: str, reason: str
    ) -> None:
        """Each malformed value is refused with the exact field path, reason and message."""
        error = _refused(_with(table, index, path, value))
        _assert_names(error, table, index, field, reason)

    def test_a_bad_history_entry_is_named_with_its_position(self) -> None:
        """An unknown status deep in a history names the list position."""
        tables = copy.deepcopy(DEMO)
        tables["members"][7]["history"][1]["status"] = "paused"
        error = _refused(tables)
        assert (error.table, error.index, error.field) == ("members", 7, "history[1].status")
        assert "paused" in error.reason

    def test_an_illegal_history_is_refused(self) -> None:
        """A history that jumps Pending -> Suspended breaks the table and is refused."""
        tables = copy.deepcopy(DEMO)
        member = tables["members"][0]
        member["history"] = [member["history"][0], {**member["history"][0], "status": "suspended"}]
        error = _refused(tables)
        reason = (
            "Member syd-m-0001: cannot move from PENDING to SUSPENDED;"
            " allowed from PENDING: ACTIVE, CANCELLED, FAILED"
        )
        _assert_names(error, "members", 0, "record", reason)

    def test_an_unknown_table_is_refused(self) -> None:
        """A table name the library does not know is refused, naming the known ones."""
        error = _refused({"invoices": [{}]})
        reason = (
            "unknown table; known: practices, staff_users, membership_plans, campaigns,"
            " payment_plan_templates, members, payment_plans, referrals, payments"
        )
        _assert_names(error, "invoices", 0, "table", reason)

    def test_a_record_that_is_not_a_mapping_is_refused(self) -> None:
        """A list where a record should be is refused at its index."""
        error = _refused({"practices": [DEMO["practices"][0], ["p1", "x"]]})
        _assert_names(error, "practices", 1, "record", "expected a mapping, got list")

    def test_to_records_refuses_an_object_that_is_not_a_domain_object(self) -> None:
        """Writing something that is not a domain object raises TypeError naming its type."""
        with pytest.raises(TypeError) as caught:
            to_records([DEMO, 5])
        assert str(caught.value) == "not a smilepass_core domain object: dict"

    def test_a_dangling_reference_is_refused_by_the_store_and_nothing_loads(self) -> None:
        """A member naming an unknown plan fails the load with its index and field; the
        store keeps nothing of that load."""
        tables = copy.deepcopy(DEMO)
        tables["members"][9]["plan_id"] = "no-such-plan"
        store = InMemoryStore()
        with pytest.raises(InvalidRecord) as caught:
            load_records(store, tables)
        assert (caught.value.table, caught.value.index, caught.value.field) == (
            "members",
            9,
            "plan_id",
        )
        assert store.practices.count(ScopeQuery()) == 0
        assert len(store.members) == 0


class TestUnknownColumnsAndEncodings:
    """A column no parser reads is refused by name (a misspelt optional column used to be
    dropped in silence); byte-order marks and non-list tables are handled (issue #14)."""

    @pytest.mark.parametrize(
        ("table", "index", "path", "field"),
        [
            ("members", 3, ("staff_user",), "staff_user"),
            ("members", 3, ("account_holder", "emial"), "account_holder.emial"),
            ("members", 3, ("history", 0, "when"), "history[0].when"),
            ("payment_plans", 1, ("schedule", 0, "due"), "schedule[0].due"),
            ("practices", 0, ("Currency",), "Currency"),
        ],
    )
    def test_an_unknown_column_is_named(
        self, table: str, index: int, path: Path, field: str
    ) -> None:
        """The error names the unknown column where it sits and lists the known ones."""
        error = _refused(_with(table, index, path, "x"))
        assert (error.table, error.index, error.field) == (table, index, field)
        assert error.reason.startswith("unknown column; known: ")

    def test_unknown_columns_can_be_ignored_explicitly(self) -> None:
        """``unknown_columns="ignore"`` parses the record as if the column were absent."""
        tables = _with("members", 3, ("staff_user",), "u1")
        parsed = from_records(tables, unknown_columns="ignore")
        assert parsed == from_records({"members": DEMO["members"][:4]})

    def test_the_option_itself_is_checked(self) -> None:
        """A misspelt option is an error, not strictness silently off."""
        with pytest.raises(InvalidValue, match='must be "error" or "ignore"'):
            from_records(DEMO, unknown_columns="skip")

    def test_a_byte_order_mark_before_a_column_is_dropped(self) -> None:
        """A CSV saved with a BOM ("\\ufeffid") reads like one without (it said "id: is
        required")."""
        record = dict(DEMO["practices"][0])
        marked = {"\ufeff" + k if k == "id" else k: v for k, v in record.items()}
        assert from_records({"practices": [marked]}) == from_records({"practices": [record]})

    @pytest.mark.parametrize("records", [None, 5, "practices.csv", {"id": "p1"}])
    def test_a_table_that_is_not_a_list_of_records(self, records: Any) -> None:
        """``{"practices": None}`` raised TypeError; now InvalidRecord names the table."""
        error = _refused({"practices": records})
        assert (error.table, error.index, error.field) == ("practices", 0, "records")

    @pytest.mark.parametrize("tables", [None, [("practices", [])], "practices"])
    def test_tables_that_are_not_a_mapping(self, tables: Any) -> None:
        """Something other than a mapping of tables is refused, naming ``tables``."""
        with pytest.raises(InvalidValue) as caught:
            from_records(tables)
        assert caught.value.field == "tables"


class TestTemplates:
    """Payment-plan templates and the plans offered from them keep every field."""

    @pytest.mark.parametrize(("deposit", "retired"), [(True, True), (False, False)])
    def test_a_template_and_its_offer_survive_a_json_round_trip(
        self, deposit: bool, retired: bool
    ) -> None:
        """A template (with and without a deposit and a retirement) and a plan naming it
        come back equal through JSON, and load into a store that checks the offer."""
        objects = template_objects(deposit=deposit, retired=retired)
        tables = json.loads(json.dumps(to_records(objects)))
        assert [obj for _, _, obj in from_records(tables)] == list(objects)
        assert tables["payment_plans"][0]["template_id"] == "syd-t-ortho"
        assert tables["payment_plans"][1]["template_id"] is None
        store = store_from_records(tables)
        assert store.payment_plan_templates.get("syd-t-ortho") == objects[1]
        assert store.payment_plans.get("syd-pp-1").template_id == "syd-t-ortho"

    def test_a_template_is_written_in_the_files_conventions(self) -> None:
        """Amounts as decimal strings beside one currency, the instant in ISO 8601 with its
        offset, the instalment counts as a list of whole numbers."""
        record = to_records(template_objects())["payment_plan_templates"][0]
        assert record == {
            "id": "syd-t-ortho",
            "practice_id": "syd",
            "name": "Orthodontics",
            "min_total": "1000.00",
            "max_total": "8000.00",
            "currency": "AUD",
            "instalment_counts": [6, 12, 24],
            "cycle": "monthly",
            "max_deferral_days": 30,
            "members_only": False,
            "deposit": "250.00",
            "retired_at": "2026-09-01T00:00:00+00:00",
        }

    def test_flat_strings_and_absent_optional_fields_are_accepted(self) -> None:
        """Counts as JSON array text, numbers and booleans as strings; without cycle,
        deferral, members only, deposit and retirement a template takes the defaults."""
        record = {
            "id": "t1",
            "practice_id": "syd",
            "name": "Short",
            "min_total": "100",
            "max_total": "900.50",
            "currency": "aud",
            "instalment_counts": " [3, 6] ",
        }
        (_, _, template), *_ = from_records({"payment_plan_templates": [record]})
        assert template == PaymentPlanTemplate(
            "t1", "syd", "Short", _aud("100"), _aud("900.50"), (3, 6)
        )
        more = {**record, "max_deferral_days": "14", "members_only": "yes", "cycle": "Weekly"}
        (_, _, template), *_ = from_records({"payment_plan_templates": [more]})
        assert (template.max_deferral_days, template.members_only) == (14, True)
        assert template.cycle.value == "weekly"

    def test_a_plan_record_from_before_templates_reads_none(self) -> None:
        """A payment plan record without ``template_id`` (written before templates) loads,
        offered from no template."""
        record = dict(DEMO["payment_plans"][0])
        record.pop("template_id", None)
        (_, _, plan), *_ = from_records({"payment_plans": [record]})
        assert plan.template_id is None

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (
                "[6, 12, 12]",
                "instalment_counts: must be strictly increasing whole numbers >= 1"
                " (got (6, 12, 12))",
            ),
            (
                [0, 6],
                "instalment_counts: must be strictly increasing whole numbers >= 1 (got (0, 6))",
            ),
            ("6 12 24", "expected a JSON array of whole numbers ([6, 12, 24]), got '6 12 24'"),
            (["6", "12"], "expected a list of whole numbers"),
            ([True], "expected a list of whole numbers"),
            ("6", "expected a list of whole numbers"),
            ("", "is required"),
        ],
    )
    def test_bad_instalment_counts_are_refused_naming_the_field(
        self, value: Any, reason: str
    ) -> None:
        """Counts that are not a strictly increasing list of whole numbers >= 1 are refused
        with the table, the index and the field."""
        tables = to_records(template_objects())
        record = {**tables["payment_plan_templates"][0], "instalment_counts": value}
        error = _refused({"payment_plan_templates": [record]})
        _assert_names(error, "payment_plan_templates", 0, "instalment_counts", reason)

    @pytest.mark.parametrize(
        ("field", "value", "reason"),
        [
            ("deposit", "1000.00", "must be below min_total"),
            ("max_total", "999.00", "is below min_total"),
            ("min_total", "1000.001", "2 decimals"),
            ("retired_at", "2026-09-01T00:00:00", "naive"),
            ("cycle", "daily", "allowed: weekly"),
            ("max_deferral_days", "-1", "whole number of days >= 0"),
            ("members_only", "maybe", "expected true or false"),
        ],
    )
    def test_a_bad_template_field_is_named(self, field: str, value: str, reason: str) -> None:
        """Each bad value of a template is reported with its field."""
        tables = to_records(template_objects())
        record = {**tables["payment_plan_templates"][0], field: value}
        error = _refused({"payment_plan_templates": [record]})
        assert (error.table, error.index, error.field) == ("payment_plan_templates", 0, field)
        assert reason in error.reason
