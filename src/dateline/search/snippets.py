"""A hit's snippet: the words around its matches, HTML-escaped, the matches in `<mark>`.

Made here rather than by the database (FTS5's snippet(), PostgreSQL's ts_headline) so that
it is the same on both, is cut from the update as readers see it (Markdown rendered to text,
not its source), and is safe by construction: every character of the text is escaped, and
`<mark>`, `</mark>` and `…` are the only markup added.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any, Final

import nh3
from markupsafe import Markup, escape

from ..stories.markup import render_markdown
from .terms import folded, word_spans

SNIPPET_WORDS: Final = 30  # words shown around the matches
LEAD_WORDS: Final = 6  # words shown before the first match of the snippet
_BLOCK_START = re.compile(r"<(?=/?(?:p|li|h[1-6]|blockquote|pre|br|tr|td|th|figcaption)\b)")


def text_of(fragment: str) -> str:
    """Sanitized HTML as one line of text, blocks apart."""
    return " ".join(html.unescape(nh3.clean(_BLOCK_START.sub(" <", fragment), tags=set())).split())


def entry_texts(kind: str, body: str, fields: dict[str, str]) -> list[str]:
    """The texts of an update a snippet is cut from, the one readers see first first: its
    words with a quote's speaker, a photo's caption and credit; then alt text, a correction."""
    words = text_of(render_markdown(body)) if body.strip() else ""
    texts = [words]
    if kind == "quote":
        who = ", ".join(v for v in (fields.get("speaker", ""), fields.get("role", "")) if v)
        texts = [f"“{words}” — {who}" if words else who]
    elif kind == "image":
        texts = [" ".join(v for v in (fields.get("caption", ""), fields.get("credit", "")) if v), words,
                 fields.get("alt", "")]
    if fields.get("correction"):
        texts.append(f"Correction: {fields['correction']}")
    return [" ".join(text.split()) for text in texts if text.strip()]


def highlight(texts: Iterable[str], words: Iterable[str]) -> Markup:
    """The snippet from the first text that has one of `words` in it (else from the first
    text): the run of SNIPPET_WORDS words with the most of them, each match marked."""
    wanted = {folded(word) for word in words}
    candidates = [t for t in texts if t]
    for text in candidates:
        spans = list(word_spans(text))
        hits = [i for i, (start, end) in enumerate(spans) if folded(text[start:end]) in wanted]
        if hits:
            return _cut(text, spans, set(hits), _best_start(text, spans, hits, wanted))
    if not candidates:
        return Markup("")
    text = candidates[0]
    return _cut(text, list(word_spans(text)), set(), 0)


def _best_start(text: str, spans: list[tuple[int, int]], hits: list[int], wanted: set[str]) -> int:
    """The first word of the window holding the most distinct words of the query (then the
    most matches), the earliest such window on a tie."""
    best: tuple[int, int] = (-1, -1)
    start_of_best = 0
    for hit in hits:
        start = max(0, min(hit - LEAD_WORDS, len(spans) - SNIPPET_WORDS))  # a full window where there is one
        inside = [i for i in hits if start <= i < start + SNIPPET_WORDS]
        score = (len({folded(text[slice(*spans[i])]) for i in inside}), len(inside))
        if score > best:
            best, start_of_best = score, start
    return start_of_best


def _cut(text: str, spans: list[tuple[int, int]], marked: set[int], first: int) -> Markup:
    last = min(len(spans), first + SNIPPET_WORDS)  # one past the last word shown
    begin = 0 if first == 0 else spans[first][0]
    while begin > spans[first - 1][1] and not text[begin - 1].isspace():
        begin -= 1  # with the punctuation that opens the word: a quote mark, a bracket
    end = len(text) if last >= len(spans) else spans[last - 1][1]
    parts: list[Any] = ["…" if begin else ""]
    at = begin
    for i in range(first, last):
        start, stop = spans[i]
        if i in marked:
            parts += [escape(text[at:start]), Markup("<mark>"), escape(text[start:stop]), Markup("</mark>")]
            at = stop
    parts += [escape(text[at:end]), "…" if end < len(text) else ""]
    return Markup("").join(parts)
