"""Markdown in, safe HTML out.

Reporters write Markdown (raw HTML is allowed in it, as newsroom tools paste it); the result
always passes through nh3, an allowlist sanitizer. Nothing outside the allowlist survives:
no script, no style, no event handler, no `svg` or `math` (their parsing rules are where
mutation XSS lives), and links only to http, https and mailto.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "strong", "b", "em", "i", "u", "s", "del", "ins", "mark", "small",
        "sub", "sup", "a", "ul", "ol", "li", "blockquote", "q", "cite", "code", "pre",
        "h2", "h3", "h4", "abbr", "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "th": {"scope", "colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
    "ol": {"start"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow ugc"


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # "commonmark" plus tables and strikethrough; typographer off so quotes stay as typed.
    return MarkdownIt("commonmark", {"html": True, "linkify": False}).enable(["table", "strikethrough"])


def sanitize(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
    )


def render_markdown(source: str) -> str:
    """Render a Markdown body to sanitized HTML."""
    return sanitize(_markdown().render(source)).strip()
