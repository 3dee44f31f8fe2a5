"""The newsroom desk in a real browser: sign in, compose every kind, edit, approve, sign out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import expect

from conftest import PASSWORD

from .conftest import Newsroom

pytestmark = pytest.mark.slow
CORPUS = json.loads((Path(__file__).parent.parent / "data" / "xss_payloads.json").read_text())


def signed_in(browser: Any, newsroom: Newsroom, who: str) -> Any:
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    page.goto(newsroom.base_url + "/newsroom")
    assert "/newsroom/login" in page.url, "anonymous visitors are sent to sign in"
    page.fill("input[name=username]", who)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(newsroom.base_url + "/newsroom")
    return page


@pytest.fixture
def editor(browser: Any, newsroom: Newsroom) -> Iterator[Any]:
    page = signed_in(browser, newsroom, "eve")
    yield page
    page.context.close()


def desk_for(page: Any, newsroom: Newsroom, headline: str) -> str:
    page.fill(".new-story input[name=headline]", headline)
    page.click("button:has-text('Start a story')")
    page.wait_for_url("**/newsroom/stories/**")
    slug = page.url.rsplit("/", 1)[1]
    newsroom.call("PATCH", f"/api/v1/stories/{slug}", json={"status": "live"})
    page.reload()
    return slug


def test_compose_each_kind_and_readers_see_it_live(editor: Any, browser: Any, newsroom: Newsroom, tmp_path: Path) -> None:
    slug = desk_for(editor, newsroom, "Polls close in Dravonne")
    reader = browser.new_page()
    reader.goto(f"{newsroom.base_url}/stories/{slug}")

    editor.fill("#composer textarea[name=body]", "Polls have **closed**.")
    editor.keyboard.press("Control+Enter")
    reader.locator(".entry-body strong", has_text="closed").wait_for(timeout=3000)
    editor.locator(".desk-entry", has_text="Polls have closed").wait_for()
    # The desk's own stream can show the update before the POST's answer clears the composer.
    expect(editor.locator("#composer textarea[name=body]")).to_have_value("", timeout=3000)
    assert editor.evaluate("document.activeElement.name") == "body", "focus stays in the composer"

    editor.check("input[name=kind][value=quote]")
    editor.fill("input[name=speaker]", "Mira Solvane")
    editor.fill("input[name=role]", "opposition candidate")
    editor.fill("#composer textarea[name=body]", "We will count every vote ourselves.")
    editor.click("#composer button[type=submit]")
    reader.locator("cite", has_text="Mira Solvane").wait_for(timeout=3000)
    expect(editor.locator(".composer-status")).to_have_text("Published.", timeout=3000)

    photo = tmp_path / "square.jpg"
    Image.new("RGB", (2000, 1333), (40, 60, 90)).save(photo, "JPEG")
    editor.check("input[name=kind][value=image]")
    editor.set_input_files("input[name=file]", str(photo))
    editor.locator(".upload-status", has_text="Uploaded").wait_for(timeout=5000)
    editor.fill("input[name=caption]", "Lantern Square at dusk")
    editor.fill("input[name=credit]", "Oskar Velde / Northlight")
    editor.fill("input[name=alt]", "A crowd under lamp posts")
    editor.fill("#composer textarea[name=body]", "")
    editor.click("#composer button[type=submit]")
    image = reader.locator("figure.photo img")
    image.wait_for(timeout=3000)
    expect(editor.locator(".composer-status")).to_have_text("Published.", timeout=3000)
    assert "1600w" in image.get_attribute("srcset") and image.get_attribute("width") == "1600"

    editor.check("input[name=kind][value=embed]")
    editor.fill("input[name=url]", "https://www.youtube.com/watch?v=dQw4w9WgXcQ")
    editor.fill("#composer textarea[name=body]", "Video from the square.")
    editor.click("#composer button[type=submit]")
    reader.locator(".embed-play").wait_for(timeout=3000)
    assert reader.locator("iframe").count() == 0, "nothing loads from the provider before a click"
    reader.close()


def test_edit_and_pin(editor: Any, newsroom: Newsroom) -> None:
    """Editing each kind, corrections and undoing a delete: test_desk_editing.py, on a phone."""
    slug = desk_for(editor, newsroom, "Counting continues")
    entry = newsroom.post(slug, body="About 5,000 people.")
    card = editor.locator(f"#desk-entry-{entry['id']}")
    card.wait_for()
    card.locator("[data-action=edit]").click()
    card.locator(".inline-editor textarea").fill("About 6,000 people.")
    card.locator("[data-editor=save]").click()
    card.locator(".entry-body", has_text="6,000").wait_for()
    assert card.locator(".edited").is_visible()

    card.locator("[data-action=pin]").click()
    card.locator(".badge-pin").wait_for(state="visible")
    assert newsroom.call("GET", f"/api/v1/stories/{slug}/entries/{entry['id']}").json()["pinned"] is True


def test_a_conflicting_save_shows_the_other_version(editor: Any, newsroom: Newsroom) -> None:
    slug = desk_for(editor, newsroom, "Turnout figures")
    entry = newsroom.post(slug, body="Turnout was 73.1%.")
    card = editor.locator(f"#desk-entry-{entry['id']}")
    card.locator("[data-action=edit]").click()
    card.locator(".inline-editor textarea").fill("Turnout was 71.3%.")
    newsroom.call("PATCH", f"/api/v1/stories/{slug}/entries/{entry['id']}", who="ada", json={"body": "Turnout: 72%."})
    card.locator("[data-editor=save]").click()
    card.locator(".conflict", has_text="Turnout: 72%.").wait_for()
    assert newsroom.call("GET", f"/api/v1/stories/{slug}/entries/{entry['id']}").json()["body"] == "Turnout: 72%."


def test_a_second_editor_sees_posts_and_who_is_editing(editor: Any, browser: Any, newsroom: Newsroom) -> None:
    slug = desk_for(editor, newsroom, "Two desks")
    other = signed_in(browser, newsroom, "ada")
    other.goto(f"{newsroom.base_url}/newsroom/stories/{slug}")
    editor.fill("#composer textarea[name=body]", "From the first desk")
    editor.keyboard.press("Control+Enter")
    card = other.locator(".desk-entry", has_text="From the first desk")
    card.wait_for(timeout=3000)
    card.locator("[data-action=edit]").click()
    editor.locator(".desk-entry .presence", has_text="is editing").wait_for(timeout=3000)
    other.context.close()


def test_reporters_posts_wait_for_approval(editor: Any, browser: Any, newsroom: Newsroom) -> None:
    slug = desk_for(editor, newsroom, "Vetted coverage")
    newsroom.call("PATCH", f"/api/v1/stories/{slug}", json={"requires_approval": True})
    reporter = signed_in(browser, newsroom, "rita")
    reporter.goto(f"{newsroom.base_url}/newsroom/stories/{slug}")
    reporter.fill("#composer textarea[name=body]", "Shots heard near the ministry")
    reporter.keyboard.press("Control+Enter")
    reporter.locator(".composer-status", has_text="Sent for approval").wait_for()
    pending = editor.locator(".desk-entry.is-pending", has_text="Shots heard")
    pending.wait_for(timeout=3000)
    assert newsroom.call("GET", f"/api/v1/stories/{slug}/entries", who="eve").json()["entries"][0]["status"] == "pending"
    pending.locator("[data-action=approve]").click()
    editor.locator(".desk-entry:not(.is-pending)", has_text="Shots heard").wait_for()
    public = newsroom.call("GET", f"/api/v1/stories/{slug}/entries").json()["entries"]
    assert [e["body"] for e in public] == ["Shots heard near the ministry"]

    # The reporter's edit of the approved post waits too; readers keep the approved text.
    mine = reporter.locator(".desk-entry", has_text="Shots heard")
    mine.locator("[data-action=edit]").click()
    mine.locator(".inline-editor textarea").fill("Shots heard near the ministry, police confirm")
    mine.locator("[data-editor=save]").click()
    mine.locator(".badge-pending", has_text="Edit waiting for approval").wait_for()
    held = editor.locator(".desk-entry.is-pending", has_text="police confirm")
    held.locator(".badge-pending", has_text="Edit waiting for approval").wait_for(timeout=3000)
    public = httpx.get(f"{newsroom.base_url}/api/v1/stories/{slug}/entries").json()["entries"]  # as a reader
    assert [e["body"] for e in public] == ["Shots heard near the ministry"]
    held.locator("[data-action=approve]").click()
    editor.locator(".desk-entry:not(.is-pending)", has_text="police confirm").wait_for()
    public = httpx.get(f"{newsroom.base_url}/api/v1/stories/{slug}/entries").json()["entries"]
    assert [e["body"] for e in public] == ["Shots heard near the ministry, police confirm"]
    reporter.locator(".desk-entry:not(.is-pending)", has_text="police confirm").wait_for(timeout=3000)
    reporter.context.close()


def test_a_draft_survives_a_closed_tab(editor: Any, newsroom: Newsroom) -> None:
    slug = desk_for(editor, newsroom, "Drafts")
    editor.fill("#composer textarea[name=body]", "Half-written when the laptop closed")
    editor.goto(f"{newsroom.base_url}/newsroom/stories/{slug}")
    assert editor.locator("#composer textarea[name=body]").input_value() == "Half-written when the laptop closed"


def test_a_post_made_offline_is_retried_once_online_and_appears_once(editor: Any, newsroom: Newsroom) -> None:
    slug = desk_for(editor, newsroom, "Bad network")
    editor.context.set_offline(True)
    editor.fill("#composer textarea[name=body]", "Sent from a tunnel")
    editor.keyboard.press("Control+Enter")
    editor.locator(".composer-status", has_text="retrying").wait_for(timeout=5000)
    editor.context.set_offline(False)
    editor.locator(".composer-status", has_text="Published").wait_for(timeout=20000)
    bodies = [e["body"] for e in newsroom.call("GET", f"/api/v1/stories/{slug}/entries").json()["entries"]]
    assert bodies == ["Sent from a tunnel"]


def test_the_next_post_typed_while_the_last_one_is_sending_is_kept(editor: Any, newsroom: Newsroom) -> None:
    slug = desk_for(editor, newsroom, "Slow network")
    held: list[Any] = []
    editor.route("**/entries", lambda route: held.append(route) if route.request.method == "POST" else route.continue_())
    editor.fill("#composer textarea[name=body]", "First from the square")
    editor.keyboard.press("Control+Enter")
    while not held:
        editor.wait_for_timeout(50)
    editor.fill("#composer textarea[name=body]", "Second, typed while the first was sending")
    held[0].continue_()
    expect(editor.locator(".composer-status")).to_have_text("Published.", timeout=5000)
    assert editor.locator("#composer textarea[name=body]").input_value() == "Second, typed while the first was sending"
    editor.unroute("**/entries")
    editor.keyboard.press("Control+Enter")
    editor.locator(".desk-entry", has_text="Second, typed").wait_for(timeout=5000)
    bodies = [e["body"] for e in newsroom.call("GET", f"/api/v1/stories/{slug}/entries").json()["entries"]]
    assert sorted(bodies) == ["First from the square", "Second, typed while the first was sending"], "a new key, not a replay"


def test_sign_out_ends_the_session(editor: Any, newsroom: Newsroom) -> None:
    editor.click("button:has-text('Sign out')")
    editor.wait_for_url("**/newsroom/login")
    editor.goto(newsroom.base_url + "/newsroom")
    assert "/newsroom/login" in editor.url


def test_xss_typed_into_the_composer_never_runs_on_the_reader_page(editor: Any, browser: Any, newsroom: Newsroom) -> None:
    slug = desk_for(editor, newsroom, "Hostile input")
    fired: list[str] = []
    editor.on("dialog", lambda dialog: (fired.append(dialog.message), dialog.dismiss()))
    for n, payload in enumerate(CORPUS[:40]):
        quote = n % 2 == 1  # every other one also in the quote's speaker and role fields
        editor.check(f"input[name=kind][value={'quote' if quote else 'text'}]")
        if quote:
            editor.fill("input[name=speaker]", payload[:200])
            editor.fill("input[name=role]", payload[:200])
        editor.fill("#composer textarea[name=body]", payload[:20000])
        editor.click("#composer button[type=submit]")
        editor.locator(".composer-status", has_text="Published").wait_for()
    # And in the story's own fields, through the settings form.
    editor.click("summary:has-text('Story settings')")
    editor.fill(".story-settings input[name=headline]", CORPUS[0][:200])
    editor.fill(".story-settings textarea[name=summary]", CORPUS[1][:2000])
    editor.fill(".story-settings input[name=dateline]", CORPUS[2][:80])
    editor.click(".story-settings button[type=submit]")
    editor.wait_for_load_state()
    reader = browser.new_page()
    reader.on("dialog", lambda dialog: (fired.append(dialog.message), dialog.dismiss()))
    reader.goto(f"{newsroom.base_url}/stories/{slug}")
    reader.wait_for_timeout(500)
    page_two = reader.locator("a[rel=next]")
    if page_two.count():
        page_two.click()
        reader.wait_for_timeout(500)
    assert fired == [], "a payload ran on the desk or the reader page"
    # The page's own drawn bell (#notify-bell) is the one svg allowed; nothing a reporter typed makes one.
    assert reader.evaluate(
        "document.querySelectorAll('main script, main iframe, main svg:not(#notify-bell), main math').length") == 0
    reader.close()


def test_the_desk_has_no_accessibility_violations(editor: Any, newsroom: Newsroom) -> None:
    from axe_playwright_python.sync_playwright import Axe

    slug = desk_for(editor, newsroom, "Accessible desk")
    newsroom.post(slug, body="A first update.", key_event=True)
    editor.locator(".desk-entry").first.wait_for()
    for page_url in [f"/newsroom/stories/{slug}", "/newsroom", "/newsroom/password"]:
        editor.goto(newsroom.base_url + page_url)
        results = Axe().run(editor)
        assert results.violations_count == 0, results.generate_report()


def test_an_editor_notifies_readers_and_sees_the_progress(editor: Any, browser: Any, newsroom: Newsroom) -> None:
    slug = desk_for(editor, newsroom, "Results night")
    notify = editor.locator("#composer input[name=notify]")
    assert "0 followers" in editor.locator("#composer label:has(input[name=notify])").inner_text()
    notify.check()
    editor.fill("#composer textarea[name=body]", "The commission has declared the result.")
    editor.keyboard.press("Control+Enter")
    progress = editor.locator(".push-progress")
    progress.wait_for(state="visible", timeout=5000)
    editor.wait_for_function("document.querySelector('.push-progress').textContent.endsWith('.')")
    assert progress.inner_text() == "Notification: sent to 0 of 0."
    assert not notify.is_checked(), "a notification goes with one post, not the next"
    [sent] = newsroom.call("GET", f"/api/v1/stories/{slug}/notifications").json()["notifications"]
    assert sent["body"] == "The commission has declared the result." and sent["finished_at"]

    reporter = signed_in(browser, newsroom, "rita")
    reporter.goto(f"{newsroom.base_url}/newsroom/stories/{slug}")
    reporter.locator("#composer").wait_for()
    assert reporter.locator("#composer input[name=notify]").count() == 0, "reporters cannot notify"
    reporter.context.close()
