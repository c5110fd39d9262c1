"""Plain records: domain objects to and from dicts of strings, numbers and lists.

A record is what a host reads from CSV or a database: ``{"id": "m1",
"start_date": "2026-03-01", ...}``. Instants are ISO 8601 strings **with** an
offset (a naive one is refused), dates are ``YYYY-MM-DD``, money is a decimal
string plus a ``currency`` field, statuses and kinds are case-insensitive
strings, an empty string is "absent". Histories, schedules, attempts and
dependents are lists of such records; ids and a template's instalment counts are
lists of strings and whole numbers (or, in a flat file's cell, their JSON array text).

>>> from datetime import datetime, timezone
>>> from smilepass_core import Practice
>>> tables = to_records([Practice("p1", "Harbour Dental", "Australia/Sydney", "AUD")])
>>> tables["practices"]
[{'id': 'p1', 'name': 'Harbour Dental', 'timezone': 'Australia/Sydney', 'currency': 'AUD'}]
>>> from_records(tables)  # doctest: +NORMALIZE_WHITESPACE
[('practices', 0,
  Practice(id='p1', name='Harbour Dental', timezone='Australia/Sydney', currency='AUD'))]
"""

from __future__ import annotations

import contextvars
import enum
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any, TypeVar

from smilepass_core.domain import (
    BillingCycle,
    Campaign,
    CampaignStatus,
    DependentChange,
    Instalment,
    InstalmentAttempt,
    Member,
    MembershipPlan,
    MembershipStatus,
    Patient,
    Payment,
    PaymentKind,
    PaymentOutcome,
    PaymentPlan,
    PaymentPlanStatus,
    PaymentPlanTemplate,
    PaymentType,
    PlanChange,
    Practice,
    PricePoint,
    Referral,
    ReferralReward,
    ReferralStatus,
    StaffUser,
    Status,
    StatusChange,
)
from smilepass_core.domain.discounts import AppliedDiscount, Discount, DiscountBasis
from smilepass_core.errors import InvalidRecord, InvalidValue, SmilepassError
from smilepass_core.memory import InMemoryStore
from smilepass_core.money import Money, exact_decimal
from smilepass_core.periods import as_instant
from smilepass_core.repositories import STORE_TYPES

__all__ = ["TABLES", "from_records", "load_records", "store_from_records", "to_records"]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)
Record = dict[str, Any]


class _FieldError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(reason)


# -- reading fields ----------------------------------------------------------------------

#: Whether a column no parser reads is an error (the default) or ignored.
_STRICT: contextvars.ContextVar[bool] = contextvars.ContextVar("strict", default=True)
_BOM = "\ufeff"


