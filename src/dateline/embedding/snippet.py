"""What a publisher pastes, and who may frame it."""

from __future__ import annotations

from markupsafe import escape

from ..config import Settings

VIEWS = ("embed", "teaser")
DEFAULT_HEIGHTS = {"embed": 800, "teaser": 420}  # before the frame reports its own height


def snippet(origin: str, slug: str, view: str = "embed") -> str:
    """The HTML a publisher pastes into an article: a placeholder linking to the story (what
    readers without scripts, and feed readers, get) and the loader that frames it."""
    url = f"{origin}/stories/{slug}"
    teaser = ' data-dateline-view="teaser"' if view == "teaser" else ""
    return (
        f'<div data-dateline-embed="{escape(url)}"{teaser}><a href="{escape(url)}">Follow the live coverage</a></div>\n'
        f'<script async src="{escape(origin)}/embed.js"></script>'
    )


def frame_ancestors(settings: Settings) -> str:
    """CSP `frame-ancestors` for the framed views: this site, and the sites allowed."""
    origins = settings.frame_origins
    if "*" in origins:
        return "*"
    return " ".join(("'self'", *origins))
