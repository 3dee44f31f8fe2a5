"""A story's end and reopening in a real browser: the page stops following an ended story
for good, and comes back live when the desk reopens it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .conftest import Newsroom, wait_until_live

pytestmark = pytest.mark.slow


def test_ending_stops_the_stream_and_reopening_brings_the_page_back(page: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story()
    newsroom.post(slug, body="Polls close at eight.")
    streams: list[str] = []
    page.on("request", lambda request: streams.append(request.url) if "/live" in request.url else None)
    page.goto(f"{newsroom.base_url}/stories/{slug}")
    wait_until_live(page)
    page.evaluate("window.__sameDocument = true")

    newsroom.call("PATCH", f"/api/v1/stories/{slug}", json={"status": "ended", "closing_summary": "Results on Monday."})
    ended = page.locator(".coverage-ended")
    ended.wait_for(state="visible", timeout=2000)
    assert "Results on Monday." in ended.inner_text()
    assert page.locator(".ended-marker").text_content() == "Coverage ended"
    opened = len(streams)
    time.sleep(8)  # longer than the longest reconnection delay the server asks for (6 s)
    assert len(streams) == opened, f"the page reconnected after the end: {streams[opened:]}"
    assert page.evaluate("window.__sameDocument") is True

    # A reader arriving now gets the ended page, and its script does not open a stream at all.
    page.goto(f"{newsroom.base_url}/stories/{slug}")
    before = len(streams)
    time.sleep(1)
    assert len(streams) == before and page.locator(".coverage-ended").is_visible()

    newsroom.call("PATCH", f"/api/v1/stories/{slug}", json={"status": "live"})
    with page.expect_navigation(timeout=5000):
        # The reader comes back to the tab: the page checks at once and reloads, live.
        page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    wait_until_live(page)
    assert page.locator(".live-marker").text_content() == "Live" and not page.locator(".coverage-ended").is_visible()
    entry = newsroom.post(slug, body="The count is to be redone.")
    page.locator(f"#entry-{entry['id']}").wait_for(timeout=2000)