class _Tracked(Mapping[str, Any]):
    """A record that remembers the columns its parser looked at; a byte-order mark at the
    start of a column name (a CSV saved by a spreadsheet) is dropped."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self._data = {
            (k.removeprefix(_BOM) if isinstance(k, str) else k): v for k, v in record.items()
        }
        self.read: set[Any] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        self.read.add(key)
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self._data.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def _columns(parse: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], T]:
    """``parse`` refusing a record with a column it does not read (unless ignored)."""

    def strict(record: Any) -> T:
        if not isinstance(record, Mapping):
            raise _FieldError("record", f"expected a mapping, got {type(record).__name__}")
        tracked = _Tracked(record)
        result = parse(tracked)
        unknown = sorted((str(k) for k in tracked if k not in tracked.read), key=str)
        if unknown and _STRICT.get():
            known = ", ".join(sorted(str(k) for k in tracked.read))
            raise _FieldError(unknown[0], f"unknown column; known: {known}")
        return result

    return strict


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _get(record: Mapping[str, Any], name: str, parse: Callable[[Any], T]) -> T:
    """``parse(record[name])``; a missing or empty value is an error."""
    if name not in record or _absent(record[name]):
        raise _FieldError(name, "is required")
    try:
        return parse(record[name])
    except _FieldError as inner:
        sep = "" if inner.field.startswith("[") else "."
        raise _FieldError(f"{name}{sep}{inner.field}", inner.reason) from None
    except (SmilepassError, ValueError, TypeError, KeyError) as error:
        raise _FieldError(name, str(error)) from None


def _opt(record: Mapping[str, Any], name: str, parse: Callable[[Any], T]) -> T | None:
    """``parse(record[name])``, or ``None`` when missing or empty."""
    if _absent(record.get(name)):
        return None
    return _get(record, name, parse)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value.strip()


def _date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return date.fromisoformat(_str(value))


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        return as_instant(value)
    return as_instant(datetime.fromisoformat(_str(value)))


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("expected a whole number, got a bool")
    if isinstance(value, int):
        return value
    return int(_str(value))


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _str(value).lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _choice(kind: type[E]) -> Callable[[Any], E]:
    def parse(value: Any) -> E:
        if isinstance(value, kind):
            return value
        text = _str(value).lower()
        try:
            return kind(text)
        except ValueError:
            allowed = ", ".join(m.value for m in kind)
            raise ValueError(f"unknown {kind.__name__} {value!r}; allowed: {allowed}") from None

    return parse


def _money(record: Mapping[str, Any], name: str, currency: str) -> Money:
    return _get(record, name, lambda v: Money.of(v, currency))


def _list(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError("expected a list of records")
    items = list(value)
    for item in items:
        if not isinstance(item, Mapping):
            raise TypeError("expected a list of records")
    return items


def _each(
    record: Mapping[str, Any], name: str, parse: Callable[[Mapping[str, Any]], T]
) -> tuple[T, ...]:
    """Parse every item of the list ``record[name]`` (missing or empty: no items)."""
    if _absent(record.get(name)):
        return ()
    items = _get(record, name, _list)
    result = []
    for i, item in enumerate(items):
        try:
            result.append(parse(item))
        except _FieldError as inner:
            raise _FieldError(f"{name}[{i}].{inner.field}", inner.reason) from None
        except (SmilepassError, ValueError, TypeError) as error:
            raise _FieldError(f"{name}[{i}]", str(error)) from None
    return tuple(result)


@_columns
def _patient(r: Mapping[str, Any]) -> Patient:
    return Patient(
        id=_get(r, "id", _str),
        name=_get(r, "name", _str),
        email=_opt(r, "email", _str),
        phone=_opt(r, "phone", _str),
    )


@_columns
def _plan_change(r: Mapping[str, Any]) -> PlanChange:
    return PlanChange(
        at=_get(r, "at", _instant),
        from_plan=_get(r, "from_plan", _str),
        to_plan=_get(r, "to_plan", _str),
        reason=_opt(r, "reason", _str) or "",
    )


@_columns
def _dependent_change(r: Mapping[str, Any]) -> DependentChange:
    return DependentChange(
        at=_get(r, "at", _instant),
        patient=_get(r, "patient", _patient),
        added=_get(r, "added", _bool),
        reason=_opt(r, "reason", _str) or "",
    )


@_columns
def _referral_reward(r: Mapping[str, Any]) -> ReferralReward:
    return ReferralReward(at=_get(r, "at", _instant), referral_id=_get(r, "referral_id", _str))


def _history(status: type[Status]) -> Callable[[Mapping[str, Any]], Any]:
    @_columns
    def _change(r: Mapping[str, Any]) -> tuple[Any, datetime, str]:
        to = status.parse(r.get("status", r.get("to")))
        return to, _get(r, "at", _instant), _opt(r, "reason", _str) or ""

    def parse(records: Any) -> tuple[StatusChange[Any], ...]:
        changes: list[StatusChange[Any]] = []
        for i, r in enumerate(_list(records)):
            try:
                to, at, reason = _change(r)
            except _FieldError as inner:
                raise _FieldError(f"[{i}].{inner.field}", inner.reason) from None
            except SmilepassError as error:
                raise _FieldError(f"[{i}].status", str(error)) from None
            changes.append(StatusChange(at, changes[-1].to if changes else None, to, reason))
        return tuple(changes)

    return parse


# -- one parser per table -----------------------------------------------------------------


def _practice(r: Mapping[str, Any]) -> Practice:
    return Practice(
        _get(r, "id", _str),
        _get(r, "name", _str),
        _get(r, "timezone", _str),
        _get(r, "currency", _str),
    )


def _staff_user(r: Mapping[str, Any]) -> StaffUser:
    return StaffUser(_get(r, "id", _str), _get(r, "practice_id", _str), _get(r, "name", _str))


def _membership_plan(r: Mapping[str, Any]) -> MembershipPlan:
    currency = _get(r, "currency", _str)

    @_columns
    def point(p: Mapping[str, Any]) -> PricePoint:
        return PricePoint(_get(p, "until", _date), _money(p, "price", currency))

    return MembershipPlan(
        id=_get(r, "id", _str),
        practice_id=_get(r, "practice_id", _str),
        name=_get(r, "name", _str),
        price=_money(r, "price", currency),
        billing_cycle=_get(r, "billing_cycle", _choice(BillingCycle)),
        earlier_prices=_each(r, "earlier_prices", point),
    )


def _campaign(r: Mapping[str, Any]) -> Campaign:
    practice_id = _get(r, "practice_id", _str)
    terms = r.get("discount")
    given = not isinstance(terms, Mapping) or not all(_absent(v) for v in terms.values())
    return Campaign(
        id=_get(r, "id", _str),
        practice_id=practice_id,
        name=_get(r, "name", _str),
        promo_code=_get(r, "promo_code", _str),
        active_from=_get(r, "active_from", _instant),
        active_until=_opt(r, "active_until", _instant),
        history=_opt(r, "history", _history(CampaignStatus)) or (),
        other_codes=_opt(r, "other_codes", _ids) or frozenset(),
        plans=_opt(r, "plans", _ids),
        discount=_opt(r, "discount", _columns(_terms(practice_id, "id"))) if given else None,
    )


def _payment_plan_template(r: Mapping[str, Any]) -> PaymentPlanTemplate:
    currency = _get(r, "currency", _str)
    return PaymentPlanTemplate(
        id=_get(r, "id", _str),
        practice_id=_get(r, "practice_id", _str),
        name=_get(r, "name", _str),
        min_total=_money(r, "min_total", currency),
        max_total=_money(r, "max_total", currency),
        instalment_counts=_get(r, "instalment_counts", _whole_numbers),
        cycle=_opt(r, "cycle", _choice(BillingCycle)) or BillingCycle.MONTHLY,
        max_deferral_days=_opt(r, "max_deferral_days", _int) or 0,
        members_only=_opt(r, "members_only", _bool) or False,
        deposit=_opt(r, "deposit", lambda v: Money.of(v, currency)),
        retired_at=_opt(r, "retired_at", _instant),
    )


def _whole_numbers(value: Any) -> tuple[int, ...]:
    """Whole numbers: a list, or its JSON array text (how a flat file's cell holds it)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(
                f"expected a JSON array of whole numbers ([6, 12, 24]), got {value!r}"
            ) from None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError("expected a list of whole numbers")
    numbers = list(value)
    if not all(type(n) is int for n in numbers):
        raise TypeError("expected a list of whole numbers")
    return tuple(numbers)


