"""The flat layout: a practice's data as one file per table with flat columns, and the
child rows (status changes, dependents, instalments, attempts) in files of their own,
keyed by their parent's id. docs/data-format.md gives every file and column.

Each table is ``NAME.csv`` (UTF-8 with or without a byte-order mark, any line ending,
the header in any column order), ``NAME.jsonl`` (one JSON object per line) or
``NAME.parquet`` (the ``[arrow]`` extra). Reading is all or nothing: every problem is
reported at once, with its file, line, column and value, and nothing is returned until
there are none.

>>> import tempfile
>>> from smilepass_core import Practice
>>> with tempfile.TemporaryDirectory() as directory:
...     _ = write_flat([Practice("p1", "=Harbour", "Australia/Sydney", "AUD")], directory)
...     print(Path(directory, "practices.csv").read_text(encoding="utf-8").strip())
...     read_flat(directory)
id,name,timezone,currency
p1,'=Harbour,Australia/Sydney,AUD
(Practice(id='p1', name='=Harbour', timezone='Australia/Sydney', currency='AUD'),)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs

from smilepass_core.errors import (
    InvalidData,
    InvalidRecord,
    InvalidValue,
    NotFound,
    SmilepassError,
)
from smilepass_core.io.records import from_records, to_records
from smilepass_core.memory import InMemoryStore
from smilepass_core.periods import local_instant
from smilepass_core.reports._table import FORMULA_TRIGGERS
from smilepass_core.repositories import STORE_TYPES

__all__ = [
    "FORMATS",
    "LAYOUT",
    "Column",
    "FlatFile",
    "Problem",
    "escape_cell",
    "read_flat",
    "store_from_flat",
    "to_flat",
    "unescape_cell",
    "write_flat",
]

#: The file formats, by file extension.
FORMATS: Final = ("csv", "jsonl", "parquet")
#: Column kinds whose values are numbers: never escaped in CSV (a refund's ``-``).
_NUMERIC: Final = frozenset({"decimal", "integer"})


@attrs.frozen
class Column:
    """One column of a flat file: its name, its kind (``id``, ``text``, ``code``, ``date``,
    ``instant``, ``decimal``, ``integer``, ``boolean``, ``ids``: a JSON array of ids,
    ``integers``: a JSON array of whole numbers) and whether a value is required."""

    name: str
    kind: str
    required: bool


@attrs.frozen
class FlatFile:
    """One file of the layout. A child file (``parent`` set) holds the items of the
    parent's list ``field``, its first column the parent's id; ``embeds`` are the nested
    records a parent's columns carry under a prefix (``account_holder_name``)."""

    name: str
    columns: tuple[Column, ...]
    parent: str | None = None
    field: str | None = None
    embeds: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The column that holds the parent's id (a child file), or the row's id."""
        return self.columns[0].name

    def column(self, name: str) -> Column | None:
        """The column called ``name``, if the file has one."""
        return next((c for c in self.columns if c.name == name), None)

    def embedded(self, embed: str) -> list[str]:
        """The columns that carry the nested record ``embed`` (``discount_id``, ...)."""
        return [c.name for c in self.columns if c.name.startswith(f"{embed}_")]


def _columns(spec: str) -> tuple[Column, ...]:
    """``"id*:id name* email"``: a ``*`` marks a required column, ``:kind`` its kind
    (``text`` when omitted)."""
    columns = []
    for token in spec.split():
        name, _, kind = token.partition(":")
        columns.append(Column(name.rstrip("*"), kind or "text", name.endswith("*")))
    return tuple(columns)


_PERSON = "account_holder_id*:id account_holder_name* account_holder_email account_holder_phone"
_CHANGES = "at*:instant status*:code reason"
_DEPENDENTS = "id*:id name* email phone"

#: Every file of the layout, parents before their children, in load order.
LAYOUT: Final = (
    FlatFile("practices", _columns("id*:id name* timezone*:code currency*:code")),
    FlatFile("staff_users", _columns("id*:id practice_id*:id name*")),
    FlatFile(
        "membership_plans",
        _columns("id*:id practice_id*:id name* price*:decimal currency*:code billing_cycle*:code"),
    ),
    FlatFile(
        "membership_plan_prices",
        _columns("membership_plan_id*:id until*:date price*:decimal"),
        "membership_plans",
        "earlier_prices",
    ),
    FlatFile(
        "campaigns",
        _columns(
            "id*:id practice_id*:id name* promo_code* active_from*:instant active_until:instant "
            "other_codes:ids plans:ids discount_id:id discount_name discount_percent:decimal "
            "discount_amount:decimal discount_currency:code discount_basis:code "
            "discount_plans:ids discount_cycles:integer discount_limit:integer"
        ),
        embeds=("discount",),
    ),
    FlatFile(
        "campaign_status_changes", _columns(f"campaign_id*:id {_CHANGES}"), "campaigns", "history"
    ),
    FlatFile(
        "payment_plan_templates",
        _columns(
            "id*:id practice_id*:id name* min_total*:decimal max_total*:decimal currency*:code "
            "instalment_counts*:integers cycle:code max_deferral_days:integer "
            "members_only:boolean deposit:decimal retired_at:instant"
        ),
    ),
    FlatFile(
        "members",
        _columns(
            f"id*:id practice_id*:id plan_id*:id {_PERSON} start_date*:date campaign_id:id "
            "staff_user_id:id"
        ),
        embeds=("account_holder",),
    ),
    FlatFile("member_status_changes", _columns(f"member_id*:id {_CHANGES}"), "members", "history"),
    FlatFile(
        "member_dependents", _columns(f"member_id*:id {_DEPENDENTS}"), "members", "dependents"
    ),
    FlatFile(
        "member_plan_changes",
        _columns("member_id*:id at*:instant from_plan*:id to_plan*:id reason"),
        "members",
        "plan_changes",
    ),
    FlatFile(
        "member_dependent_changes",
        _columns(
            "member_id*:id at*:instant patient_id*:id patient_name* patient_email "
            "patient_phone added*:boolean reason"
        ),
        "members",
        "dependent_changes",
        embeds=("patient",),
    ),
    FlatFile(
        "member_referral_rewards",
        _columns("member_id*:id at*:instant referral_id*:id"),
        "members",
        "referral_rewards",
    ),
    FlatFile(
        "member_discounts",
        _columns(
            "member_id*:id discount_id*:id name* percent:decimal amount:decimal currency:code "
            "basis:code plans:ids cycles:integer limit:integer units:integer first:integer"
        ),
        "members",
        "discounts",
    ),
    FlatFile(
        "payment_plans",
        _columns(
            "id*:id practice_id*:id patient_id*:id patient_name* patient_email patient_phone "
            "total*:decimal currency*:code payment_type*:code member_id:id archived_at:instant "
            "template_id:id"
        ),
        embeds=("patient",),
    ),
    FlatFile(
        "payment_plan_status_changes",
        _columns(f"payment_plan_id*:id {_CHANGES}"),
        "payment_plans",
        "history",
    ),
    FlatFile(
        "instalments",
        _columns("payment_plan_id*:id number*:integer due_date*:date amount*:decimal"),
        "payment_plans",
        "schedule",
    ),
    FlatFile(
        "instalment_attempts",
        _columns(
            "payment_plan_id*:id number*:integer at*:instant amount*:decimal succeeded*:boolean "
            "payment_id:id reason"
        ),
        "payment_plans",
        "attempts",
    ),
    FlatFile(
        "referrals",
        _columns(
            f"id*:id practice_id*:id {_PERSON} start_date*:date campaign_id:id staff_user_id:id "
            "referring_member_id:id member_id:id"
        ),
        embeds=("account_holder",),
    ),
    FlatFile(
        "referral_status_changes", _columns(f"referral_id*:id {_CHANGES}"), "referrals", "history"
    ),
    FlatFile(
        "referral_dependents",
        _columns(f"referral_id*:id {_DEPENDENTS}"),
        "referrals",
        "dependents",
    ),
    FlatFile(
        "payments",
        _columns(
            "id*:id practice_id*:id amount*:decimal currency*:code kind*:code outcome*:code "
            "at*:instant member_id:id payment_plan_id:id"
        ),
    ),
)
_FILES: Final = {f.name: f for f in LAYOUT}
#: (parent file, list field) -> the child file holding its items.
_CHILDREN: Final = {(f.parent, f.field): f for f in LAYOUT if f.parent}


@attrs.frozen
class Problem:
    """One thing wrong in a file: where (file, line, column), the value, and why.

    ``line`` is the line the row starts on (the header is line 1; a Parquet file's rows
    count from 2 likewise); ``None`` for the file as a whole.
    """

    file: str
    line: int | None
    column: str | None
    value: Any
    reason: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.column is None:
            return f"{where}: {self.reason}"
        if self.value is None:
            return f"{where}: {self.column}: {self.reason}"
        return f"{where}: {self.column} {self.value!r}: {self.reason}"


# -- cells --------------------------------------------------------------------------------


def escape_cell(text: str) -> str:
    """``text`` as written to a CSV cell: a ``'`` in front when a spreadsheet would run it
    as a formula, or when :func:`unescape_cell` would otherwise drop its own ``'``.

    >>> escape_cell("=SUM(A1)"), escape_cell("'=x"), escape_cell("O'Brien")
    ("'=SUM(A1)", "''=x", "O'Brien")
    """
    if text.startswith(FORMULA_TRIGGERS) or _quoted(text):
        return "'" + text
    return text


def unescape_cell(text: str) -> str:
    """A CSV cell's text as :func:`escape_cell` was given it."""
    return text[1:] if _quoted(text) else text


