"""The flat layout: lossless round trips, real exports' dialects, and every bad row of a
directory reported at once with its file, line, column and value, nothing loaded."""

import csv
import re
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smilepass_core import InvalidData, InvalidValue, Member, MembershipStatus, Patient
from smilepass_core.demo import load_demo
from smilepass_core.io import flat
from smilepass_core.io.flat import (
    LAYOUT,
    Problem,
    escape_cell,
    read_flat,
    store_from_flat,
    to_flat,
    unescape_cell,
    write_flat,
)
from smilepass_core.reports._table import FORMULA_TRIGGERS
from smilepass_core.testing import strategies as sps
from test_records import template_objects

#: A small practice as a spreadsheet would export it: two members, one payment each.
FILES = {
    "practices.csv": "id,name,timezone,currency\nsyd,Harbour Dental,Australia/Sydney,AUD\n",
    "membership_plans.csv": (
        "id,practice_id,name,price,currency,billing_cycle\ngold,syd,Gold,30.00,AUD,monthly\n"
    ),
    "members.csv": (
        "id,practice_id,plan_id,account_holder_id,account_holder_name,start_date\n"
        "m1,syd,gold,p1,Ada Lovelace,2026-03-01\n"
        'm2,syd,gold,p2,"Hopper, Grace",2026-03-02\n'
    ),
    "member_status_changes.csv": (
        "member_id,at,status,reason\n"
        "m1,2026-03-01T09:00:00+11:00,pending,enrolled\n"
        "m1,2026-03-01T09:05:00+11:00,active,paid\n"
        "m2,2026-03-02T10:00:00+11:00,pending,\n"
        "m2,2026-03-02T10:05:00+11:00,active,\n"
    ),
    "payments.csv": (
        "id,practice_id,amount,currency,kind,outcome,at,member_id\n"
        "pay1,syd,30.00,AUD,charge,succeeded,2026-03-01T09:05:00+11:00,m1\n"
        "pay2,syd,30.00,AUD,charge,succeeded,2026-03-02T10:05:00+11:00,m2\n"
    ),
}


def _write(folder: Path, files: dict[str, str], **changes: str) -> Path:
    for name, text in {**files, **changes}.items():
        (folder / name).write_text(text, encoding="utf-8", newline="")
    return folder


def _problems(folder: Path, **options: object) -> list[Problem]:
    with pytest.raises(InvalidData) as caught:
        read_flat(folder, **options)  # type: ignore[arg-type]
    return list(caught.value.problems)


def _where(problems: list[Problem]) -> list[tuple[str, int | None, str | None]]:
    return [(p.file, p.line, p.column) for p in problems]


class TestRoundTrip:
    """Writing the layout and reading it back gives the very same objects."""

    @settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(sps.datasets(), st.sampled_from(["csv", "jsonl"]))
    def test_every_dataset_survives(
        self, tmp_path_factory: pytest.TempPathFactory, dataset: sps.Dataset, format: str
    ) -> None:
        """Random coherent datasets, in CSV and JSON Lines: same objects, same order."""
        folder = tmp_path_factory.mktemp("flat")
        write_flat(dataset.objects(), folder, format=format)
        assert read_flat(folder) == dataset.objects()

    @pytest.mark.parametrize("format", ["csv", "jsonl", "parquet"])
    def test_the_demo_survives_in_every_format(self, tmp_path: Path, format: str) -> None:
        """3,469 demo objects through each format; one file per table, every table listed."""
        objects = load_demo().objects()
        paths = write_flat(objects, tmp_path, format=format)
        assert sorted(p.name for p in paths) == sorted(f"{f.name}.{format}" for f in LAYOUT)
        assert read_flat(tmp_path) == objects

    def test_formulas_are_escaped_in_csv_and_read_back(self, tmp_path: Path) -> None:
        """A patient named like a formula is written with a leading ``'`` and read back
        exactly; a negative-looking phone is text, escaped too."""
        objects = list(load_demo().objects())
        i, member = next((i, o) for i, o in enumerate(objects) if isinstance(o, Member))
        holder = attrs.evolve(
            member.account_holder, name='=HYPERLINK("http://evil.example")', phone="+61 400"
        )
        objects[i] = attrs.evolve(member, account_holder=holder)
        write_flat(objects, tmp_path)
        text = (tmp_path / "members.csv").read_text(encoding="utf-8")
        assert "'=HYPERLINK" in text
        assert ",'+61 400," in text
        assert re.search(r"(^|,)[=+@-]", text, re.MULTILINE) is None
        assert read_flat(tmp_path) == tuple(objects)

    @given(st.text())
    def test_escaping_is_undone_exactly(self, text: str) -> None:
        """unescape(escape(s)) == s, and no escaped cell starts a formula."""
        assert unescape_cell(escape_cell(text)) == text
        assert not escape_cell(text).startswith(FORMULA_TRIGGERS)

    def test_the_layout_holds_every_field_written(self) -> None:
        """Each row the writer makes has exactly its file's columns (none lost, none made up);
        the demo with a template and a plan offered from it fills every file."""
        rows = to_flat([*load_demo().objects(), *template_objects()[1:]])
        for file in LAYOUT:
            assert rows[file.name], file.name
            for row in rows[file.name]:
                assert list(row) == [c.name for c in file.columns] or set(row) == {
                    c.name for c in file.columns
                }


