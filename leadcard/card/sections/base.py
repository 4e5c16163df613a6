"""What a section builder is: ``(Context, Header) -> Shown``.

A builder reads only its explicit inputs and returns its section (None when it has nothing to
show) together with the lead field codes it accounts for — the ones it shows, and the ones
it deliberately keeps out of "Show all fields" (``HAS_PHONE`` only repeats the phone list).
The build takes the union of every builder's codes to work out the rest, so no builder
depends on another having run first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from leadcard.card.context import Context
from leadcard.card.header import Header
from leadcard.card.model import Section


class Shown(NamedTuple):
    section: Section | None
    codes: frozenset[str]  # lead fields this section accounts for


SectionBuilder = Callable[[Context, Header], Shown]