def _quoted(text: str) -> bool:
    return len(text) > 1 and text[0] == "'" and text[1:].startswith((*FORMULA_TRIGGERS, "'"))


def _csv_cell(value: Any, column: Column) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if column.kind in _NUMERIC else escape_cell(text)


# -- writing ------------------------------------------------------------------------------


def to_flat(objects: Iterable[Any]) -> dict[str, list[dict[str, Any]]]:
    """Domain objects as the layout's rows, every file listed (empty ones too); values are
    strings, whole numbers, booleans or ``None``."""
    nested = to_records(objects)
    rows: dict[str, list[dict[str, Any]]] = {f.name: [] for f in LAYOUT}
    for file in LAYOUT:
        for record in nested.get(file.name, ()):
            row: dict[str, Any] = {}
            for name, value in record.items():
                if isinstance(value, dict):
                    row.update({f"{name}_{k}": v for k, v in _cells(value).items()})
                elif name in file.embeds:  # an optional object absent: its columns empty
                    row.update(dict.fromkeys(file.embedded(name)))
                elif isinstance(value, list) and file.column(name) is None:
                    child = _CHILDREN[file.name, name]
                    rows[child.name] += (
                        {child.key: record["id"], **_cells(_flattened(item))} for item in value
                    )
                else:  # a cell (a list of ids or of whole numbers as its JSON array)
                    row[name] = _cells({name: value})[name]
            rows[file.name].append(row)
    return rows


