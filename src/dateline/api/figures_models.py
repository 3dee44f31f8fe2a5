"""What `/api/v1/stories/{slug}/blocks` takes and answers: live figures (docs/figures.md)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictBool, StrictInt

from ..stories.figures import MAX_COUNT, MAX_ROWS, BlockKind
from .models import FilledLine, Line, StartsAt, _Strict

MAX_TITLE = 200
MAX_LABEL = 120
MAX_SOURCE = 200
MAX_UNIT = 40
MAX_COUNTED = 200
MAX_CORRECTION = 1_000

Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]
Share = Annotated[float, Field(ge=0, le=100, description="Per cent, 0 to 100; computed when every row has a count.")]
Reported = Annotated[StartsAt, Field(description="When the figure was reported (default: now).")]


class FigureRow(_Strict):
    label: Annotated[FilledLine, Field(max_length=MAX_LABEL, description="A candidate, a party, who estimates.")]
    count: Count | None = None
    share: Share | None = None
    source: Annotated[Line, Field(max_length=MAX_SOURCE, description="Where this figure comes from, "
                                  "if not the block's source.")] | None = None
    reported_at: Reported | None = None


class _Figures(_Strict):
    unit: Annotated[Line, Field(max_length=MAX_UNIT, description="What is counted: votes, people.")] | None = None
    counted: Annotated[Line, Field(max_length=MAX_COUNTED, description=(
        "The \"counted so far\" line: \"Ballots counted: 62% of polling stations\"."))] | None = None
    source: Annotated[Line, Field(max_length=MAX_SOURCE, description="Where the figures come from.")] | None = None
    reported_at: Reported | None = None
    rows: Annotated[list[FigureRow], Field(min_length=1, max_length=MAX_ROWS)] | None = None
    key_event: StrictBool | None = Field(None, description="Marks figures readers are told of (a result).")
    notify: StrictBool | None = Field(None, description="Send the new figures as a browser notification "
                                      "(editors, live stories).")

    def figures(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("unit", "counted", "source", "reported_at")} | {
            "rows": [row.model_dump() for row in self.rows or []]}


class BlockCreate(_Figures):
    kind: BlockKind
    title: Annotated[FilledLine, Field(max_length=MAX_TITLE)]
    rows: Annotated[list[FigureRow], Field(min_length=1, max_length=MAX_ROWS)]


class BlockUpdate(_Figures):
    """Send what changes; `rows` replaces them all (with `unit`, `counted`, `source` and
    `reported_at` as sent, or as they were)."""

    title: Annotated[FilledLine, Field(max_length=MAX_TITLE)] | None = None
    correction: Annotated[Line, Field(max_length=MAX_CORRECTION, description=(
        "This change corrects a wrong figure: what was wrong. Readers see it, with the earlier figures."
    ))] | None = None


class FigureRowOut(BaseModel):
    label: str
    count: int | None
    share: float | None
    source: str
    reported_at: str | None


class Block(BaseModel):
    id: int
    story: str
    kind: BlockKind
    title: str
    unit: str
    counted: str
    source: str
    reported_at: str
    rows: list[FigureRowOut]
    key_event: bool
    revision: int
    created_at: str
    updated_at: str
    html: str = Field(description="The block as readers see it: a table, escaped throughout.")
    etag: str
    warnings: list[str] = Field([], description="For the desk to confirm: shares that do not add up to 100 %.")
    notification: int | None = None


class BlockList(BaseModel):
    blocks: list[Block]


class BlockRevision(BaseModel):
    revision: int
    unit: str
    counted: str
    source: str
    reported_at: str
    rows: list[FigureRowOut]
    correction: str
    edited_by: str
    edited_at: str


class BlockRevisionList(BaseModel):
    revisions: list[BlockRevision]


class BlockCheck(BaseModel):
    rows: list[FigureRowOut]
    warnings: list[str]
    html: str = Field(description="How readers would see it.")

