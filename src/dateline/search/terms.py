"""What a search query may be, and the words taken from it.

A query is cut into words the way the SQLite index cuts text (letters, digits and marks
make words; everything else separates them), so quotes, `*`, `-`, `:`, `NEAR(` or `AND`
in a query are either ignored or searched for as ordinary words, never obeyed.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from datetime import date, datetime, time, timezone
from functools import lru_cache
from typing import Final

MAX_QUERY_CHARS: Final = 200  # longer is refused (422): nobody types more into a search box
MAX_WORDS: Final = 12  # words past this are left out of the search (the answer lists those used)
DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 50  # hits a page
MAX_OFFSET: Final = 1_000  # how deep paging goes: refine the query rather than page further
MAX_COUNTED: Final = 1_000  # hits are counted up to this; past it the total says "more than"


@lru_cache(maxsize=4096)
def _is_word_char(char: str) -> bool:
    # The categories of the SQLite index's tokenizer: letters, numbers, marks, private use.
    category = unicodedata.category(char)
    return category[0] in "LNM" or category == "Co"


def word_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each word of `text`."""
    start = -1
    for i, char in enumerate(text):
        if _is_word_char(char):
            if start < 0:
                start = i
        elif start >= 0:
            yield start, i
            start = -1
    if start >= 0:
        yield start, len(text)


def folded(word: str) -> str:
    """A word as the index compares it: case and diacritics folded ("Café" → "cafe")."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)) or decomposed


def words_of(query: str) -> list[str]:
    """The distinct words of a query, in order, at most MAX_WORDS of them."""
    found: list[str] = []
    seen: set[str] = set()
    for start, end in word_spans(query[: MAX_QUERY_CHARS * 2]):  # a bound even if called unchecked
        word = unicodedata.normalize("NFC", query[start:end])
        if (key := folded(word)) not in seen:
            seen.add(key)
            found.append(word)
            if len(found) == MAX_WORDS:
                break
    return found


def fts5_query(words: list[str]) -> str:
    """An FTS5 query that finds rows with every word: each one a quoted string, so nothing in
    it is FTS5 syntax (a word has no quote in it; doubled all the same, as FTS5 escapes)."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def plain_query(words: list[str]) -> str:
    """The words for PostgreSQL's `plainto_tsquery`, which reads no operators at all."""
    return " ".join(words)


# --- the date filters ------------------------------------------------------------------------

EARLIEST: Final = datetime.min.replace(tzinfo=timezone.utc)
LATEST: Final = datetime.max.replace(tzinfo=timezone.utc)


def parse_moment(text: str) -> date | datetime:
    """An ISO 8601 date ("2026-03-01") or date and time ("2026-03-01T18:00:00+01:00");
    ValueError otherwise."""
    text = text.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    if len(text) > 40:
        raise ValueError("not an ISO 8601 date or date and time")
    return datetime.fromisoformat(text.upper())


def in_utc(moment: datetime) -> datetime:
    """A moment in UTC (a time without an offset is taken as UTC); past the calendar's ends
    (year 1 at +05:00), the end."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        return EARLIEST if moment.year == 1 else LATEST


def since_moment(value: date | datetime) -> datetime:
    """The first moment `since` admits: a date's midnight (UTC)."""
    if isinstance(value, datetime):
        return in_utc(value)
    return datetime.combine(value, time.min, timezone.utc)


def until_moment(value: date | datetime) -> datetime:
    """The last moment `until` admits: a date includes its whole day (UTC)."""
    if isinstance(value, datetime):
        return in_utc(value)
    return datetime.combine(value, time.max, timezone.utc)
