"""The desk on a phone (390×844), in a real browser: every field of every kind edited after
publishing, corrections in their own form, a delete undone (and restored from history),
errors in the reporter's words, Publish in reach, "What we know", and no JavaScript."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from conftest import PASSWORD

from .conftest import Newsroom

pytestmark = pytest.mark.slow
PHONE = {"width": 390, "height": 844}
PHOTO = "https://photos.example/lantern-square.jpg"


def sign_in(browser: Any, newsroom: Newsroom, who: str = "eve", **options: Any) -> Any:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, **options)
    page = context.new_page()
    page.goto(newsroom.base_url + "/newsroom/login")
    page.fill("input[name=username]", who)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(newsroom.base_url + "/newsroom")
    return page


@pytest.fixture
def phone(browser: Any, newsroom: Newsroom) -> Iterator[Any]:
    page = sign_in(browser, newsroom)
    yield page
    page.context.close()


def open_desk(page: Any, newsroom: Newsroom, slug: str) -> None:
    page.goto(f"{newsroom.base_url}/newsroom/stories/{slug}")
    page.locator("#composer").wait_for(state="attached")


def card_of(page: Any, entry: dict[str, Any]) -> Any:
    card = page.locator(f"#desk-entry-{entry['id']}")
    card.wait_for()
    return card


def edit(card: Any, values: dict[str, str]) -> None:
    card.locator("[data-action=edit]").click()
    form = card.locator(".inline-editor")
    for name, value in values.items():
        form.locator(f"[name={name}]").fill(value)
    form.locator("[data-editor=save]").click()
    form.wait_for(state="detached")


def read(newsroom: Newsroom, slug: str, entry: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = newsroom.call("GET", f"/api/v1/stories/{slug}/entries/{entry['id']}", who="ron").json()
    return found


def test_every_field_of_every_kind_is_editable_after_publishing(phone: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story("Counting continues")
    kinds = {
        "text": (dict(kind="text", body="About 5,000 people."), {"body": "About 6,000 people."}),
        "quote": (dict(kind="quote", body="We will stay.", speaker="Jana Hol", role="organiser"),
                  {"speaker": "Jana Holt", "role": "student organiser", "body": "We will stay all night."}),
        "image": (dict(kind="image", image_url=PHOTO, caption="The sqaure", credit="Oskar Veld", alt="A crowd"),
                  {"caption": "Lantern Square at dusk", "credit": "Oskar Velde / Northlight",
                   "alt": "A crowd under lamp posts", "body": "The square filled after dark."}),
        "embed": (dict(kind="embed", url="https://www.youtube.com/watch?v=aaaaaaaaaaa"),
                  {"url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ"}),
    }
    posted = {kind: newsroom.post(slug, **fields) for kind, (fields, _) in kinds.items()}
    open_desk(phone, newsroom, slug)
    for kind, (_, changes) in kinds.items():
        card = card_of(phone, posted[kind])
        editor_fields = card.locator("[data-action=edit]")
        editor_fields.click()
        # The editor offers this kind's fields, filled in, and no other kind's.
        form = card.locator(".inline-editor")
        for name in changes:
            expect(form.locator(f"[name={name}]")).to_have_value(str(posted[kind][name]))
        assert form.locator("[name=speaker]").count() == (kind == "quote")
        assert form.locator("[name=caption]").count() == (kind == "image")
        form.locator("[data-editor=cancel]").click()
        edit(card, changes)
        stored = read(newsroom, slug, posted[kind])
        assert {name: stored[name] for name in changes} == changes, kind
        assert stored["revision"] == 2
        card.locator(".edited").wait_for(state="visible")
    card = card_of(phone, posted["image"])
    expect(card.locator(".credit")).to_have_text("Oskar Velde / Northlight")
    expect(card_of(phone, posted["quote"]).locator("cite")).to_have_text("Jana Holt")


def test_a_correction_has_its_own_form_and_can_be_taken_back(phone: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story("Turnout")
    entry = newsroom.post(slug, body="Turnout was 81%.")
    open_desk(phone, newsroom, slug)
    card = card_of(phone, entry)
    phone.on("dialog", lambda dialog: pytest.fail(f"the desk opened a browser dialog: {dialog.message}"))
    card.locator("[data-action=correct]").click()
    form = card.locator(".correction-editor")
    form.locator("[data-editor=save]").click()
    expect(form.locator(".editor-error")).to_contain_text("Write the correction first")
    form.locator("input[name=correction]").fill("An earlier version gave turnout as 81%; it was 71%.")
    form.locator("[data-editor=save]").click()
    expect(card.locator(".correction")).to_contain_text("it was 71%")
    assert read(newsroom, slug, entry)["correction"] == "An earlier version gave turnout as 81%; it was 71%."
    card.locator("[data-action=correct]").click()
    expect(form.locator("input[name=correction]")).to_have_value("An earlier version gave turnout as 81%; it was 71%.")
    form.locator("[data-editor=remove]").click()
    expect(card.locator(".correction")).to_have_count(0)
    assert read(newsroom, slug, entry)["correction"] == ""


def test_a_delete_is_undone_in_place_and_readers_get_it_back(phone: Any, browser: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story("Curfew")
    older = newsroom.post(slug, body="The curfew starts at ten.")
    entry = newsroom.post(slug, body="Police close the bridge.", key_event=True)
    newer = newsroom.post(slug, body="Trams stop running.")
    reader = browser.new_page()
    reader.goto(f"{newsroom.base_url}/stories/{slug}")
    reader.locator(f"#entry-{entry['id']}").wait_for()
    open_desk(phone, newsroom, slug)
    card = card_of(phone, entry)
    card.locator("[data-action=delete]").click()
    card.wait_for(state="detached")
    reader.locator(f"#entry-{entry['id']}").wait_for(state="detached")
    undo = phone.locator(".undo-bar")
    expect(undo).to_contain_text("Update deleted")
    undo.locator("button.undo").click()
    expect(undo).to_contain_text("Restored")
    card_of(phone, entry)
    ids = phone.eval_on_selector_all(".desk-entry", "els => els.map(e => +e.dataset.id)")
    assert ids == [newer["id"], entry["id"], older["id"]], "back in its place on the desk"
    # Readers' pages put it back where it was, live, and not as a new update.
    restored = reader.locator(f"#entry-{entry['id']}")
    restored.wait_for()
    shown = reader.eval_on_selector_all("section.entries .entry", "els => els.map(e => +e.dataset.id)")
    assert [i for i in shown if i in ids] == ids
    assert "is-new" not in (restored.get_attribute("class") or "")
    reader.close()


def test_a_deleted_update_is_restored_from_its_history(phone: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story("Road closures")
    entry = newsroom.post(slug, body="The ring road is closed.")
    newsroom.call("DELETE", f"/api/v1/stories/{slug}/entries/{entry['id']}")
    phone.goto(f"{newsroom.base_url}/newsroom/stories/{slug}/entries/{entry['id']}/history")
    expect(phone.locator(".deleted-note")).to_contain_text("readers no longer see it")
    phone.click("button:has-text('Restore this update')")
    phone.wait_for_url(f"**/newsroom/stories/{slug}**")
    card_of(phone, entry)
    assert read(newsroom, slug, entry)["body"] == "The ring road is closed."


def test_errors_are_in_the_reporters_words(phone: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story("Election night")
    open_desk(phone, newsroom, slug)
    status = phone.locator(".composer-status")
    phone.click("#composer button[type=submit]")
    expect(status).to_have_text("Not published. Write something first.")
    phone.check("input[name=kind][value=image]")
    phone.click("#composer button[type=submit]")
    expect(status).to_contain_text("Choose a photo first.")
    phone.check("input[name=kind][value=quote]")
    phone.fill("#composer textarea[name=body]", "We have won.")
    phone.click("#composer button[type=submit]")
    expect(status).to_contain_text("the speaker's name is missing")
    phone.check("input[name=kind][value=embed]")
    phone.fill("input[name=url]", "not a link")
    phone.click("#composer button[type=submit]")
    expect(status).to_contain_text("That link does not work")
    for said in (status.inner_text(),):
        assert "image_url" not in said and "body:" not in said and "must be" not in said
    # The API's own words are kept for whoever needs them.
    assert "url" in (status.get_attribute("data-detail") or "")


def test_on_a_phone_the_headline_is_short_and_publish_stays_in_reach(phone: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story("Second night of protests after the disputed election as crowds return to "
                              "Lantern Square and the bridges close for the night")
    open_desk(phone, newsroom, slug)
    lines = phone.evaluate("""() => { const h = document.querySelector('.desk-head h1');
        return h.getBoundingClientRect().height / parseFloat(getComputedStyle(h).lineHeight); }""")
    assert lines <= 2.05, f"the headline takes {lines:.1f} lines above the composer"
    phone.check("input[name=kind][value=image]")  # the tallest composer
    phone.focus("#composer textarea[name=body]")
    publish = phone.locator("#composer button[type=submit]")
    box = publish.bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], "Publish is below the screen"
    # Labels sit on their own lines, not squeezed beside the fields.
    fields = "#composer .kind-fields[data-kind=image] input:not([type=file]):not([type=hidden])"
    widths = phone.eval_on_selector_all(fields, "els => els.map(e => e.getBoundingClientRect().width)")
    assert widths and min(widths) > PHONE["width"] * 0.7
    overflow = phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, "the desk scrolls sideways on a phone"


def test_what_we_know_is_edited_from_the_desk(phone: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story("Results")
    open_desk(phone, newsroom, slug)
    facts = phone.locator(".facts-editor textarea[name=facts]")
    facts.fill("Polls closed at 20:00.\n\n  Turnout was 71%.  \nThe count goes on overnight.")
    phone.click(".facts-editor button[type=submit]")
    phone.locator(".facts-editor summary", has_text="3 lines").wait_for()
    story = newsroom.call("GET", f"/api/v1/stories/{slug}").json()
    assert story["facts"] == ["Polls closed at 20:00.", "Turnout was 71%.", "The count goes on overnight."]
    facts = phone.locator(".facts-editor textarea[name=facts]")
    phone.click(".facts-editor summary")
    facts.fill("\n".join(f"Fact {n}" for n in range(13)))
    phone.click(".facts-editor button[type=submit]")
    expect(phone.locator("main")).to_contain_text("at most 12 lines")
    assert newsroom.call("GET", f"/api/v1/stories/{slug}").json()["facts"] == story["facts"]


def test_without_javascript_the_desk_says_it_needs_it(browser: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story("No script")
    page = sign_in(browser, newsroom, java_script_enabled=False)
    try:
        open_desk(page, newsroom, slug)
        expect(page.locator(".needs-script")).to_be_visible()
        expect(page.locator(".needs-script")).to_contain_text("needs JavaScript")
        expect(page.locator("#composer")).to_be_hidden()
    finally:
        page.context.close()


def test_the_phone_desk_has_no_accessibility_violations(phone: Any, newsroom: Newsroom) -> None:
    from axe_playwright_python.sync_playwright import Axe

    slug = newsroom.new_story("Accessible on a phone")
    entry = newsroom.post(slug, kind="quote", body="We will stay.", speaker="Jana Holt")
    open_desk(phone, newsroom, slug)
    card = card_of(phone, entry)
    card.locator("[data-action=edit]").click()
    results = Axe().run(phone)
    assert results.violations_count == 0, results.generate_report()
    card.locator("[data-editor=cancel]").click()
    card.locator("[data-action=correct]").click()
    results = Axe().run(phone)
    assert results.violations_count == 0, results.generate_report()
