"""Write each chart of the demo practice "syd" (Harbour Dental) as a PNG.

Usage: ``.venv/bin/python scripts/chart_pictures.py [DIRECTORY]`` (default ``docs/images``).
Writes ``chart-series.png``, ``chart-cohorts.png``, ``chart-receivables.png``,
``chart-referrals.png`` and ``chart-staff.png``, the pictures docs/notebooks.md shows.
Needs the ``[plot]`` extra.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from smilepass_core import dashboard
from smilepass_core.demo import DEMO_NOW, demo_store
from smilepass_core.io.charts import (
    cohort_chart,
    comparison_dashboard,
    receivables_chart,
    referral_chart,
    series_chart,
    staff_chart,
)
from smilepass_core.reports import (
    aged_receivables,
    cohort_retention,
    referral_tracking,
    staff_attribution,
)

PRACTICE = "syd"
DEFAULT_DIRECTORY = Path("docs/images")


def charts() -> dict[str, Figure]:
    """Every chart of the demo practice, this month as of the demo's ``now``, by file stem."""
    store = demo_store()
    board = dashboard(store, practices=PRACTICE, date_range="this_month", now=DEMO_NOW)
    month = board.ranges[PRACTICE]
    return {
        "chart-series": series_chart(board, comparison=comparison_dashboard(store, board)),
        "chart-cohorts": cohort_chart(cohort_retention(store, now=DEMO_NOW, practices=PRACTICE)),
        "chart-receivables": receivables_chart(
            aged_receivables(store, at=DEMO_NOW, practices=PRACTICE)
        ),
        "chart-referrals": referral_chart(
            referral_tracking(store, practices=PRACTICE, revenue_range=month)
        ),
        "chart-staff": staff_chart(
            staff_attribution(store, date_range=month, now=DEMO_NOW, practices=PRACTICE)
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the pictures into the directory given (created if missing); print each path."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=DEFAULT_DIRECTORY,
        help=f"where to write the PNG files (default: {DEFAULT_DIRECTORY})",
    )
    args = parser.parse_args(argv)
    directory: Path = args.directory
    directory.mkdir(parents=True, exist_ok=True)
    for stem, fig in charts().items():
        path = directory / f"{stem}.png"
        # No "Software" stamp: the same data gives the same bytes, so the pictures only
        # change in git when a chart does.
        fig.savefig(path, format="png", dpi=80, metadata={"Software": None})
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
