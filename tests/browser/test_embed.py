"""A story framed in a publisher's article, in a real browser: another origin pastes the
snippet; the story appears, live, sized to fit and styled by the page; links open in the top
window; no cookie of ours is set; a site not allowed cannot frame it."""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ServerProcess, free_port

from .conftest import Newsroom, copy_template

pytestmark = pytest.mark.slow

ARTICLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Publisher article</title>
<style>.live {{ --dateline-accent: #0a66c2; --dateline-font: Georgia, serif; }}</style></head>
<body><h1>The count resumes</h1><p>Our reporters are following the story live.</p>
{snippet}
<p id="after">The rest of the article.</p></body></html>"""


class Publisher:
    """A publisher's site: a folder of pages served on `http://localhost:{port}` (an origin
    other than Dateline's `http://127.0.0.1:{port}`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *args: None  # type: ignore[assignment]
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.port}"

    def page(self, name: str, snippet: str) -> str:
        (self.folder / name).write_text(ARTICLE.format(snippet=snippet))
        return f"{self.origin}/{name}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sites(sqlite_template: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    allowed = Publisher(tmp_path_factory.mktemp("allowed"))
    other = Publisher(tmp_path_factory.mktemp("other"))
    template, tokens = sqlite_template
    server = ServerProcess(copy_template(template, tmp_path_factory.mktemp("embed")),
                           env={"DATELINE_EMBED_ORIGINS": allowed.origin}).start()
    yield Newsroom(server, tokens), allowed, other
    server.stop()
    allowed.close()
    other.close()


def snippet_of(newsroom: Newsroom, slug: str, view: str = "embed") -> str:
    found = httpx.get(newsroom.base_url + "/oembed", params={"url": f"{newsroom.base_url}/stories/{slug}", "view": view})
    assert found.status_code == 200, found.text
    return '<div class="live">' + found.json()["html"] + "</div>"


def frame_height(page: Any) -> float:
    return float(page.evaluate("document.querySelector('iframe').getBoundingClientRect().height"))


def test_a_publisher_embeds_a_live_story(browser: Any, sites: Any) -> None:
    newsroom, allowed, _ = sites
    slug = newsroom.new_story()
    newsroom.post(slug, body="Polls closed at eight.")
    context = browser.new_context(viewport={"width": 900, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(allowed.page("article.html", snippet_of(newsroom, slug)))
    frame = page.frame_locator("iframe")
    frame.locator("article.story").wait_for(timeout=5000)
    page.wait_for_function("() => document.querySelector('iframe').getBoundingClientRect().height < 800", timeout=5000)
    before = frame_height(page)

    entry = newsroom.post(slug, body="Turnout reached **61 per cent**, the commission says.")
    started = time.monotonic()
    frame.locator(f"#entry-{entry['id']}").wait_for(timeout=1000)
    assert time.monotonic() - started < 1.0
    for n in range(4):
        newsroom.post(slug, body=f"Update {n}: crowds gather outside the commission's offices.")
    page.wait_for_function(f"() => document.querySelector('iframe').getBoundingClientRect().height > {before + 100}",
                           timeout=3000)
    # It fits its content: no scroll bar of its own, nothing cut off.
    inner = frame.locator("main").evaluate("main => main.getBoundingClientRect().bottom")
    assert abs(frame_height(page) - inner) < 40

    # Styled by the publisher's CSS custom properties.
    assert "Georgia" in frame.locator("body").evaluate("body => getComputedStyle(body).fontFamily")
    accent = frame.locator("html").evaluate("html => getComputedStyle(html).getPropertyValue('--accent').trim()")
    assert accent == "#0a66c2"

    # No cookie of ours, in this context or any other.
    assert context.cookies() == []

    # A link opens in the top window, not inside the frame.
    with page.expect_navigation(timeout=5000):
        frame.locator(f"#entry-{entry['id']} a.entry-time").click()
    assert page.url == f"{newsroom.base_url}/stories/{slug}/entries/{entry['id']}"
    context.close()
    assert errors == []


def test_the_teaser_keeps_the_latest_three(browser: Any, sites: Any) -> None:
    newsroom, allowed, _ = sites
    slug = newsroom.new_story()
    for n in range(4):
        newsroom.post(slug, body=f"Earlier update {n}.")
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(allowed.page("front.html", snippet_of(newsroom, slug, "teaser")))
    frame = page.frame_locator("iframe")
    frame.locator("article.story.in-teaser").wait_for(timeout=5000)
    assert frame.locator("section.entries .entry").count() == 3
    latest = newsroom.post(slug, body="The newest update.")
    frame.locator(f"#entry-{latest['id']}").wait_for(timeout=1000)
    assert frame.locator("section.entries .entry").count() == 3
    assert "The newest update." in frame.locator("section.entries .entry").first.inner_text()
    # Pinning and deleting, which the teaser has no section for, leave it working.
    newsroom.call("PATCH", f"/api/v1/stories/{slug}/entries/{latest['id']}", json={"pinned": True})
    newsroom.call("DELETE", f"/api/v1/stories/{slug}/entries/{latest['id']}")
    frame.locator(f"#entry-{latest['id']}").wait_for(state="detached", timeout=2000)
    after = newsroom.post(slug, body="After the deletion.")
    frame.locator(f"#entry-{after['id']}").wait_for(timeout=1000)
    assert frame.locator("section.entries .entry").count() <= 3
    context.close()
    assert errors == [], errors


def test_a_site_not_allowed_cannot_frame_it(browser: Any, sites: Any) -> None:
    newsroom, _, other = sites
    slug = newsroom.new_story()
    newsroom.post(slug, body="Polls closed at eight.")
    context = browser.new_context()
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda msg: refused.append(msg.text) if "frame-ancestors" in msg.text else None)
    page.goto(other.page("article.html", snippet_of(newsroom, slug)))
    page.wait_for_selector("iframe", state="attached", timeout=5000)
    deadline = time.monotonic() + 5
    while not refused and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert refused, "the browser refused the frame for its frame-ancestors"
    story_frames = [f for f in page.frames if f.url.startswith(newsroom.base_url)]
    assert all(f.locator("article.story").count() == 0 for f in story_frames)
    context.close()
