"""Embeds: a video or social post URL becomes a card that loads nothing from elsewhere.

A reader's browser contacts YouTube or Vimeo only after the reader clicks "Play"; the player
then comes from the provider's privacy-enhanced host. Social posts are plain link cards:
no third-party script ever runs on a Dateline page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qs, urlsplit

from markupsafe import escape

# Hosts the reader's browser may frame after a click; the CSP's frame-src lists the same.
PLAYER_ORIGINS = ("https://www.youtube-nocookie.com", "https://player.vimeo.com")
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{6,20}$")


@dataclass(frozen=True)
class Embed:
    provider: str  # "YouTube", "Vimeo", "X", "Bluesky", "Mastodon", … or the host name
    url: str
    player: str | None = None  # the iframe URL, loaded only after a click


def _youtube_id(parts: SplitResult) -> str | None:
    host = parts.hostname or ""
    path = parts.path
    if host == "youtu.be":
        candidate = path.strip("/").split("/")[0]
    elif host.endswith("youtube.com"):
        if path == "/watch":
            candidate = parse_qs(parts.query).get("v", [""])[0]
        elif path.startswith(("/shorts/", "/live/", "/embed/")):
            candidate = path.split("/")[2]
        else:
            return None
    else:
        return None
    return candidate if _YOUTUBE_ID.match(candidate) else None


def classify(url: str) -> Embed:
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.").removeprefix("m.")
    video = _youtube_id(parts)
    if video:
        return Embed("YouTube", url, f"https://www.youtube-nocookie.com/embed/{video}?autoplay=1")
    if host == "vimeo.com":
        number = parts.path.strip("/").split("/")[0]
        if number.isascii() and number.isdigit():
            return Embed("Vimeo", url, f"https://player.vimeo.com/video/{number}?autoplay=1&dnt=1")
    social = {"x.com": "X", "twitter.com": "X", "bsky.app": "Bluesky", "instagram.com": "Instagram",
              "tiktok.com": "TikTok", "facebook.com": "Facebook", "threads.net": "Threads"}
    if host in social:
        return Embed(social[host], url)
    if re.match(r"^/@[^/]+/\d+$", parts.path):
        return Embed("Mastodon", url)
    return Embed(host or "link", url)


def render(url: str) -> str:
    """The card's HTML: a link that works without JavaScript, and a Play button for players."""
    embed = classify(url)
    link = escape(url)
    provider = escape(embed.provider)
    if embed.player:
        return (
            f'<div class="embed embed-player" data-player="{escape(embed.player)}">'
            f'<button type="button" class="embed-play">Play video from {provider}</button>'
            f'<p class="embed-note">Playing loads the video from {provider}, which may set cookies. '
            f'<a href="{link}" rel="noopener noreferrer nofollow ugc" target="_blank">Open on {provider}</a></p>'
            f"</div>"
        )
    return (
        f'<p class="embed embed-link"><span class="embed-provider">{provider}</span> '
        f'<a href="{link}" rel="noopener noreferrer nofollow ugc" target="_blank">{link}</a></p>'
    )