class TestDialects:
    """What real exports look like is read as the plain form is."""

    def test_bom_crlf_quoted_commas_and_any_column_order(self, tmp_path: Path) -> None:
        """Each file with a byte-order mark and CRLF line ends, members' columns reversed
        (a quoted comma among them): the same objects as the plain files."""
        plain = read_flat(_write(_folder(tmp_path, "plain"), FILES))
        lines = list(csv.reader(FILES["members.csv"].splitlines()))
        reversed_members = "".join(
            ",".join(f'"{c}"' if "," in c else c for c in reversed(cells)) + "\r\n"
            for cells in lines
        )
        messy = {name: "\ufeff" + text.replace("\n", "\r\n") for name, text in FILES.items()}
        messy["members.csv"] = "\ufeff" + reversed_members
        assert read_flat(_write(_folder(tmp_path, "messy"), messy)) == plain
        assert plain[3].account_holder.name == "Hopper, Grace"

    def test_blank_lines_are_skipped(self, tmp_path: Path) -> None:
        files = {**FILES, "payments.csv": FILES["payments.csv"].replace("\npay2", "\n\n ,\npay2")}
        assert len(read_flat(_write(tmp_path, files))) == 6

    def test_an_absent_file_is_an_empty_table(self, tmp_path: Path) -> None:
        files = {k: v for k, v in FILES.items() if k != "payments.csv"}
        assert len(read_flat(_write(tmp_path, files))) == 4  # no payments


def _folder(parent: Path, name: str) -> Path:
    (parent / name).mkdir()
    return parent / name


