"""The reader's first screen, in a real browser at a phone's size (390×844) and a laptop's
(1366×900): the newest update is on it, every key event link lands on its update, "What we
know" changes live, the filters survive a reload, and photos do not shift the page."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from .conftest import Newsroom, wait_until_live

pytestmark = pytest.mark.slow
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1366, "height": 900}}
FACTS = [
    "Polls closed at 20:00 on Sunday; the commission has published no final count.",
    "Police put the crowd in Lantern Square at 12,000; the organisers say 40,000.",
    "Both candidates have claimed victory.",
    "The capital's metro is closed until further notice.",
]

BLOCKS = [
    {"kind": "results", "title": "Presidential election: final result", "source": "Central Electoral Commission",
     "counted": "All polling stations reported.", "rows": [
         {"label": "Anton Vesk", "share": 78.4}, {"label": "Mira Solvane", "share": 14.1},
         {"label": "Three other candidates", "share": 7.5}]},
    {"kind": "comparison", "title": "People detained since Monday", "unit": "people", "rows": [
        {"label": "Interior Ministry", "count": 84, "source": "Interior Ministry"},
        {"label": "Tessel Legal Aid Network", "count": 130, "source": "Tessel Legal Aid Network"}]},
]


@pytest.fixture(params=list(SIZES))
def reader(request: pytest.FixtureRequest, browser: Any) -> Iterator[Any]:
    size = request.param
    context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone", has_touch=size == "phone")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], "the page raised errors"


def busy_story(newsroom: Newsroom, updates: int = 30) -> tuple[str, list[dict[str, Any]]]:
    """A story hours in: a summary, four facts, two live figures blocks, a pinned update, and
    eight key events spread over the night, five of them older than the first page of updates."""
    slug = newsroom.new_story("Second night of protests after the disputed count")
    newsroom.call("PATCH", f"/api/v1/stories/{slug}", json={"facts": FACTS})
    for block in BLOCKS:
        newsroom.call("POST", f"/api/v1/stories/{slug}/blocks", json=block)
    posted = []
    key_at = {0, 3, 6, 8, 9, 15, 22, 28}
    for n in range(updates):
        body = f"Update {n}: " + "Crowds move between the square and the commission's offices. " * (1 + n % 3)
        posted.append(newsroom.post(slug, body=body, key_event=n in key_at))
    pinned = posted[min(20, updates - 1)]
    newsroom.call("PATCH", f"/api/v1/stories/{slug}/entries/{pinned['id']}", json={"pinned": True})
    return slug, posted


def in_view(page: Any, selector: str) -> bool:
    return bool(page.evaluate("""selector => {
        const el = document.querySelector(selector);
        if (!el) return false;
        const box = el.getBoundingClientRect();
        return box.top >= -1 && box.top < innerHeight && box.height > 0;
    }""", selector))


def test_the_first_update_starts_on_the_first_screen(reader: Any, newsroom: Newsroom) -> None:
    slug, posted = busy_story(newsroom)
    reader.goto(f"{newsroom.base_url}/stories/{slug}")
    first = reader.locator(".story-stream .entry").first
    assert first.get_attribute("id") == f"entry-{posted[20]['id']}", "the pinned update leads"
    height = reader.viewport_size["height"]
    top = reader.evaluate("() => document.querySelector('.story-stream .entry').getBoundingClientRect().top")
    assert top < height - 120, f"the first update starts at {top:.0f} px, below the first screen ({height} px)"
    # Every key event and fact is still on the page, not thrown away to make room.
    assert reader.locator(".key-events li").count() == 8
    assert reader.locator(".facts li").count() == len(FACTS)
    if reader.viewport_size["width"] < 600:
        # On a phone the key events are one line that opens, and the facts show their first lines.
        assert reader.locator(".key-events").get_attribute("open") is None
        assert reader.locator(".key-events summary").bounding_box()["height"] < 60
        reader.locator(".facts-more").click()
        assert reader.locator(".facts-more").get_attribute("aria-expanded") == "true"
        assert reader.locator(".facts li").last.is_visible()
    else:
        # On a wide screen they are a sidebar, open, beside the stream.
        assert reader.locator(".key-events").get_attribute("open") is not None
        side = reader.locator(".story-side").bounding_box()
        stream = reader.locator(".story-stream").bounding_box()
        assert side["x"] >= stream["x"] + stream["width"] - 1, "the sidebar sits to the right of the stream"


LONG_HEADLINE = "Kelvaria protests: smaller crowd meets a far larger police force on the second night after the vote"
LONG_STANDFIRST = ("Several thousand supporters of the opposition came back to Lantern Square in Dravonne on Monday "
                   "evening to reject the official landslide for President Anton Vesk, and found riot police waiting "
                   "in far greater numbers than on election night.")


def test_a_long_headline_and_standfirst_leave_the_first_update_on_screen(reader: Any, newsroom: Newsroom) -> None:
    slug, posted = busy_story(newsroom)
    newsroom.call("PATCH", f"/api/v1/stories/{slug}", json={"headline": LONG_HEADLINE, "summary": LONG_STANDFIRST})
    reader.goto(f"{newsroom.base_url}/stories/{slug}")
    height = reader.viewport_size["height"]
    top = reader.evaluate("() => document.querySelector('.story-stream .entry').getBoundingClientRect().top")
    assert top < height - 100, f"the first update starts at {top:.0f} px, below the first screen ({height} px)"
    summary, more = reader.locator(".story-head .summary"), reader.locator(".summary-more")
    # The controls keep their full names for a screen reader, however short they look.
    assert " ".join(reader.locator("[data-view-filter]").text_content().split()) == "Key events only"
    assert reader.locator(".notify .when-off").text_content() == "Notify me of new updates"
    if reader.viewport_size["width"] < 600:
        # The standfirst keeps to three lines, "More" opens it whole, "Less" folds it again.
        line = float(summary.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)"))
        folded = summary.bounding_box()["height"]
        assert folded <= 3 * line + 1, f"the standfirst takes {folded / line:.1f} lines"
        assert more.is_visible() and more.get_attribute("aria-expanded") == "false"
        more.click()
        assert more.get_attribute("aria-expanded") == "true" and more.inner_text() == "Less"
        assert summary.bounding_box()["height"] > folded + line
        assert summary.evaluate("el => el.scrollHeight <= el.clientHeight + 1"), "the whole standfirst shows"
        more.click()
        assert summary.bounding_box()["height"] == folded
        # "Key events only", "Newest first | Oldest first" (and "Notify me", where offered) on one row.
        tools = reader.locator(".reader-tools").bounding_box()
        chip = reader.locator("[data-view-filter]").bounding_box()
        assert tools["height"] < 2 * chip["height"], "the reader's controls wrap onto a second row"
        # A short standfirst has no "More" (nor "Less", though the long one was open when it
        # changed), and a live change to a long one brings "More" back.
        more.click()
        newsroom.call("PATCH", f"/api/v1/stories/{slug}", json={"summary": "Thousands return to the square."})
        reader.wait_for_function("() => document.querySelector('.story-head .summary').textContent.startsWith('Thousands')")
        assert more.is_hidden()
        assert more.get_attribute("aria-expanded") == "false" and more.text_content() == "More"
        newsroom.call("PATCH", f"/api/v1/stories/{slug}", json={"summary": LONG_STANDFIRST})
        more.wait_for(state="visible", timeout=3000)
    else:
        assert more.is_hidden(), "a wide screen shows the standfirst whole, with nothing to open"
        assert summary.evaluate("el => el.scrollHeight <= el.clientHeight + 1")


def test_every_key_event_link_brings_its_update_into_view(reader: Any, newsroom: Newsroom) -> None:
    slug, posted = busy_story(newsroom)
    page_url = f"{newsroom.base_url}/stories/{slug}"
    reader.goto(page_url)
    ids = [int(i) for i in reader.locator(".key-events li").evaluate_all("els => els.map(e => e.dataset.id)")]
    assert ids == [posted[n]["id"] for n in (28, 22, 15, 9, 8, 6, 3, 0)], "newest first"
    for entry_id in ids:
        if reader.url != page_url and not reader.url.startswith(page_url + "#"):
            reader.goto(page_url)
        details = reader.locator(".key-events")
        if details.get_attribute("open") is None:
            details.locator("summary").click()
        reader.locator(f".key-events li[data-id='{entry_id}'] a").click()
        target = f"#entry-{entry_id}"
        reader.wait_for_function("""selector => {
            const el = document.querySelector(selector);
            if (!el) return false;
            const box = el.getBoundingClientRect();
            return box.top >= -1 && box.top < innerHeight && box.height > 0;
        }""", arg=target, timeout=5000)
        assert in_view(reader, target), f"key event {entry_id} was not brought into view"
        assert f"Update {[p['id'] for p in posted].index(entry_id)}:" in reader.locator(target).inner_text()


def test_the_live_key_events_list_keeps_to_the_servers_eight(reader: Any, newsroom: Newsroom) -> None:
    slug, _ = busy_story(newsroom)
    reader.goto(f"{newsroom.base_url}/stories/{slug}")
    wait_until_live(reader)
    fresh = newsroom.post(slug, kind="quote", body="We will not leave the square tonight.", speaker="Jana Holt",
                          role="student organiser", key_event=True)
    newest = reader.locator(".key-events li").first
    newest.and_(reader.locator(f"li[data-id='{fresh['id']}']")).wait_for(state="attached", timeout=3000)
    assert reader.locator(".key-events li").count() == 8
    assert reader.locator(".key-events .count").inner_text() == "8"
    quote = "“We will not leave the square tonight.” — Jana Holt"
    assert quote in " ".join(newest.text_content().split()), "a quote keeps its marks and the dash before its speaker"
    # The page, reloaded, lists the same eight, in the same words.
    live_ids = reader.locator(".key-events li").evaluate_all("els => els.map(e => e.dataset.id)")
    reader.reload()
    assert reader.locator(".key-events li").evaluate_all("els => els.map(e => e.dataset.id)") == live_ids
    assert quote in " ".join(reader.locator(".key-events li").first.text_content().split())


def test_what_we_know_changes_live(reader: Any, newsroom: Newsroom) -> None:
    slug, _ = busy_story(newsroom, updates=3)
    reader.goto(f"{newsroom.base_url}/stories/{slug}")
    wait_until_live(reader)
    before = reader.locator(".facts-updated time").get_attribute("datetime")
    facts = ["The commission will publish a full count at noon.", *FACTS[1:]]
    newsroom.call("PATCH", f"/api/v1/stories/{slug}", json={"facts": facts})
    reader.locator(".facts li").first.filter(has_text="full count at noon").wait_for(timeout=3000)
    assert reader.locator(".facts li").count() == len(facts)
    assert reader.locator(".facts-updated time").get_attribute("datetime") != before
    newsroom.call("PATCH", f"/api/v1/stories/{slug}", json={"facts": []})
    reader.locator(".facts").wait_for(state="hidden", timeout=3000)


def test_the_filters_survive_a_reload_and_a_shared_link(reader: Any, newsroom: Newsroom, browser: Any) -> None:
    slug, posted = busy_story(newsroom, updates=12)
    reader.goto(f"{newsroom.base_url}/stories/{slug}")
    reader.click("text=Key events only")
    reader.wait_for_url("**filter=key**")
    reader.click("text=Oldest first")
    reader.wait_for_url("**order=oldest**")
    assert "filter=key" in reader.url, "both choices are in the address"
    shown = [int(i) for i in reader.locator("section.entries .entry").evaluate_all("els => els.map(e => e.dataset.id)")]
    keys = [p["id"] for n, p in enumerate(posted) if n in {0, 3, 6, 8, 9}]
    assert shown == keys, "key events only, oldest first"
    shared = reader.url
    reader.reload()
    assert reader.url == shared
    # Back at the story's plain address, the device remembers the choice.
    reader.goto(f"{newsroom.base_url}/stories/{slug}")
    reader.wait_for_url("**filter=key**")
    assert "order=oldest" in reader.url
    # The shared link opens the same view on another device, which remembers nothing yet.
    other = browser.new_context(viewport=reader.viewport_size)
    try:
        page = other.new_page()
        page.goto(shared)
        assert [int(i) for i in page.locator("section.entries .entry").evaluate_all(
            "els => els.map(e => e.dataset.id)")] == keys
        assert page.locator("[data-view-filter][aria-current=true]").count() == 1
    finally:
        other.close()


def _photo(newsroom: Newsroom, colour: tuple[int, int, int]) -> dict[str, Any]:
    data = io.BytesIO()
    Image.new("RGB", (1600, 1000), colour).save(data, "JPEG")
    response = httpx.post(newsroom.base_url + "/api/v1/uploads", timeout=30,
                          headers={"Authorization": f"Bearer {newsroom.tokens['eve']}"},
                          files={"file": ("square.jpg", data.getvalue(), "image/jpeg")})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_photos_do_not_shift_the_page_as_they_load(reader: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story()
    for n, colour in enumerate([(160, 40, 40), (40, 120, 60), (40, 60, 160)]):
        photo = _photo(newsroom, colour)
        newsroom.post(slug, kind="image", image_url=photo["url"], caption=f"Lantern Square, hour {n}.",
                      credit="Staff photographer", alt=f"A crowd in the square, photo {n}")
        newsroom.post(slug, body=f"Text between the photos, number {n}.")
    # Photos arrive late, as on a slow phone, so any box without its size would jump.
    reader.route("**/media/**", lambda route: (reader.wait_for_timeout(400), route.continue_()))
    reader.add_init_script("""
        window.__shift = 0;
        new PerformanceObserver(list => {
            for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value;
        }).observe({type: 'layout-shift', buffered: true});
    """)
    reader.goto(f"{newsroom.base_url}/stories/{slug}")
    images = reader.locator(".entry-body img")
    assert images.count() == 3
    assert all(images.nth(n).get_attribute("width") and images.nth(n).get_attribute("height") for n in range(3))
    reader.wait_for_function("() => [...document.querySelectorAll('.entry-body img')].every(i => i.complete && i.naturalWidth)",
                             timeout=10000)
    reader.wait_for_timeout(300)
    shift = reader.evaluate("window.__shift")
    assert shift < 0.1, f"cumulative layout shift {shift:.3f}"
