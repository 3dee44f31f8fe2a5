"""What `GET /api/v1/search` answers (docs/search.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..vocabulary import EntryKind, EntryStatus, StoryStatus


class SearchHit(BaseModel):
    kind: Literal["story", "update"]
    story: str = Field(description="The story's slug.")
    headline: str
    story_status: StoryStatus
    entry_id: int | None = Field(description="The update's id; null for a story.")
    entry_kind: EntryKind | None
    entry_status: EntryStatus | None = Field(description="`pending` only for newsroom members; null for a story.")
    url: str = Field(description="The permalink's path: /stories/{slug} or /stories/{slug}/entries/{id}.")
    published_at: str = Field(description="When the update was published or the story started.")
    snippet: str = Field(description="HTML: the text around the matches, escaped, each match in <mark>.")


class SearchResults(BaseModel):
    q: str
    words: list[str] = Field(description="The words searched for: every hit has all of them.")
    hits: list[SearchHit]
    total: int = Field(description="Hits in all, counted up to a limit (docs/search.md).")
    total_exact: bool = Field(description="False when there are more hits than `total`.")
    next_offset: int | None = Field(description="The `offset` of the next page; null on the last.")