class TestEveryProblemAtOnce:
    """A directory with several bad rows: each is listed, nothing is returned."""

    def test_bad_rows_in_several_files_are_all_named(self, tmp_path: Path) -> None:
        _write(
            tmp_path,
            FILES,
            **{
                "members.csv": FILES["members.csv"].replace("2026-03-02", "2026-02-30"),
                "member_status_changes.csv": FILES["member_status_changes.csv"]
                + "ghost,2026-03-03T10:00:00+11:00,active,\n",
                "payments.csv": FILES["payments.csv"].replace("pay1,syd,30.00", "pay1,syd,3O.00"),
            },
        )
        problems = _problems(tmp_path)
        assert _where(problems) == [
            ("members.csv", 3, "start_date"),
            ("member_status_changes.csv", 6, "member_id"),
            ("payments.csv", 2, "amount"),
        ]
        assert [p.value for p in problems] == ["2026-02-30", "ghost", "3O.00"]
        assert problems[1].reason == "no row of members has this id"
        assert str(problems[2]).startswith("payments.csv:2: amount '3O.00': ")

    def test_a_reference_to_a_refused_row_is_not_reported_again(self, tmp_path: Path) -> None:
        """m2's bad start date refuses m2; pay2, which refers to m2, adds nothing."""
        members = FILES["members.csv"].replace("2026-03-02", "yesterday")
        problems = _problems(_write(tmp_path, FILES, **{"members.csv": members}))
        assert _where(problems) == [("members.csv", 3, "start_date")]

    def test_a_store_rule_names_its_row(self, tmp_path: Path) -> None:
        """A payment to an unknown member, and a duplicate id, each on its own line."""
        payments = FILES["payments.csv"] + (
            "pay3,syd,30.00,AUD,charge,succeeded,2026-03-02T10:05:00+11:00,m9\n"
            "pay1,syd,31.00,AUD,charge,succeeded,2026-03-02T10:05:00+11:00,m1\n"
        )
        problems = _problems(_write(tmp_path, FILES, **{"payments.csv": payments}))
        assert _where(problems) == [("payments.csv", 4, "member_id"), ("payments.csv", 5, "id")]
        assert problems[0].reason == "Member 'm9' not found"

    def test_a_child_row_problem_names_the_child_file(self, tmp_path: Path) -> None:
        changes = FILES["member_status_changes.csv"].replace(
            "m1,2026-03-01T09:05:00+11:00,active", "m1,2026-03-01T09:05:00+11:00,actve"
        )
        problems = _problems(_write(tmp_path, FILES, **{"member_status_changes.csv": changes}))
        assert _where(problems) == [("member_status_changes.csv", 3, "status")]
        assert problems[0].value == "actve"

    def test_a_child_rows_embedded_record_names_its_column(self, tmp_path: Path) -> None:
        """A dependent added without a name: the problem names the child file's
        ``patient_name`` column (not the record path ``patient.name``)."""
        changes = (
            "member_id,at,patient_id,patient_name,added\n"
            "m1,2026-03-05T09:00:00+11:00,k1,Kid Lovelace,true\n"
            "m2,2026-03-05T09:00:00+11:00,k2,,true\n"
        )
        dependents = "member_id,id,name\nm1,k1,Kid Lovelace\nm2,k2,Kid Hopper\n"
        folder = _write(
            tmp_path,
            FILES,
            **{"member_dependent_changes.csv": changes, "member_dependents.csv": dependents},
        )
        problems = _problems(folder)
        assert _where(problems) == [("member_dependent_changes.csv", 3, "patient_name")]

    def test_a_parent_without_its_required_children(self, tmp_path: Path) -> None:
        changes = "".join(
            line + "\n"
            for line in FILES["member_status_changes.csv"].splitlines()
            if "m2" not in line
        )
        problems = _problems(_write(tmp_path, FILES, **{"member_status_changes.csv": changes}))
        assert _where(problems) == [("members.csv", 3, None)]
        assert problems[0].reason.startswith("no rows in member_status_changes.csv: ")

    def test_a_row_with_too_many_cells(self, tmp_path: Path) -> None:
        payments = FILES["payments.csv"].replace("pay2,syd,30.00", "pay2,syd,30,00")
        problems = _problems(_write(tmp_path, FILES, **{"payments.csv": payments}))
        assert _where(problems) == [("payments.csv", 3, None)]
        assert problems[0].reason == "9 cells where the header has 8"

    def test_the_list_is_capped_and_the_rest_counted(self, tmp_path: Path) -> None:
        extra = "".join(f"ghost{i},2026-03-03T10:00:00+11:00,active,\n" for i in range(5))
        changes = FILES["member_status_changes.csv"] + extra
        _write(tmp_path, FILES, **{"member_status_changes.csv": changes})
        with pytest.raises(InvalidData) as caught:
            read_flat(tmp_path, max_problems=2)
        assert [p.line for p in caught.value.problems] == [6, 7]
        assert caught.value.omitted == 3
        assert str(caught.value).splitlines()[0].endswith("5 problems, nothing loaded")
        assert str(caught.value).splitlines()[-1].startswith("... and 3 more")


