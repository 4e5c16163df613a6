"""What the card offers to do (issue 13): the stages a lead can be moved to.

The card itself only shows the controls; `flows/actions.py` carries the actions out and checks
the chosen stage against the same portal list again, so a forged choice is refused there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from leadcard.card.context import Context
from leadcard.card.values import text


@dataclass(frozen=True)
class StageChoice:
    """One of the portal's lead stages (`crm.status.list`, ENTITY_ID=STATUS), in its order."""

    code: str
    name: str
    current: bool


def stage_choices(ctx: Context) -> tuple[StageChoice, ...]:
    """The portal's lead stages in their SORT order; empty when the list is unknown."""
    current = ctx.text("STATUS_ID")
    items = [i for i in ctx.ref.statuses.get("STATUS") or () if isinstance(i, Mapping)]
    items.sort(key=lambda i: _sort_key(i.get("SORT")))
    out = []
    for item in items:
        code = text(item.get("STATUS_ID"))
        if code:
            out.append(StageChoice(code=code, name=text(item.get("NAME")) or code,
                                   current=code == current))
    return tuple(out)


def _sort_key(raw: object) -> int:
    try:
        return int(str(raw))
    except ValueError:
        return 0
