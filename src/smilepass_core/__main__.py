"""``python -m smilepass_core``: the command line (:mod:`smilepass_core.cli`)."""

from smilepass_core.cli import (
    format_table,
    main,
    render,
    render_latest_members,
    render_member_counts,
    render_plan_counts,
    render_plans_needing_action,
    render_practice,
)

__all__ = [
    "format_table",
    "main",
    "render",
    "render_latest_members",
    "render_member_counts",
    "render_plan_counts",
    "render_plans_needing_action",
    "render_practice",
]

if __name__ == "__main__":
    raise SystemExit(main())