def _flattened(item: dict[str, Any]) -> dict[str, Any]:
    """A child item with its nested records (a dependent change's patient) as prefixed
    cells (``patient_name``)."""
    flat: dict[str, Any] = {}
    for name, value in item.items():
        if isinstance(value, dict):
            flat.update({f"{name}_{k}": v for k, v in value.items()})
        else:
            flat[name] = value
    return flat


def _cells(item: dict[str, Any]) -> dict[str, Any]:
    """A child item's values as cells: a list (a discount's plans) as its JSON array."""
    return {k: json.dumps(v) if isinstance(v, list) else v for k, v in item.items()}


def write_flat(objects: Iterable[Any], directory: str | Path, *, format: str = "csv") -> list[Path]:
    """Write ``objects`` into ``directory`` (created if missing) in the flat layout, one
    file per table, and return the paths written.

    CSV text cells a spreadsheet would run as formulas are escaped (:func:`escape_cell`)
    and read back as they were; reading the directory gives the same objects.

    Raises:
        InvalidValue: an unknown ``format``.
        MissingExtra: ``parquet`` without the ``[arrow]`` extra.
    """
    if format not in FORMATS:
        raise InvalidValue("format", format, f"must be one of {', '.join(FORMATS)}")
    write = _pyarrow_writer() if format == "parquet" else _WRITERS[format]
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in to_flat(objects).items():
        path = folder / f"{name}.{format}"
        write(path, _FILES[name], rows)
        paths.append(path)
    return paths


