"""The live story page in a real browser: updates arrive without reload, and it stays usable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import ServerProcess
from dateline.accounts import users as accounts
from dateline.stories import entries, story as stories
from dateline.db import Database

from .conftest import Newsroom, copy_template, wait_until_live

pytestmark = pytest.mark.slow


def open_story(page: Any, newsroom: Newsroom, slug: str) -> None:
    page.goto(f"{newsroom.base_url}/stories/{slug}")
    # Wait until the stream is open: its answer has begun, so the server holds the reader.
    wait_until_live(page)


def test_a_post_appears_within_a_second_without_reload(page: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story()
    newsroom.post(slug, body="The first update.")
    open_story(page, newsroom, slug)
    page.evaluate("window.__sameDocument = true")
    entry = newsroom.post(slug, body="Riot police **seal off** Unity Street.", key_event=True)
    new = page.locator(f"#entry-{entry['id']}")
    new.wait_for(timeout=1000)
    assert "seal off" in new.locator(".entry-body strong").inner_text()
    assert page.locator("section.entries .entry").first.get_attribute("id") == f"entry-{entry['id']}"
    assert page.locator(".key-events li").count() == 1
    assert page.evaluate("window.__sameDocument") is True, "no reload happened"
    assert "New update" in page.locator("#announcer").inner_text()


def test_edit_delete_and_pin_are_reflected(page: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story()
    first = newsroom.post(slug, body="About 5,000 people.")
    second = newsroom.post(slug, body="A second update.")
    open_story(page, newsroom, slug)

    newsroom.call("PATCH", f"/api/v1/stories/{slug}/entries/{first['id']}", json={"body": "About 6,000 people."})
    edited = page.locator(f"#entry-{first['id']}")
    edited.locator(".entry-body", has_text="6,000").wait_for(timeout=2000)
    assert edited.locator(".edited").is_visible()

    newsroom.call("PATCH", f"/api/v1/stories/{slug}/entries/{first['id']}", json={"pinned": True})
    page.locator(f"section.pinned #entry-{first['id']}").wait_for(timeout=2000)
    assert page.locator("section.pinned").is_visible()

    newsroom.call("DELETE", f"/api/v1/stories/{slug}/entries/{second['id']}")
    page.locator(f"#entry-{second['id']}").wait_for(state="detached", timeout=2000)

    newsroom.call("PATCH", f"/api/v1/stories/{slug}", json={"headline": "Night two: crowds thin"})
    page.locator("h1", has_text="Night two: crowds thin").wait_for(timeout=2000)


def test_a_reader_down_in_older_updates_gets_a_bar_not_a_jump(page: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story()
    for n in range(15):
        newsroom.post(slug, body=f"Update {n}\n\n" + "A paragraph of reporting. " * 20)
    open_story(page, newsroom, slug)
    page.mouse.wheel(0, 2500)
    page.wait_for_function("() => window.scrollY > 2000")
    newsroom.post(slug, body="Fresh news one")
    newsroom.post(slug, body="Fresh news two")
    bar = page.locator("button.new-updates")
    bar.filter(has_text="2 new updates").wait_for(timeout=2000)
    assert page.locator(".entry", has_text="Fresh news one").count() == 0, "held back until asked for"
    bar.click()
    page.locator(".entry", has_text="Fresh news two").wait_for(timeout=2000)
    assert bar.is_hidden()


def test_the_tab_title_counts_updates_while_in_the_background(page: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story("Election night")
    open_story(page, newsroom, slug)
    title = page.title()
    # Headless Chromium is always "visible": tell the page it went to the background.
    page.evaluate("""() => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    newsroom.post(slug, body="One")
    newsroom.post(slug, body="Two")
    page.wait_for_function(f"() => document.title === '(2) ' + {title!r}", timeout=3000)
    page.evaluate("""() => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.wait_for_function(f"() => document.title === {title!r}")


def test_oldest_first_is_remembered_on_the_device(page: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story()
    ids = [newsroom.post(slug, body=f"Update {n}")["id"] for n in range(3)]
    page.goto(f"{newsroom.base_url}/stories/{slug}")
    page.click("text=Oldest first")
    page.wait_for_url("**order=oldest")
    shown = page.locator("section.entries .entry").evaluate_all("els => els.map(e => +e.dataset.id)")
    assert shown == ids
    page.goto(f"{newsroom.base_url}/stories/{slug}")
    page.wait_for_url("**order=oldest")
    later = newsroom.post(slug, body="Latest, at the end")
    page.locator("section.entries .entry").last.filter(has_text="Latest, at the end").wait_for(timeout=2000)
    assert page.locator("section.entries .entry").last.get_attribute("id") == f"entry-{later['id']}"
    page.click("text=Newest first")
    page.wait_for_url(f"**/stories/{slug}")


def test_without_javascript_the_page_is_complete(browser: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story()
    for n in range(25):
        newsroom.post(slug, body=f"Update number {n}")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{newsroom.base_url}/stories/{slug}")
    assert page.locator("section.entries .entry").count() == 20
    page.click("text=Older updates")
    assert page.locator("section.entries .entry").count() == 5
    assert page.locator(".entry", has_text="Update number 0").count() == 1
    page.locator(".entry-time").first.click()
    assert "/entries/" in page.url and page.locator(".entry").count() == 1
    context.close()


def test_the_page_catches_up_after_the_server_restarts(
    browser: Any, sqlite_template: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    template, tokens = sqlite_template
    url = copy_template(template, tmp_path)
    server = ServerProcess(url).start()
    newsroom = Newsroom(server, tokens)
    context = browser.new_context()
    page = context.new_page()
    try:
        slug = newsroom.new_story()
        newsroom.post(slug, body="Before the restart")
        open_story(page, newsroom, slug)
        server.kill()
        page.locator(".connection", has_text="Reconnecting").wait_for(timeout=10000)
        # Written while no server runs, as another node of the newsroom would.
        db = Database(url)
        with db.write() as conn:
            story = stories.get_story(conn, slug)
            author = accounts.get_user(conn, "eve")
            assert story is not None and author is not None
            missed = entries.create_entry(conn, story, author, kind="text", body="While it was down", fields={})
        db.dispose()
        server.start()
        page.locator(f"#entry-{missed['id']}").wait_for(timeout=15000)
        after = newsroom.post(slug, body="After the restart")
        page.locator(f"#entry-{after['id']}").wait_for(timeout=2000)
        texts = page.locator("section.entries .entry .entry-body").all_inner_texts()
        assert texts == ["After the restart", "While it was down", "Before the restart"]
        page.locator(".connection", has_text="Back online").wait_for(timeout=3000)
    finally:
        context.close()
        server.stop()


def test_the_story_page_has_no_accessibility_violations(page: Any, newsroom: Newsroom) -> None:
    from axe_playwright_python.sync_playwright import Axe

    slug = newsroom.new_story()
    newsroom.post(slug, body="Police say **84 people** were detained.", key_event=True)
    newsroom.post(slug, kind="quote", body="We will be back tomorrow.", speaker="Mira Solvane", role="opposition candidate")
    newsroom.post(slug, kind="image", image_url="/static/demo/lantern_square.jpg", caption="The square at dusk",
                  credit="Oskar Velde / Northlight Photo", alt="Lamp posts over a crowd on a square")
    newsroom.post(slug, kind="embed", url="https://video.example.org/watch?v=1", body="Video from the square.")
    newsroom.post(slug, body="**Editor's note:** how we cover this story.", pinned=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        open_story(page, newsroom, slug)
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
    page.goto(newsroom.base_url + "/")
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