class TestWholeFiles:
    """A file that cannot be read as the layout stops the check before its rows."""

    @pytest.mark.parametrize(
        ("name", "text", "where", "reason"),
        [
            ("member.csv", "id\n", ("member.csv", None, None), "unknown file; known: "),
            ("payments.jsonl", "{}\n", ("payments.csv", None, None), "payments.jsonl hold"),
            (
                "practices.csv",
                "id,name,timezone,currency,colour\n",
                ("practices.csv", 1, "colour"),
                "unknown column; known: id, name, timezone, currency",
            ),
            (
                "practices.csv",
                "id,name,currency\n",
                ("practices.csv", 1, "timezone"),
                "required column missing",
            ),
            (
                "practices.csv",
                "id,name,name,timezone,currency\n",
                ("practices.csv", 1, "name"),
                "the column appears twice",
            ),
            ("practices.csv", "", ("practices.csv", None, None), "empty file"),
        ],
    )
    def test_refused(
        self,
        tmp_path: Path,
        name: str,
        text: str,
        where: tuple[str, int | None, str | None],
        reason: str,
    ) -> None:
        problems = _problems(_write(tmp_path, FILES, **{name: text}))
        assert _where(problems) == [where]
        assert problems[0].reason.startswith(reason)

    def test_text_that_is_not_utf8(self, tmp_path: Path) -> None:
        _write(tmp_path, FILES)
        (tmp_path / "practices.csv").write_bytes(b"id,name,timezone,currency\nsyd,Caf\xe9,X,AUD\n")
        problems = _problems(tmp_path)
        assert _where(problems) == [("practices.csv", 1, None)]
        assert problems[0].reason.startswith("not UTF-8 text")

    def test_json_lines_name_their_bad_lines(self, tmp_path: Path) -> None:
        """Each line that is not a JSON object is a problem; the others are read."""
        _write(tmp_path, {k: v for k, v in FILES.items() if k != "practices.csv"})
        (tmp_path / "practices.jsonl").write_text(
            '{"id": "syd", "name": "Harbour Dental", "timezone": "Australia/Sydney",'
            ' "currency": "AUD"}\n\n{"id": \n[1, 2]\n',
            encoding="utf-8",
        )
        problems = _problems(tmp_path)
        assert [(p.file, p.line, p.reason) for p in problems] == [
            ("practices.jsonl", 3, "not JSON: Expecting value"),
            ("practices.jsonl", 4, "not a JSON object"),
        ]

    @pytest.mark.parametrize(
        ("name", "content", "reason"),
        [
            ("practices.jsonl", b'{"id": "caf\xe9"}\n', "not UTF-8 text"),
            ("practices.parquet", b"PAR1 not really", "not Parquet: "),
            ("practices.csv", b"id,name\n" + b"x" * 200_000 + b",y\n", "not CSV: field larger"),
        ],
    )
    def test_unreadable_files(self, tmp_path: Path, name: str, content: bytes, reason: str) -> None:
        _write(tmp_path, {k: v for k, v in FILES.items() if k != "practices.csv"})
        (tmp_path / name).write_bytes(content)
        problems = _problems(tmp_path)
        assert [(p.file, p.column) for p in problems] == [(name, None)]
        assert problems[0].reason.startswith(reason)

    def test_unknown_columns_may_be_ignored(self, tmp_path: Path) -> None:
        members = FILES["members.csv"].replace("start_date\n", "start_date,staff_user\n")
        members = members.replace("2026-03-01\n", "2026-03-01,Dr Who\n")
        members = members.replace("2026-03-02\n", "2026-03-02,\n")
        _write(tmp_path, FILES, **{"members.csv": members})
        assert _where(_problems(tmp_path)) == [("members.csv", 1, "staff_user")]
        assert len(read_flat(tmp_path, unknown_columns="ignore")) == 6

    def test_other_files_are_left_alone(self, tmp_path: Path) -> None:
        _write(tmp_path, FILES, **{"README.txt": "exported 2026-03-03", "notes.md": "#"})
        assert len(read_flat(tmp_path)) == 6