def _ids(value: Any) -> frozenset[str]:
    """A set of ids: a list, or its JSON array text (how a flat file's cell holds it)."""
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError("expected a list of ids")
    ids = list(value)
    if not all(isinstance(i, str) for i in ids):
        raise TypeError("expected a list of ids")
    return frozenset(ids)


def _terms(practice_id: str, id_key: str) -> Callable[[Mapping[str, Any]], Discount]:
    """A discount's terms from a record (its id under ``id_key``)."""

    def terms(g: Mapping[str, Any]) -> Discount:
        currency = _opt(g, "currency", _str)
        amount = None
        if not _absent(g.get("amount")):
            if currency is None:
                raise _FieldError("currency", "is required with an amount")
            amount = _money(g, "amount", currency)
        return Discount(
            id=_get(g, id_key, _str),
            practice_id=practice_id,
            name=_get(g, "name", _str),
            percent=_opt(g, "percent", lambda v: exact_decimal(v, "percent")),
            amount=amount,
            basis=_opt(g, "basis", _choice(DiscountBasis)) or DiscountBasis.FLAT,
            plans=_opt(g, "plans", _ids),
            cycles=_opt(g, "cycles", _int),
            limit=_opt(g, "limit", _int),
        )

    return terms


def _grant(practice_id: str) -> Callable[[Mapping[str, Any]], AppliedDiscount]:
    terms = _terms(practice_id, "discount_id")

    @_columns
    def grant(g: Mapping[str, Any]) -> AppliedDiscount:
        units = _opt(g, "units", _int)
        return AppliedDiscount(terms(g), 1 if units is None else units, _opt(g, "first", _int) or 0)

    return grant


