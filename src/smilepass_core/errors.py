"""The error family: one root, each member also subclassing the closest builtin."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "ConflictingPayment",
    "CurrencyMismatch",
    "DuplicateId",
    "InvalidData",
    "InvalidMoney",
    "InvalidPeriod",
    "InvalidRecord",
    "InvalidRow",
    "InvalidTransition",
    "InvalidValue",
    "MissingExtra",
    "NaiveDatetime",
    "NotFound",
    "OutOfOrderChange",
    "RuleViolation",
    "SmilepassError",
    "UnknownCurrency",
    "UnknownStatus",
    "UnknownTimezone",
    "VersionConflict",
]


class SmilepassError(Exception):
    """Root of every error smilepass_core raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the message and the attributes, not the constructor's arguments: an
        error crosses a process boundary (multiprocessing, a task queue) intact."""
        extra = {"name": self.name, "path": self.path} if isinstance(self, ImportError) else {}
        return (_rebuild, (type(self), self.args, {**vars(self), **extra}))


def _rebuild(kind: type[SmilepassError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = kind.__new__(kind)
    error.args = args
    for name, value in state.items():
        setattr(error, name, value)
    return error


class InvalidValue(SmilepassError, ValueError):
    """A field was given a value it cannot hold."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {reason} (got {value!r})")


class InvalidMoney(InvalidValue):
    """An amount that cannot be exact money: a float, NaN, too many decimals, ..."""


class UnknownCurrency(InvalidMoney):
    """A currency code that is not an ISO 4217 code."""


class CurrencyMismatch(SmilepassError, TypeError):
    """Two amounts in different currencies were combined."""

    def __init__(self, left: str, right: str, operation: str, *, field: str = "") -> None:
        self.left = left
        self.right = right
        self.operation = operation
        self.field = field
        super().__init__(f"cannot {operation} {left} and {right}: currencies differ")


class InvalidPeriod(InvalidValue):
    """A date range or bucket request that makes no sense (end before start, ...)."""


class UnknownTimezone(InvalidValue):
    """A time zone name that is not in the IANA database."""


class NaiveDatetime(InvalidValue):
    """A datetime without a time zone where an instant is required."""


class MissingExtra(SmilepassError, ImportError):
    """An optional dependency is not installed; ``pip install 'smilepass-core[extra]'`` adds it."""

    def __init__(self, extra: str, module: str, *, wanted: str = "") -> None:
        self.extra = extra
        self.module = module
        self.wanted = wanted
        what = f"{wanted} needs" if wanted else "this needs"
        super().__init__(
            f"{what} {module}, which is not installed: pip install 'smilepass-core[{extra}]'",
            name=module,
        )


class InvalidTransition(SmilepassError, ValueError):
    """A status change that the lifecycle's transition table forbids."""

    def __init__(self, from_: Any, to: Any, *, subject: str = "", allowed: Iterable[Any] = ()):
        self.from_ = from_
        self.to = to
        self.subject = subject
        self.allowed = tuple(allowed)
        names = ", ".join(sorted(a.name for a in self.allowed)) or "none (terminal)"
        where = f"{subject}: " if subject else ""
        super().__init__(
            f"{where}cannot move from {from_.name} to {to.name}; allowed from {from_.name}: {names}"
        )


class OutOfOrderChange(SmilepassError, ValueError):
    """A status change dated before the change it would follow."""

    def __init__(self, previous: Any, at: Any, *, subject: str = "") -> None:
        self.previous = previous
        self.at = at
        self.subject = subject
        where = f"{subject}: " if subject else ""
        super().__init__(
            f"{where}change at {at.isoformat()} is before the last change at {previous.isoformat()}"
        )


class UnknownStatus(SmilepassError, ValueError):
    """A status string from a host that names no status of the set."""

    def __init__(self, value: Any, allowed: Iterable[str], *, field: str = "status") -> None:
        self.value = value
        self.allowed = tuple(allowed)
        self.field = field
        super().__init__(f"{field}: unknown status {value!r}; allowed: {', '.join(self.allowed)}")


class RuleViolation(SmilepassError, ValueError):
    """A domain rule refused an operation (overpayment, refund above collected, ...)."""

    def __init__(self, rule: str, message: str, *, field: str = "", **context: Any) -> None:
        self.rule = rule
        self.field = field
        self.context = context
        super().__init__(message)


class NotFound(SmilepassError, LookupError):
    """No object with this id in the repository."""

    def __init__(self, kind: str, id: str, *, field: str = "") -> None:
        self.kind = kind
        self.id = id
        self.field = field
        where = f"{field}: " if field else ""
        super().__init__(f"{where}{kind} {id!r} not found")


class DuplicateId(SmilepassError, ValueError):
    """An object with this id is already in the repository."""

    def __init__(self, kind: str, id: str) -> None:
        self.kind = kind
        self.id = id
        self.field = "id"
        super().__init__(f"{kind} {id!r} already exists")


class VersionConflict(SmilepassError, RuntimeError):
    """A save stated the version it read, and another write came first (a lost update)."""

    def __init__(self, kind: str, id: str, *, expected: int, actual: int) -> None:
        self.kind = kind
        self.id = id
        self.expected = expected
        self.actual = actual
        self.field = "version"
        super().__init__(
            f"{kind} {id!r} is at version {actual}, not the {expected} this save read: "
            "another write came first; reload it, apply the change again and save"
        )


class ConflictingPayment(DuplicateId, RuleViolation):
    """A payment id recorded again with different content (the same content is a no-op)."""

    def __init__(self, id: str) -> None:
        self.kind = "Payment"
        self.id = id
        self.rule = "conflicting_payment"
        self.field = "id"
        self.context = {"payment_id": id}
        Exception.__init__(self, f"payment {id!r} is already recorded with different content")


class InvalidRecord(SmilepassError, ValueError):
    """A record (or object) in a load was refused; nothing of that load was kept."""

    def __init__(self, table: str, index: int, field: str, reason: str) -> None:
        self.table = table
        self.index = index
        self.field = field
        self.reason = reason
        super().__init__(f"{table}[{index}].{field}: {reason}")


class InvalidData(SmilepassError, ValueError):
    """Files of data were refused, nothing of them loaded: every problem found, one per
    line (the first ``len(problems)`` of them; ``omitted`` more were found)."""

    def __init__(self, source: str, problems: Iterable[object], omitted: int = 0) -> None:
        self.source = source
        self.problems = tuple(problems)
        self.omitted = omitted
        total = len(self.problems) + omitted
        lines = [f"{source}: {total} problem{'s' if total != 1 else ''}, nothing loaded"]
        lines += [str(p) for p in self.problems]
        if omitted:
            lines.append(f"... and {omitted} more (raise the limit to see them)")
        super().__init__("\n".join(lines))


class InvalidRow(SmilepassError, ValueError):
    """A stored row the library cannot hold (a value another program wrote: a status it
    does not know, a negative amount, a broken history), refused when read."""

    def __init__(self, table: str, id: str, column: str, reason: str) -> None:
        self.table = table
        self.id = id
        self.column = column
        self.field = column
        self.reason = reason
        super().__init__(f"{table} row {id!r}, column {column}: {reason}")
