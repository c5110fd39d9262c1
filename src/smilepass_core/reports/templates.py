"""Template uptake: per payment-plan template, the offers made in a range and how many
patients took them up (docs/reports.md, "Template uptake")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

import attrs

from smilepass_core.domain import PaymentPlan, PaymentPlanTemplate
from smilepass_core.kpi import Ratio
from smilepass_core.money import Money
from smilepass_core.periods import DateRange, as_instant
from smilepass_core.queries import Order, PaymentPlanQuery, ScopeQuery
from smilepass_core.reports._table import Report, Table, practice_ids, sort_rows, zones_of
from smilepass_core.repositories import Store

__all__ = ["TemplateUptake", "TemplateUptakeRow", "template_uptake"]


@attrs.frozen
class TemplateUptakeRow(Table):
    """One template of a practice (``template_id`` ``""``: the plans it offered without
    a template): its offers in the range and those taken up by ``as_of``."""

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "template_id",
        "template",
        "practice",
        "offers",
        "taken_up",
        "take_up_rate",
        "offered_total",
        "taken_up_total",
        "currency",
        "still_offered",
    )

    template_id: str
    template: str
    practice: str
    offers: int
    taken_up: int
    offered_total: Money
    taken_up_total: Money
    currency: str
    #: Offered at ``as_of`` (not retired); ``None`` for the row without a template.
    still_offered: bool | None

    @property
    def take_up_rate(self) -> Decimal | None:
        """Offers taken up per offer, in percent; undefined (``None``) with no offers."""
        return Ratio(self.taken_up, self.offers).percent


@attrs.frozen(repr=False)  # Report's short __repr__
class TemplateUptake(Report):
    """The template uptake report.

    Attributes:
        rows: One per template of each practice, and one per practice for its plans
            offered without a template (when it has any in the range).
        date_range: The range offers are counted in, cut at ``as_of``.
        as_of: The instant the report answers for.
    """

    ROW: ClassVar[type[Table]] = TemplateUptakeRow

    rows: tuple[TemplateUptakeRow, ...]
    date_range: DateRange
    as_of: datetime
    timezones: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)


#: The name of the row of plans offered without a template.
NO_TEMPLATE = "(no template)"


def template_uptake(
    store: Store,
    *,
    date_range: DateRange,
    as_of: datetime,
    practices: Iterable[str] | str | None = None,
    order: Order | None = None,
) -> TemplateUptake:
    """Per payment-plan template of ``practices``: the plans offered from it in
    ``date_range`` (cut at ``as_of``; an offer is a plan's ``created_at``), how many of
    them the patient took up by ``as_of`` (the plan committed: first Active, or
    Completed at once), and the totals of each.

    Every template is listed, offered in the range or not, with whether it is still
    offered at ``as_of``; the plans offered without a template have a row of their own.

    Raises:
        NotFound: an unknown practice id.
    """
    at = as_instant(as_of, "as_of")
    span = date_range.cut(at)
    ids = practice_ids(store, practices)
    templates = store.payment_plan_templates.find(ScopeQuery(practices=ids))
    offers: dict[tuple[str, str | None], list[PaymentPlan]] = {}
    for plan in store.payment_plans.find(PaymentPlanQuery(practices=ids)):
        if plan.created_at in span:
            offers.setdefault((plan.practice_id, plan.template_id), []).append(plan)
    currencies = {p: store.practices.get(p).currency for p in ids}
    rows = []
    for practice_id in ids:  # each practice's templates by name, then its plans without
        mine = sorted(
            (t for t in templates if t.practice_id == practice_id),
            key=lambda t: (t.name.casefold(), t.id),
        )
        rows += [
            _row(practice_id, t, offers.get((practice_id, t.id), []), currencies, at) for t in mine
        ]
        if (practice_id, None) in offers:
            rows.append(_row(practice_id, None, offers[(practice_id, None)], currencies, at))
    return TemplateUptake(
        rows=tuple(sort_rows(rows, order)),
        date_range=span,
        as_of=at,
        timezones=zones_of(store, ids),
    )


def _row(
    practice_id: str,
    template: PaymentPlanTemplate | None,
    plans: list[PaymentPlan],
    currencies: Mapping[str, str],
    at: datetime,
) -> TemplateUptakeRow:
    currency = currencies[practice_id]
    taken = [p for p in plans if p.committed_at is not None and p.committed_at <= at]
    zero = Money.zero(currency)
    return TemplateUptakeRow(
        template_id="" if template is None else template.id,
        template=NO_TEMPLATE if template is None else template.name,
        practice=practice_id,
        offers=len(plans),
        taken_up=len(taken),
        offered_total=sum((p.total for p in plans), zero),
        taken_up_total=sum((p.total for p in taken), zero),
        currency=currency,
        still_offered=None if template is None else template.offered_at(at),
    )