def _member(r: Mapping[str, Any]) -> Member:
    practice_id = _get(r, "practice_id", _str)
    return Member(
        id=_get(r, "id", _str),
        practice_id=_get(r, "practice_id", _str),
        plan_id=_get(r, "plan_id", _str),
        account_holder=_get(r, "account_holder", _patient),
        start_date=_get(r, "start_date", _date),
        history=_get(r, "history", _history(MembershipStatus)),
        dependents=_each(r, "dependents", _patient),
        campaign_id=_opt(r, "campaign_id", _str),
        staff_user_id=_opt(r, "staff_user_id", _str),
        plan_changes=_each(r, "plan_changes", _plan_change),
        discounts=_each(r, "discounts", _grant(practice_id)),
        dependent_changes=_each(r, "dependent_changes", _dependent_change),
        referral_rewards=_each(r, "referral_rewards", _referral_reward),
    )


def _payment_plan(r: Mapping[str, Any]) -> PaymentPlan:
    currency = _get(r, "currency", _str)

    @_columns
    def instalment(i: Mapping[str, Any]) -> Instalment:
        return Instalment(
            _get(i, "number", _int), _get(i, "due_date", _date), _money(i, "amount", currency)
        )

    @_columns
    def attempt(a: Mapping[str, Any]) -> InstalmentAttempt:
        return InstalmentAttempt(
            number=_get(a, "number", _int),
            at=_get(a, "at", _instant),
            amount=_money(a, "amount", currency),
            succeeded=_get(a, "succeeded", _bool),
            payment_id=_opt(a, "payment_id", _str),
            reason=_opt(a, "reason", _str) or "",
        )

    return PaymentPlan(
        id=_get(r, "id", _str),
        practice_id=_get(r, "practice_id", _str),
        patient=_get(r, "patient", _patient),
        total=_money(r, "total", currency),
        payment_type=_get(r, "payment_type", _choice(PaymentType)),
        schedule=_each(r, "schedule", instalment),
        history=_get(r, "history", _history(PaymentPlanStatus)),
        attempts=_each(r, "attempts", attempt),
        member_id=_opt(r, "member_id", _str),
        archived_at=_opt(r, "archived_at", _instant),
        template_id=_opt(r, "template_id", _str),
    )


def _payment(r: Mapping[str, Any]) -> Payment:
    return Payment(
        id=_get(r, "id", _str),
        practice_id=_get(r, "practice_id", _str),
        amount=_money(r, "amount", _get(r, "currency", _str)),
        kind=_get(r, "kind", _choice(PaymentKind)),
        outcome=_get(r, "outcome", _choice(PaymentOutcome)),
        at=_get(r, "at", _instant),
        member_id=_opt(r, "member_id", _str),
        payment_plan_id=_opt(r, "payment_plan_id", _str),
    )


def _referral(r: Mapping[str, Any]) -> Referral:
    return Referral(
        id=_get(r, "id", _str),
        practice_id=_get(r, "practice_id", _str),
        account_holder=_get(r, "account_holder", _patient),
        start_date=_get(r, "start_date", _date),
        history=_get(r, "history", _history(ReferralStatus)),
        dependents=_each(r, "dependents", _patient),
        campaign_id=_opt(r, "campaign_id", _str),
        staff_user_id=_opt(r, "staff_user_id", _str),
        referring_member_id=_opt(r, "referring_member_id", _str),
        member_id=_opt(r, "member_id", _str),
    )


#: The parser of each entity type's records.
_PARSERS: dict[type, Callable[[Mapping[str, Any]], Any]] = {
    Practice: _practice,
    StaffUser: _staff_user,
    MembershipPlan: _membership_plan,
    Campaign: _campaign,
    PaymentPlanTemplate: _payment_plan_template,
    Member: _member,
    PaymentPlan: _payment_plan,
    Referral: _referral,
    Payment: _payment,
}
#: Table name -> (type, parser), in the load order of ``repositories.STORE_TYPES`` (table
#: names are the ``Store`` attribute names).
TABLES: dict[str, tuple[type, Callable[[Mapping[str, Any]], Any]]] = {
    name: (kind, _PARSERS[kind]) for name, kind in STORE_TYPES.items()
}