def _write_csv(path: Path, file: FlatFile, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(c.name for c in file.columns)
        writer.writerows([_csv_cell(row.get(c.name), c) for c in file.columns] for row in rows)


def _write_jsonl(path: Path, file: FlatFile, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            cells = {c.name: row.get(c.name) for c in file.columns}
            handle.write(json.dumps(cells, ensure_ascii=False) + "\n")


Writer = Callable[[Path, FlatFile, list[dict[str, Any]]], None]
_WRITERS: dict[str, Writer] = {"csv": _write_csv, "jsonl": _write_jsonl}


def _pyarrow_writer() -> Writer:
    from smilepass_core.io.frames import _module  # the [arrow] extra's one import point

    pa = _module("pyarrow", "arrow")
    parquet = _module("pyarrow.parquet", "arrow")

    def write(path: Path, file: FlatFile, rows: list[dict[str, Any]]) -> None:
        types = {"integer": pa.int64(), "boolean": pa.bool_()}
        arrays = {
            c.name: pa.array(
                [_parquet_value(row.get(c.name), c) for row in rows], types.get(c.kind, pa.string())
            )
            for c in file.columns
        }
        parquet.write_table(pa.table(arrays), path)

    return write


def _parquet_value(value: Any, column: Column) -> Any:
    if value is None or column.kind in ("integer", "boolean"):
        return value
    return str(value)


# -- reading ------------------------------------------------------------------------------

#: A row as read: the line it starts on and its cells by column name.
_Row = tuple[int, dict[str, Any]]
#: Marks a row whose id an earlier row of its file has (not a column name: never read).
_DUPLICATE: Final = "\0duplicate"
#: Rows per progress report.
_PROGRESS_EVERY: Final = 10_000


class _Problems:
    """The problems found so far; the first ``limit`` are kept, the rest counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept: list[Problem] = []
        self.omitted = 0
        #: Whether a file as a whole was refused (its rows were not read).
        self.fatal = False
        #: table -> the name of the file it was read from.
        self.files: dict[str, str] = {}

    def add(self, file: str, line: int | None, column: str | None, value: Any, why: str) -> None:
        """Note a problem with one row or cell."""
        if len(self.kept) < self.limit:
            self.kept.append(Problem(self.files.get(file, file), line, column, value, why))
        else:
            self.omitted += 1

    def refuse(self, file: str, line: int | None, column: str | None, why: str) -> None:
        """Note a problem with a whole file: its rows are not checked."""
        self.fatal = True
        self.add(file, line, column, None, why)

    def __bool__(self) -> bool:
        return bool(self.kept)


def read_flat(
    directory: str | Path,
    *,
    naive_zones: Mapping[str, str] | None = None,
    unknown_columns: str = "error",
    max_problems: int = 100,
    progress: Callable[[str, int], None] | None = None,
) -> tuple[Any, ...]:
    """Every object in ``directory``'s flat layout, in load order (see
    :func:`store_from_flat` for the arguments and the checks)."""
    return _read(directory, naive_zones, unknown_columns, max_problems, progress)[0]


def store_from_flat(
    directory: str | Path,
    *,
    naive_zones: Mapping[str, str] | None = None,
    unknown_columns: str = "error",
    max_problems: int = 100,
    progress: Callable[[str, int], None] | None = None,
) -> InMemoryStore:
    """A new :class:`~smilepass_core.memory.InMemoryStore` holding ``directory``'s data.

    Every row is checked: its cells (required, well formed), its parent (a child row's
    parent id exists), and what a store checks (references resolve, ids are unique,
    ledgers balance). All problems are collected before anything is returned.

    Args:
        directory: The folder holding the layout's files; a file that is absent is an
            empty table.
        naive_zones: Time zones for instants written without an offset, by file name
            (``{"payments": "Australia/Sydney"}``, ``"*"`` for every file). Otherwise a
            naive instant is refused; a wall time that does not exist or happens twice in
            the zone is refused too.
        unknown_columns: ``"error"`` (the default) or ``"ignore"``.
        max_problems: How many problems the error lists (the rest are counted).
        progress: Called with a file name and the rows read from it so far, every
            10,000 rows and at the file's end.

    Raises:
        InvalidData: listing each :class:`Problem` (file, line, column, value, reason).
        InvalidValue: a bad argument (an unknown time zone, ``max_problems`` below 1).
    """
    return _read(directory, naive_zones, unknown_columns, max_problems, progress)[1]


def _read(
    directory: str | Path,
    naive_zones: Mapping[str, str] | None,
    unknown_columns: str,
    max_problems: int,
    progress: Callable[[str, int], None] | None,
) -> tuple[tuple[Any, ...], InMemoryStore]:
    if unknown_columns not in ("error", "ignore"):
        raise InvalidValue("unknown_columns", unknown_columns, 'must be "error" or "ignore"')
    if type(max_problems) is not int or max_problems < 1:
        raise InvalidValue("max_problems", max_problems, "must be a whole number >= 1")
    zones = dict(naive_zones or {})
    for name, given in zones.items():
        if name != "*" and name not in _FILES:
            raise InvalidValue("naive_zones", name, f"unknown file; known: {', '.join(_FILES)}")
        local_instant(datetime(2000, 1, 1), given)  # an unknown zone raises here
    folder = Path(directory)
    if not folder.is_dir():
        raise InvalidValue("directory", str(directory), "is not a directory")
    problems = _Problems(max_problems)
    tables = _read_files(folder, unknown_columns == "ignore", problems, progress or _quiet)
    if not problems.fatal:
        for file in LAYOUT:
            _localise(
                file, tables.get(file.name, []), zones.get(file.name, zones.get("*")), problems
            )
        objects, store = _build(tables, problems)
        if not problems:
            return objects, store
    order = {f.name: i for i, f in enumerate(LAYOUT)}
    problems.kept.sort(key=lambda p: (order.get(p.file.rpartition(".")[0], -1), p.line or 0))
    raise InvalidData(str(directory), problems.kept, problems.omitted)


def _quiet(file: str, rows: int) -> None:
    """No progress shown."""


def _read_files(
    folder: Path,
    ignore_unknown: bool,
    problems: _Problems,
    progress: Callable[[str, int], None],
) -> dict[str, list[_Row]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        stem, dot, extension = path.name.rpartition(".")
        if not dot or extension not in FORMATS:
            continue
        if stem not in _FILES:
            problems.refuse(path.name, None, None, f"unknown file; known: {_known()}")
        else:
            found.setdefault(stem, []).append(path)
    tables = {}
    for name, paths in found.items():
        if len(paths) > 1:
            also = " and ".join(p.name for p in paths[1:])
            problems.refuse(paths[0].name, None, None, f"{also} hold the same table: keep one")
            continue
        path, file = paths[0], _FILES[name]
        problems.files[name] = path.name
        header, rows = _READERS[path.suffix[1:]](path, problems)
        if header is not None and _header_ok(path.name, file, header, ignore_unknown, problems):
            tables[name] = _rows(path.name, file, rows, progress)
    return tables


def _known() -> str:
    return ", ".join(f"{f.name}.csv" for f in LAYOUT) + " (or .jsonl, .parquet)"


def _header_ok(
    name: str, file: FlatFile, header: list[str], ignore_unknown: bool, problems: _Problems
) -> bool:
    jsonl = name.endswith(".jsonl")  # its header is the rows' keys: none in an empty file
    before = len(problems.kept) + problems.omitted
    seen: set[str] = set()
    for heading in header:
        if heading in seen:
            problems.refuse(name, 1, heading, "the column appears twice")
        seen.add(heading)
        if file.column(heading) is None and not ignore_unknown:
            known = ", ".join(c.name for c in file.columns)
            problems.refuse(name, 1, heading, f"unknown column; known: {known}")
    for column in file.columns:
        if column.required and column.name not in seen and (header or not jsonl):
            problems.refuse(name, 1, column.name, "required column missing")
    return len(problems.kept) + problems.omitted == before


def _rows(
    name: str,
    file: FlatFile,
    rows: Iterator[tuple[int, dict[str, Any]]],
    progress: Callable[[str, int], None],
) -> list[_Row]:
    kept: list[_Row] = []
    for line, cells in rows:
        kept.append((line, {k: v for k, v in cells.items() if file.column(k) is not None}))
        if len(kept) % _PROGRESS_EVERY == 0:
            progress(name, len(kept))
    progress(name, len(kept))
    return kept


Reader = Callable[[Path, _Problems], tuple[list[str] | None, Iterator[tuple[int, dict[str, Any]]]]]


def _read_csv(
    path: Path, problems: _Problems
) -> tuple[list[str] | None, Iterator[tuple[int, dict[str, Any]]]]:
    kinds = {c.name: c.kind for c in _FILES[path.stem].columns}
    rows: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        line = 1
        try:
            first = next(reader, None)
            if first is None:
                problems.refuse(path.name, None, None, "empty file: it needs at least the header")
                return None, iter(())
            header = [h.strip() for h in first]
            line = reader.line_num + 1
            for cells in reader:
                start, line = line, reader.line_num + 1
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) != len(header):
                    why = f"{len(cells)} cells where the header has {len(header)}"
                    problems.add(path.name, start, None, None, why)
                    continue
                rows.append(
                    (
                        start,
                        {
                            h: c if kinds.get(h) in _NUMERIC else unescape_cell(c)
                            for h, c in zip(header, cells, strict=True)
                        },
                    )
                )
        except (UnicodeDecodeError, csv.Error) as error:
            problems.refuse(path.name, line, None, _unreadable(error))
            return None, iter(())
    return header, iter(rows)


def _unreadable(error: Exception) -> str:
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text ({error.reason})"
    return f"not CSV: {error}"


def _read_jsonl(
    path: Path, problems: _Problems
) -> tuple[list[str] | None, Iterator[tuple[int, dict[str, Any]]]]:
    parsed: list[tuple[int, dict[str, Any]]] = []
    header: dict[str, None] = {}
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    cells = json.loads(text, parse_float=str)
                except json.JSONDecodeError as error:
                    problems.add(path.name, line, None, None, f"not JSON: {error.msg}")
                    continue
                if not isinstance(cells, dict):
                    problems.add(path.name, line, None, None, "not a JSON object")
                    continue
                header.update(dict.fromkeys(cells))
                parsed.append((line, cells))
    except UnicodeDecodeError as error:
        problems.refuse(path.name, None, None, _unreadable(error))
        return None, iter(())
    return list(header), iter(parsed)


def _read_parquet(
    path: Path, problems: _Problems
) -> tuple[list[str] | None, Iterator[tuple[int, dict[str, Any]]]]:
    from smilepass_core.io.frames import _module  # the [arrow] extra's one import point

    parquet = _module("pyarrow.parquet", "arrow")
    try:
        table = parquet.read_table(path)
    except Exception as error:  # pyarrow raises its own (ArrowInvalid, OSError, ...)
        problems.refuse(path.name, None, None, f"not Parquet: {error}")
        return None, iter(())
    rows = table.to_pylist()
    return list(table.column_names), ((i + 2, row) for i, row in enumerate(rows))


_READERS: dict[str, Reader] = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}


def _localise(file: FlatFile, rows: list[_Row], zone_name: str | None, problems: _Problems) -> None:
    """Naive instants of ``file`` read as wall times in ``zone_name`` (in place); without a
    zone, each is a problem (and is read as UTC so that the row's other cells are still
    checked)."""
    instants = [c.name for c in file.columns if c.kind == "instant"]
    for line, cells in rows:
        for name in instants:
            value = cells.get(name)
            try:
                wall = (
                    value
                    if isinstance(value, datetime)
                    else datetime.fromisoformat(str(value).strip())
                )
            except ValueError:
                continue  # not an instant at all: the parser names it
            if wall.tzinfo is not None:
                continue
            try:
                if zone_name is None:
                    raise ValueError(_NAIVE.format(file=file.name))
                cells[name] = local_instant(wall, zone_name)
            except (SmilepassError, ValueError) as error:
                problems.add(file.name, line, name, value, getattr(error, "reason", str(error)))
                cells[name] = wall.replace(tzinfo=UTC)  # so that the row's other cells are read


_NAIVE: Final = (
    "no UTC offset: write one (2026-03-01T09:30:00+11:00) or name the time zone the "
    "file's times are in (naive_zones={{'{file}': 'Australia/Sydney'}}, --naive-zone)"
)


def _build(
    tables: dict[str, list[_Row]], problems: _Problems
) -> tuple[tuple[Any, ...], InMemoryStore]:
    """Each parent row with its children as one record, parsed, then added to a new store
    one by one, every refusal a problem."""
    children = _children(tables, problems)
    store = InMemoryStore()
    objects = []
    refused: set[tuple[str, Any]] = set()  # (type name, id) of the rows refused
    for file in LAYOUT:
        if file.parent:
            continue
        for index, (line, cells) in enumerate(tables.get(file.name, ())):
            if cells.pop(_DUPLICATE, False):
                continue  # reported already
            key = cells.get("id")
            mine = {field: rows.get(key, []) for field, rows in children[file.name].items()}
            record = _record(file, cells, mine)
            try:
                obj = from_records({file.name: [record]})[0][2]
                store.load_labelled([(file.name, index, obj)])
            except InvalidRecord as error:
                refused.add((STORE_TYPES[file.name].__name__, cells.get("id")))
                cause = error.__cause__
                if isinstance(cause, NotFound) and (cause.kind, cause.id) in refused:
                    continue  # it refers to a row already reported
                _report(file, (line, cells), mine, error, problems)
                continue
            objects.append(obj)
    return tuple(objects), store


def _report(
    file: FlatFile,
    row: _Row,
    children: dict[str, list[_Row]],
    error: InvalidRecord,
    problems: _Problems,
) -> None:
    field = error.field
    why = error.reason.removeprefix(f"{field}: ")
    inner, sep, rest = why.partition(": ")
    if sep and file.column(inner) is not None:  # an amount refused for its row's currency
        field, why = inner, rest
    where = _locate(file, row, children, field)
    if error.field in children and not children[error.field]:
        child = _CHILDREN[file.name, error.field].name
        why = f"no rows in {problems.files.get(child, child)}: {why}"
    problems.add(*where, why)


def _children(
    tables: dict[str, list[_Row]], problems: _Problems
) -> dict[str, dict[str, dict[Any, list[_Row]]]]:
    """parent file -> list field -> parent id -> its child rows (in file order); a row
    whose parent is missing is a problem."""
    ids: dict[str, dict[Any, int]] = {f.name: {} for f in LAYOUT if not f.parent}
    for name, first_line in ids.items():
        for line, cells in tables.get(name, ()):
            key = cells.get("id")
            if key in first_line and key not in (None, ""):
                problems.add(name, line, "id", key, f"the same id is on line {first_line[key]}")
                cells[_DUPLICATE] = True
            first_line.setdefault(key, line)
    grouped: dict[str, dict[str, dict[Any, list[_Row]]]] = {name: {} for name in ids}
    for file in LAYOUT:
        if not file.parent or not file.field:
            continue
        mine = grouped[file.parent].setdefault(file.field, {})
        for line, cells in tables.get(file.name, ()):
            key = cells.get(file.key)
            if key in (None, "") or key not in ids[file.parent]:
                why = "is required" if key in (None, "") else f"no row of {file.parent} has this id"
                problems.add(file.name, line, file.key, key, why)
                continue
            mine.setdefault(key, []).append((line, cells))
    return grouped


def _record(
    file: FlatFile, cells: dict[str, Any], children: dict[str, list[_Row]]
) -> dict[str, Any]:
    record = _nested(file, cells)
    for field, rows in children.items():
        child = _CHILDREN[file.name, field]
        record[field] = [
            _nested(child, {k: v for k, v in row.items() if k != child.key}) for _, row in rows
        ]
    return record


def _nested(file: FlatFile, cells: dict[str, Any]) -> dict[str, Any]:
    """A row's cells as a record: the columns of each of the file's ``embeds`` gathered
    into a nested record under its name."""
    record: dict[str, Any] = {}
    for name, value in cells.items():
        prefix = next((e for e in file.embeds if name.startswith(f"{e}_")), None)
        if prefix is None:
            record[name] = value
        else:
            record.setdefault(prefix, {})[name[len(prefix) + 1 :]] = value
    for embed in file.embeds:
        record.setdefault(embed, {})
    return record


def _locate(
    file: FlatFile, row: _Row, children: dict[str, list[_Row]], field: str
) -> tuple[str, int | None, str | None, Any]:
    """The file, line, column and value a parser's or store's ``field`` path names."""
    head, _, rest = field.partition(".")
    name, bracket, index = head.partition("[")
    if name in children:
        child = _CHILDREN[file.name, name]
        position = int(index.rstrip("]")) if bracket and index.rstrip("]").isdigit() else None
        rows = children[name]
        if position is not None and position < len(rows):
            line, cells = rows[position]
            embed, _, inner = rest.partition(".")
            column = f"{embed}_{inner}" if inner and embed in child.embeds else rest or None
            return child.name, line, column, cells.get(column) if column else None
        return file.name, row[0], None, None
    column = f"{name}_{rest}" if rest and name in file.embeds else head
    if file.column(column) is None:
        return file.name, row[0], None, None
    return file.name, row[0], column, row[1].get(column)