class TestInstants:
    """An instant carries its offset, or the file's zone is named for it."""

    def _naive(self, tmp_path: Path, wall: str = "2026-03-01T09:05:00") -> Path:
        payments = FILES["payments.csv"].replace("2026-03-01T09:05:00+11:00", wall)
        return _write(tmp_path, FILES, **{"payments.csv": payments})

    def test_a_naive_instant_is_refused_with_the_way_out(self, tmp_path: Path) -> None:
        problems = _problems(self._naive(tmp_path))
        assert _where(problems) == [("payments.csv", 2, "at")]
        assert "naive_zones={'payments': 'Australia/Sydney'}" in problems[0].reason

    def test_spaces_around_a_naive_instant_are_dropped(self, tmp_path: Path) -> None:
        folder = self._naive(tmp_path, " 2026-03-01T09:05:00 ")
        objects = read_flat(folder, naive_zones={"payments": "Australia/Sydney"})
        assert objects[4].at == datetime(2026, 2, 28, 22, 5, tzinfo=UTC)

    @pytest.mark.parametrize("key", ["payments", "*"])
    def test_a_named_zone_reads_it_as_local_time(self, tmp_path: Path, key: str) -> None:
        objects = read_flat(self._naive(tmp_path), naive_zones={key: "Australia/Sydney"})
        assert objects[4].at == datetime(2026, 2, 28, 22, 5, tzinfo=UTC)

    def test_a_wall_time_that_does_not_exist_is_refused(self, tmp_path: Path) -> None:
        """Sydney skipped 02:00-03:00 on 2026-10-04."""
        folder = self._naive(tmp_path, "2026-10-04T02:30:00")
        problems = _problems(folder, naive_zones={"payments": "Australia/Sydney"})
        assert _where(problems) == [("payments.csv", 2, "at")]
        assert "DST gap" in problems[0].reason

    def test_a_wall_time_that_happens_twice_is_refused(self, tmp_path: Path) -> None:
        folder = self._naive(tmp_path, "2026-04-05T02:30:00")
        problems = _problems(folder, naive_zones={"*": "Australia/Sydney"})
        assert "happens twice" in problems[0].reason

    @pytest.mark.parametrize(
        "zones", [{"payment": "Australia/Sydney"}, {"payments": "Mars/Olympus"}]
    )
    def test_the_zones_themselves_are_checked(self, tmp_path: Path, zones: dict[str, str]) -> None:
        with pytest.raises(InvalidValue):
            read_flat(_write(tmp_path, FILES), naive_zones=zones)


