"""The ``smilepass`` command line: every report over a data directory in each format, the
export and validate round trip, and the exit codes (0 done, 1 bad data, 2 bad usage)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from smilepass_core.cli import _progress, main
from smilepass_core.demo import DEMO_NOW, DEMO_TARGETS, demo_store, load_demo
from smilepass_core.io.flat import read_flat, write_flat
from smilepass_core.io.frames import figure_rows
from smilepass_core.io.text import render_dashboard, render_weekly
from smilepass_core.kpi import dashboard
from smilepass_core.memory import InMemoryStore
from smilepass_core.periods import DateRange
from smilepass_core.reports import (
    aged_receivables,
    cohort_retention,
    dunning_worklist,
    membership_list,
    payment_plan_list,
    recovered_revenue,
    referral_tracking,
    weekly_check,
)
from smilepass_core.subscriptions import subscription_metrics

NOW = "2026-11-26T09:00:00+11:00"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo in the flat layout."""
    folder = tmp_path_factory.mktemp("data")
    write_flat(load_demo().objects(), folder)
    return folder


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def store() -> InMemoryStore:
    """The demo's store, for the figures the command line must print."""
    return demo_store()


#: Each report command and the library call it must print (at NOW, for syd).
def _expected(command: str, store: InMemoryStore) -> Any:
    now = DEMO_NOW.fromisoformat(NOW)
    return {
        "members": lambda: membership_list(store, as_of=now, practices=("syd",)),
        "plans": lambda: payment_plan_list(store, as_of=now, practices=("syd",)),
        "referrals": lambda: referral_tracking(store, practices=("syd",), as_of=now),
        "receivables": lambda: aged_receivables(store, at=now, practices=("syd",)),
        "cohorts": lambda: cohort_retention(store, now=now, practices=("syd",)),
        "dunning": lambda: dunning_worklist(store, now=now, practices=("syd",)),
        "recovery": lambda: recovered_revenue(
            store, now=now, practices=("syd",), date_range="last_7_days"
        ),
    }[command]()


REPORTS = ["members", "plans", "referrals", "receivables", "cohorts", "recovery", "dunning"]