def from_records(
    tables: Mapping[str, Iterable[Mapping[str, Any]]], *, unknown_columns: str = "error"
) -> list[tuple[str, int, Any]]:
    """Parse every record into a domain object: ``[(table, index, object), ...]``.

    A column no parser reads (a misspelt ``staff_user``) is an error unless
    ``unknown_columns="ignore"``; a byte-order mark before a column name is dropped.

    Raises:
        InvalidRecord: naming the table, the record's index, the field and the reason
            (an unknown table name is reported as field ``table``, a table that is not a
            list of records as field ``records``).
        InvalidValue: ``tables`` is not a mapping, or ``unknown_columns`` is neither
            ``"error"`` nor ``"ignore"``.
    """
    if unknown_columns not in ("error", "ignore"):
        raise InvalidValue("unknown_columns", unknown_columns, 'must be "error" or "ignore"')
    if not isinstance(tables, Mapping):
        raise InvalidValue("tables", tables, "must map table names to lists of records")
    token = _STRICT.set(unknown_columns == "error")
    try:
        return _parse_tables(tables)
    finally:
        _STRICT.reset(token)


def _parse_tables(tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[tuple[str, int, Any]]:
    result: list[tuple[str, int, Any]] = []
    for table, records in tables.items():
        if table not in TABLES:
            raise InvalidRecord(table, 0, "table", f"unknown table; known: {', '.join(TABLES)}")
        if isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable):
            raise InvalidRecord(
                table, 0, "records", f"expected a list of records, got {type(records).__name__}"
            )
        parse = _columns(TABLES[table][1])
        for index, record in enumerate(records):
            try:
                result.append((table, index, parse(record)))
            except _FieldError as error:
                raise InvalidRecord(table, index, error.field, error.reason) from None
            except SmilepassError as error:
                field = getattr(error, "field", "") or "record"
                raise InvalidRecord(table, index, str(field), str(error)) from error
    return result


def load_records(
    store: InMemoryStore,
    tables: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    unknown_columns: str = "error",
) -> None:
    """Parse ``tables`` (see :func:`from_records`) and load them into ``store`` atomically:
    on any error nothing of them is kept (formerly ``InMemoryStore.load_records``).

    Raises:
        InvalidRecord: naming the table, the record's index, the field and the reason.
    """
    store.load_labelled(from_records(tables, unknown_columns=unknown_columns))


def store_from_records(
    tables: Mapping[str, Iterable[Mapping[str, Any]]], *, unknown_columns: str = "error"
) -> InMemoryStore:
    """A new :class:`~smilepass_core.memory.InMemoryStore` holding the parsed ``tables``
    (formerly ``InMemoryStore.from_records``)."""
    store = InMemoryStore()
    load_records(store, tables, unknown_columns=unknown_columns)
    return store


# -- writing ------------------------------------------------------------------------------


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def _patient_record(p: Patient) -> Record:
    return {"id": p.id, "name": p.name, "email": p.email, "phone": p.phone}


def _history_record(history: Iterable[StatusChange[Any]]) -> list[Record]:
    return [{"at": _iso(c.at), "status": c.to.value, "reason": c.reason} for c in history]


