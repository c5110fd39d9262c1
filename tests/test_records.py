"""Plain records: round trips, and every bad record refused with its table, index and field."""

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings

from smilepass_core import InMemoryStore, InvalidRecord, MemberQuery, ScopeQuery
from smilepass_core.demo import load_demo
from smilepass_core.records import TABLES, from_records, to_records
from smilepass_core.testing import strategies as sps


def _demo_tables() -> dict[str, list[dict[str, Any]]]:
    data = load_demo()
    objects = [*data.practices, *data.staff_users, *data.membership_plans, *data.campaigns]
    objects += [*data.members, *data.payment_plans, *data.referrals, *data.payments]
    return json.loads(json.dumps(to_records(objects)))


DEMO = _demo_tables()


def _refused(tables: dict[str, Any]) -> InvalidRecord:
    with pytest.raises(InvalidRecord) as caught:
        from_records(tables)
    return caught.value


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
        from_recs = InMemoryStore.from_records(DEMO)
        from_objs = InMemoryStore.from_demo()
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
        assert (error.table, error.index) == ("members", 0)
        assert "PENDING" in error.reason
        assert "SUSPENDED" in error.reason

    def test_an_unknown_table_is_refused(self) -> None:
        """A table name the library does not know is refused, naming the known ones."""
        error = _refused({"invoices": [{}]})
        assert error.field == "table"
        assert "practices" in error.reason

    def test_a_record_that_is_not_a_mapping_is_refused(self) -> None:
        """A list where a record should be is refused at its index."""
        error = _refused({"practices": [["p1", "x"]]})
        assert (error.table, error.index, error.field) == ("practices", 0, "record")

    def test_a_dangling_reference_is_refused_by_the_store_and_nothing_loads(self) -> None:
        """A member naming an unknown plan fails the load with its index and field; the
        store keeps nothing of that load."""
        tables = copy.deepcopy(DEMO)
        tables["members"][9]["plan_id"] = "no-such-plan"
        store = InMemoryStore()
        with pytest.raises(InvalidRecord) as caught:
            store.load_records(tables)
        assert (caught.value.table, caught.value.index, caught.value.field) == (
            "members",
            9,
            "plan_id",
        )
        assert store.practices.count(ScopeQuery()) == 0
        assert len(store.members) == 0