class TestArguments:
    @pytest.mark.parametrize(
        "options",
        [{"unknown_columns": "drop"}, {"max_problems": 0}, {"max_problems": True}],
    )
    def test_bad_options(self, tmp_path: Path, options: dict[str, object]) -> None:
        with pytest.raises(InvalidValue):
            read_flat(_write(tmp_path, FILES), **options)  # type: ignore[arg-type]

    def test_not_a_directory(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidValue):
            read_flat(tmp_path / "missing")

    def test_an_unknown_format(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidValue):
            write_flat([], tmp_path, format="xlsx")

    def test_the_store_holds_what_was_read(self, tmp_path: Path) -> None:
        store = store_from_flat(_write(tmp_path, FILES))
        assert store.members.get("m2").account_holder == Patient("p2", "Hopper, Grace")
        assert store.members.get("m1").status is MembershipStatus.ACTIVE

    def test_progress_every_so_many_rows(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(flat, "_PROGRESS_EVERY", 2)
        seen: list[tuple[str, int]] = []
        read_flat(_write(tmp_path, FILES), progress=lambda f, n: seen.append((f, n)))
        assert [n for f, n in seen if f == "member_status_changes.csv"] == [2, 4, 4]

    def test_progress_is_reported_per_file(self, tmp_path: Path) -> None:
        seen: list[tuple[str, int]] = []
        read_flat(_write(tmp_path, FILES), progress=lambda f, n: seen.append((f, n)))
        assert sorted(seen) == sorted(
            [
                ("practices.csv", 1),
                ("membership_plans.csv", 1),
                ("members.csv", 2),
                ("member_status_changes.csv", 4),
                ("payments.csv", 2),
            ]
        )


class TestTemplates:
    """payment_plan_templates.csv and payment_plans.csv's template_id."""

    @pytest.mark.parametrize("format", ["csv", "jsonl", "parquet"])
    @pytest.mark.parametrize(("deposit", "retired"), [(True, True), (False, False)])
    def test_a_template_and_its_offer_survive_every_format(
        self, tmp_path: Path, format: str, deposit: bool, retired: bool
    ) -> None:
        """A template (with and without a deposit and a retirement), a plan offered from it
        and one offered without: the very same objects back, the store holding the link."""
        objects = template_objects(deposit=deposit, retired=retired)
        write_flat(objects, tmp_path, format=format)
        assert read_flat(tmp_path) == objects
        store = store_from_flat(tmp_path)
        assert store.payment_plans.get("syd-pp-1").template_id == "syd-t-ortho"

    def test_the_csv_cells(self, tmp_path: Path) -> None:
        """The counts are one cell holding their JSON array; the plan names its template."""
        write_flat(template_objects(), tmp_path)
        templates = (tmp_path / "payment_plan_templates.csv").read_text(encoding="utf-8")
        assert templates == (
            "id,practice_id,name,min_total,max_total,currency,instalment_counts,cycle,"
            "max_deferral_days,members_only,deposit,retired_at\n"
            'syd-t-ortho,syd,Orthodontics,1000.00,8000.00,AUD,"[6, 12, 24]",monthly,30,false,'
            "250.00,2026-09-01T00:00:00+00:00\n"
        )
        plans = (tmp_path / "payment_plans.csv").read_text(encoding="utf-8").splitlines()
        assert plans[0].endswith(",archived_at,template_id")
        assert plans[1].endswith(",,syd-t-ortho")
        assert plans[2].endswith(",,")

    def test_a_name_like_a_formula_is_escaped(self, tmp_path: Path) -> None:
        """A template's name starting with ``=``, ``+``, ``-`` or ``@`` gets a ``'`` in
        CSV and reads back as it was."""
        practice, template, *_ = template_objects()
        objects = tuple(
            attrs.evolve(template, id=f"t{i}", name=f"{trigger}cmd|' /C calc'!A0")
            for i, trigger in enumerate("=+-@")
        )
        write_flat((practice, *objects), tmp_path)
        text = (tmp_path / "payment_plan_templates.csv").read_text(encoding="utf-8")
        assert re.search(r"(^|,)[=+@-]", text, re.MULTILINE) is None
        assert read_flat(tmp_path) == (practice, *objects)

    @pytest.mark.parametrize(
        ("cell", "value", "reason"),
        [
            (
                '"[6, 12, 12]"',
                "[6, 12, 12]",
                "must be strictly increasing whole numbers >= 1 (got (6, 12, 12))",
            ),
            (
                "6 12 24",
                "6 12 24",
                "expected a JSON array of whole numbers ([6, 12, 24]), got '6 12 24'",
            ),
            ('"[6, ""12""]"', '[6, "12"]', "expected a list of whole numbers"),
            ("", None, "is required"),
        ],
    )
    def test_a_bad_instalment_counts_cell_is_named(
        self, tmp_path: Path, cell: str, value: str | None, reason: str
    ) -> None:
        """The problem names the file, the line, the column and the cell as written."""
        write_flat(template_objects()[:2], tmp_path)
        path = tmp_path / "payment_plan_templates.csv"
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('"[6, 12, 24]"', cell), encoding="utf-8")
        problems = _problems(tmp_path)
        assert _where(problems) == [("payment_plan_templates.csv", 2, "instalment_counts")]
        assert (problems[0].value or None, problems[0].reason) == (value, reason)

    def test_a_plan_naming_an_unknown_template_is_named(self, tmp_path: Path) -> None:
        """A ``template_id`` no row of payment_plan_templates.csv has: its cell is named."""
        write_flat(template_objects(), tmp_path)
        path = tmp_path / "payment_plans.csv"
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace(",syd-t-ortho", ",syd-t-gone"), encoding="utf-8")
        problems = _problems(tmp_path)
        assert _where(problems) == [("payment_plans.csv", 2, "template_id")]
        assert problems[0].value == "syd-t-gone"

    def test_an_export_from_before_templates_still_loads(self, tmp_path: Path) -> None:
        """A folder without payment_plan_templates.csv, its payment_plans.csv without the
        template_id column (as written before templates), loads as it did."""
        practice, _, _, plain = template_objects()
        write_flat((practice, plain), tmp_path)
        (tmp_path / "payment_plan_templates.csv").unlink()
        path = tmp_path / "payment_plans.csv"
        rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
        assert rows[0][-1] == "template_id"
        with path.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle, lineterminator="\n").writerows(row[:-1] for row in rows)
        assert read_flat(tmp_path) == (practice, plain)


def test_the_docs_list_every_column() -> None:
    """docs/data-format.md has one table per file, in layout order, with each column's
    kind and whether it is required, exactly as the reader checks them."""
    docs = (Path(__file__).parents[1] / "docs" / "data-format.md").read_text(encoding="utf-8")
    sections = re.split(r"^### `(\w+)\.csv`\s*$", docs, flags=re.MULTILINE)
    files = sections[1::2]
    assert files == [f.name for f in LAYOUT]
    for file, body in zip(LAYOUT, sections[2::2], strict=True):
        rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (yes|no) \|", body, flags=re.MULTILINE)
        assert rows == [(c.name, c.kind, "yes" if c.required else "no") for c in file.columns]