class TestReports:
    """Each report prints what the library computes from the same data."""

    @pytest.mark.parametrize("command", REPORTS)
    def test_csv_is_the_reports_own(
        self, data: Path, store: InMemoryStore, capsys: pytest.CaptureFixture[str], command: str
    ) -> None:
        code, out, err = _run(
            capsys,
            command,
            "--data",
            str(data),
            "--now",
            NOW,
            "--practice",
            "syd",
            "--format",
            "csv",
        )
        expected = io.StringIO()
        _expected(command, store).to_csv(expected)
        assert (code, err) == (0, "")
        assert out == expected.getvalue()
        assert len(out.splitlines()) > 1

    @pytest.mark.parametrize("command", REPORTS)
    def test_json_is_the_reports_records(
        self, store: InMemoryStore, capsys: pytest.CaptureFixture[str], command: str
    ) -> None:
        code, out, _ = _run(capsys, command, "--now", NOW, "--practice", "syd", "--format", "json")
        records = _expected(command, store).to_records()
        assert code == 0
        assert json.loads(out) == json.loads(json.dumps(records, default=str))

    @pytest.mark.parametrize("command", REPORTS)
    def test_a_table_has_a_line_per_row(
        self, store: InMemoryStore, capsys: pytest.CaptureFixture[str], command: str
    ) -> None:
        code, out, _ = _run(capsys, command, "--now", NOW, "--practice", "syd")
        report = _expected(command, store)
        lines = out.splitlines()
        assert code == 0
        assert lines[0].split() == list(report.ROW.COLUMNS)
        assert set(lines[1]) <= {"-", " "}
        assert len(lines) == 2 + len(report.rows)

    def test_the_dashboard_for_a_range_of_dates(
        self, data: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``2026-10-01..2026-11-01`` is October, the end day not included."""
        args = ["dashboard", "--data", str(data), "--now", NOW, "--practice", "syd"]
        code, out, _ = _run(capsys, *args, "--range", "2026-10-01..2026-11-01")
        october = DateRange.custom(
            DEMO_NOW.date().replace(month=10, day=1),
            DEMO_NOW.date().replace(month=10, day=31),
            timezone="Australia/Sydney",
        )
        board = dashboard(
            demo_store(), practices="syd", date_range=october, now=DEMO_NOW.fromisoformat(NOW)
        )
        assert (code, out) == (0, render_dashboard(board) + "\n")
        code, out, _ = _run(capsys, *args, "--range", "last-month", "--format", "json")
        last_month = dashboard(
            demo_store(), practices="syd", date_range="last_month", now=DEMO_NOW.fromisoformat(NOW)
        )
        assert json.loads(out) == json.loads(
            json.dumps([r.record() for r in figure_rows(last_month)], default=str)
        )

    def test_the_dashboard_as_csv(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = _run(capsys, "dashboard", "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(out)))
        assert code == 0
        assert [r["figure"] for r in rows] == [
            "members",
            "retention",
            "period_retention",
            "revenue",
            "revenue",
        ]
        assert {r["currency"] for r in rows[3:]} == {"AUD", "USD"}

    def test_subscriptions_in_each_format(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The figures of subscription_metrics over the range, for one currency, with the
        demo's goals."""
        metrics = subscription_metrics(
            demo_store(),
            practices="syd",
            date_range="last_month",
            now=DEMO_NOW,
            targets=DEMO_TARGETS,
        )
        assert metrics.churn_goal == Decimal(5)
        args = ["subscriptions", "--practice", "syd", "--range", "last-month"]
        code, out, _ = _run(capsys, *args, "--format", "json")
        assert code == 0
        assert json.loads(out) == json.loads(json.dumps(metrics.to_records(), default=str))
        _, out, _ = _run(capsys, *args, "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["figure"] for r in rows] == [r["figure"] for r in metrics.to_records()]
        assert rows[6] == {"figure": "mrr_end", "value": str(metrics.mrr.end.amount), "unit": "AUD"}
        _, out, _ = _run(capsys, *args)
        assert out.splitlines()[2].split() == ["mrr_start", str(metrics.mrr.start.amount), "AUD"]
        assert len(out.splitlines()) == 2 + len(metrics.to_records())

    def test_weekly_as_table_and_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """From the demo (no --data): the demo's own now."""
        check = weekly_check(demo_store(), now=DEMO_NOW, practices=("nyc", "syd"))
        assert _run(capsys, "weekly") == (0, render_weekly(check) + "\n", "")
        _, out, _ = _run(capsys, "weekly", "--format", "json")
        assert json.loads(out) == json.loads(json.dumps(check.to_records(), default=str))

    def test_output_goes_to_a_file(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        target = tmp_path / "members.csv"
        code, out, _ = _run(capsys, "members", "--format", "csv", "--output", str(target))
        assert (code, out) == (0, "")
        assert target.read_text(encoding="utf-8").startswith("member_id,account_holder,")


class TestExportAndValidate:
    def test_export_then_validate_then_read_back(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The demo exported as JSON Lines validates and reads back as the same objects."""
        target = tmp_path / "out"
        assert _run(capsys, "export", "--output", str(target), "--format", "jsonl") == (
            0,
            f"wrote 22 files to {target}\n",
            "",
        )
        code, out, _ = _run(capsys, "validate", "--data", str(target))
        assert code == 0
        assert out == (
            f"{target}: valid; 2 practices, 6 staff_users, 6 membership_plans, 4 campaigns, "
            "8 payment_plan_templates, 400 members, 96 payment_plans, 70 referrals, "
            "2,882 payments\n"
        )
        back, demo = read_flat(target), load_demo().objects()
        assert len(back) == len(demo)
        assert set(back) == set(demo)

    def test_bad_data_exits_1_with_a_line_per_problem(
        self, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        broken = tmp_path / "broken"
        broken.mkdir()
        for path in data.iterdir():
            (broken / path.name).write_bytes(path.read_bytes())
        payments = (broken / "payments.csv").read_text(encoding="utf-8").splitlines()
        payments[3] = re.sub(",(AUD|USD),", ",AUS,", payments[3], count=1)  # not a currency
        payments[9] = payments[9].replace("charge", "chargeback")
        (broken / "payments.csv").write_text("\n".join(payments) + "\n", encoding="utf-8")
        code, out, err = _run(capsys, "validate", "--data", str(broken), "--max-problems", "1")
        assert (code, out) == (1, "")
        assert err.splitlines()[0].startswith("smilepass: payments.csv:4: currency 'AUS': ")
        assert err.splitlines()[1:] == [
            "smilepass: ... and 1 more (raise --max-problems to see them)"
        ]
        code, _, err = _run(capsys, "members", "--data", str(broken))
        assert code == 1
        assert [line.split(":")[1] for line in err.splitlines()] == [" payments.csv"] * 2

    def test_naive_times_with_a_named_zone(
        self, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Practices' export of wall times: refused, then read in the zone named for them."""
        local = tmp_path / "local"
        local.mkdir()
        for path in data.iterdir():
            text = path.read_text(encoding="utf-8")
            if path.name == "campaigns.csv":
                text = text.replace("+00:00", "")
            (local / path.name).write_text(text, encoding="utf-8")
        assert _run(capsys, "validate", "--data", str(local))[0] == 1
        code, _, _ = _run(capsys, "validate", "--data", str(local), "--naive-zone", "campaigns=UTC")
        assert code == 0


class TestUsage:
    """Bad usage exits 2 with the reason on standard error, and prints nothing."""

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["members", "--practice", "lon"], "unknown practice 'lon'; known: nyc, syd"),
            (["weekly", "--format", "csv"], "the weekly check has three tables"),
            (["dashboard", "--range", "2026-01-01..2026-02-01"], "practices in one time zone"),
            (["demo", "--range", "2026-01-01..2026-02-01"], "the demo takes a range preset"),
            (["members", "--now", "2026-01-01T09:00"], "has no UTC offset"),
            (["members", "--range", "2026-02-01..2026-01-01"], "the end must come after"),
            (["members", "--range", "fortnight"], "unknown range 'fortnight'"),
            (["validate", "--naive-zone", "payments"], "give FILE=ZONE"),
            (["validate", "--max-problems", "0"], "give a whole number >= 1"),
            (["validate", "--data", "x", "--store", "sqlite://"], "not allowed with argument"),
            (["export"], "the following arguments are required: --output"),
            (["export", "--output", "x", "--format", "xlsx"], "invalid choice: 'xlsx'"),
            (["frobnicate"], "invalid choice: 'frobnicate'"),
            (["subscriptions"], "must share one currency"),
        ],
    )
    def test_refused(
        self, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
    ) -> None:
        code, out, err = _run(capsys, *argv)
        assert (code, out) == (2, "")
        assert message in err

    def test_data_without_a_practice(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert _run(capsys, "validate", "--data", str(tmp_path))[0] == 0
        code, _, err = _run(capsys, "members", "--data", str(tmp_path))
        assert (code, err) == (2, "smilepass: error: the data holds no practice\n")

    def test_a_missing_directory(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = _run(capsys, "validate", "--data", str(tmp_path / "none"))
        assert code == 2
        assert "is not a directory" in err


class TestProgress:
    """A progress line on a terminal, nothing in a pipe."""

    class _Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    def test_a_terminal_sees_the_rows_counted(self) -> None:
        stream = self._Terminal()
        show = _progress(stream)
        assert show is not None
        show("payments.csv", 20_000)
        assert stream.getvalue() == "\rreading payments.csv: 20,000 rows\033[K"

    def test_a_pipe_sees_nothing(self) -> None:
        assert _progress(io.StringIO()) is None

    def test_the_line_is_cleared_before_the_result(
        self, data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        terminal = self._Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        code, out, _ = _run(capsys, "validate", "--data", str(data))
        assert code == 0
        assert out.startswith(f"{data}: valid;")
        shown = terminal.getvalue()
        assert "\rreading payments.csv: 2,882 rows\033[K" in shown
        assert shown.count("\rreading ") == 22
        assert shown.endswith("rows\033[K\r\033[K")


class TestProcess:
    """The installed entry points, run as a user would."""

    def test_the_console_script_validates_and_reports(self, data: Path) -> None:
        script = Path(sys.executable).parent / "smilepass"
        env = {**os.environ, "PYTHONWARNINGS": "error"}
        done = subprocess.run(
            [str(script), "validate", "--data", str(data)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout.endswith("2,882 payments\n")

    def test_python_m_exits_1_on_bad_data_and_2_on_bad_usage(self, tmp_path: Path) -> None:
        (tmp_path / "practices.csv").write_text("id,name\n", encoding="utf-8")
        run = [sys.executable, "-m", "smilepass_core"]
        bad = subprocess.run(
            [*run, "dashboard", "--data", str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (bad.returncode, bad.stdout) == (1, "")
        assert bad.stderr.splitlines() == [
            "smilepass: practices.csv:1: timezone: required column missing",
            "smilepass: practices.csv:1: currency: required column missing",
        ]
        usage = subprocess.run(
            [*run, "members", "--format", "xml"], capture_output=True, check=False
        )
        assert usage.returncode == 2


class TestSqlStore:
    def test_reports_from_a_database_match_the_demo(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The demo loaded into SQLite by ``demo --store``: the dashboard and the member
        list read from it print exactly what the in-memory demo prints, and it exports."""
        url = f"sqlite:///{tmp_path / 'demo.db'}"
        assert _run(capsys, "demo", "--store", url)[0] == 0
        for argv in (["dashboard", "--format", "json"], ["members", "--format", "csv"]):
            from_sql = _run(capsys, *argv, "--store", url, "--now", NOW)
            assert from_sql == _run(capsys, *argv, "--now", NOW)
            assert from_sql[1]
        assert _run(capsys, "export", "--store", url, "--output", str(tmp_path / "out"))[0] == 0
        assert len(read_flat(tmp_path / "out")) == len(load_demo().objects())