def _record(obj: Any) -> tuple[str, Record]:
    if isinstance(obj, Practice):
        return "practices", {
            "id": obj.id,
            "name": obj.name,
            "timezone": obj.timezone,
            "currency": obj.currency,
        }
    if isinstance(obj, StaffUser):
        return "staff_users", {"id": obj.id, "practice_id": obj.practice_id, "name": obj.name}
    if isinstance(obj, MembershipPlan):
        return "membership_plans", {
            "id": obj.id,
            "practice_id": obj.practice_id,
            "name": obj.name,
            "price": str(obj.price.amount),
            "currency": obj.price.currency,
            "billing_cycle": obj.billing_cycle.value,
            "earlier_prices": [
                {"until": _iso(p.until), "price": str(p.price.amount)} for p in obj.earlier_prices
            ],
        }
    if isinstance(obj, Campaign):
        return "campaigns", {
            "id": obj.id,
            "practice_id": obj.practice_id,
            "name": obj.name,
            "promo_code": obj.promo_code,
            "active_from": _iso(obj.active_from),
            "active_until": _iso(obj.active_until),
            "history": _history_record(obj.history) if obj.has_own_history else [],
            "other_codes": sorted(obj.other_codes),
            "plans": None if obj.plans is None else sorted(obj.plans),
            "discount": None if obj.discount is None else _terms_record(obj.discount, "id"),
        }
    if isinstance(obj, PaymentPlanTemplate):
        return "payment_plan_templates", {
            "id": obj.id,
            "practice_id": obj.practice_id,
            "name": obj.name,
            "min_total": str(obj.min_total.amount),
            "max_total": str(obj.max_total.amount),
            "currency": obj.currency,
            "instalment_counts": list(obj.instalment_counts),
            "cycle": obj.cycle.value,
            "max_deferral_days": obj.max_deferral_days,
            "members_only": obj.members_only,
            "deposit": None if obj.deposit is None else str(obj.deposit.amount),
            "retired_at": _iso(obj.retired_at),
        }
    if isinstance(obj, Member):
        return "members", {
            "id": obj.id,
            "practice_id": obj.practice_id,
            "plan_id": obj.plan_id,
            "account_holder": _patient_record(obj.account_holder),
            "start_date": _iso(obj.start_date),
            "history": _history_record(obj.history),
            "dependents": [_patient_record(d) for d in obj.dependents],
            "campaign_id": obj.campaign_id,
            "staff_user_id": obj.staff_user_id,
            "plan_changes": [
                {
                    "at": _iso(c.at),
                    "from_plan": c.from_plan,
                    "to_plan": c.to_plan,
                    "reason": c.reason,
                }
                for c in obj.plan_changes
            ],
            "discounts": [_grant_record(g) for g in obj.discounts],
            "dependent_changes": [
                {
                    "at": _iso(c.at),
                    "patient": _patient_record(c.patient),
                    "added": c.added,
                    "reason": c.reason,
                }
                for c in obj.dependent_changes
            ],
            "referral_rewards": [
                {"at": _iso(r.at), "referral_id": r.referral_id} for r in obj.referral_rewards
            ],
        }
    if isinstance(obj, PaymentPlan):
        return "payment_plans", {
            "id": obj.id,
            "practice_id": obj.practice_id,
            "patient": _patient_record(obj.patient),
            "total": str(obj.total.amount),
            "currency": obj.total.currency,
            "payment_type": obj.payment_type.value,
            "schedule": [
                {"number": i.number, "due_date": _iso(i.due_date), "amount": str(i.amount.amount)}
                for i in obj.schedule
            ],
            "history": _history_record(obj.history),
            "attempts": [
                {
                    "number": a.number,
                    "at": _iso(a.at),
                    "amount": str(a.amount.amount),
                    "succeeded": a.succeeded,
                    "payment_id": a.payment_id,
                    "reason": a.reason,
                }
                for a in obj.attempts
            ],
            "member_id": obj.member_id,
            "archived_at": _iso(obj.archived_at),
            "template_id": obj.template_id,
        }
    if isinstance(obj, Payment):
        return "payments", {
            "id": obj.id,
            "practice_id": obj.practice_id,
            "amount": str(obj.amount.amount),
            "currency": obj.amount.currency,
            "kind": obj.kind.value,
            "outcome": obj.outcome.value,
            "at": _iso(obj.at),
            "member_id": obj.member_id,
            "payment_plan_id": obj.payment_plan_id,
        }
    if isinstance(obj, Referral):
        return "referrals", {
            "id": obj.id,
            "practice_id": obj.practice_id,
            "account_holder": _patient_record(obj.account_holder),
            "start_date": _iso(obj.start_date),
            "history": _history_record(obj.history),
            "dependents": [_patient_record(d) for d in obj.dependents],
            "campaign_id": obj.campaign_id,
            "staff_user_id": obj.staff_user_id,
            "referring_member_id": obj.referring_member_id,
            "member_id": obj.member_id,
        }
    raise TypeError(f"not a smilepass_core domain object: {type(obj).__name__}")


def _terms_record(d: Discount, id_key: str) -> dict[str, Any]:
    return {
        id_key: d.id,
        "name": d.name,
        "percent": None if d.percent is None else str(d.percent),
        "amount": None if d.amount is None else str(d.amount.amount),
        "currency": None if d.amount is None else d.amount.currency,
        "basis": d.basis.value,
        "plans": None if d.plans is None else sorted(d.plans),
        "cycles": d.cycles,
        "limit": d.limit,
    }


def _grant_record(grant: AppliedDiscount) -> dict[str, Any]:
    return _terms_record(grant.discount, "discount_id") | {
        "units": grant.units,
        "first": grant.first,
    }


def to_records(objects: Iterable[Any]) -> dict[str, list[Record]]:
    """Domain objects as plain records, grouped by table (only tables with objects)."""
    tables: dict[str, list[Record]] = {}
    for obj in objects:
        table, record = _record(obj)
        tables.setdefault(table, []).append(record)
    return tables
