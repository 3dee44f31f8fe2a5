"""Live figures in a real browser: the desk's table editor, keyboard first; readers see the
block change in place without a reload and exactly after reconnecting; the table is
accessible and right for the edge cases (one row, fifty, a zero, ties, long and
right-to-left names)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from conftest import PASSWORD, ServerProcess
from dateline.accounts import users as accounts
from dateline.db import Database
from dateline.stories import posting
from dateline.stories import story as stories

from .conftest import Newsroom, copy_template

pytestmark = pytest.mark.slow
RESULTS = {
    "kind": "results", "title": "Presidential election: official count", "unit": "votes",
    "counted": "Polling stations reporting: 62%", "source": "Central Election Commission",
    "rows": [{"label": "Mira Solvane", "count": 1_204_332}, {"label": "Tomas Ardent", "count": 1_020_118}],
}


@pytest.fixture
def editor(browser: Any, newsroom: Newsroom) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    page.goto(newsroom.base_url + "/newsroom/login")
    page.fill("input[name=username]", "eve")
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(newsroom.base_url + "/newsroom")
    yield page
    context.close()


def blocks_of(newsroom: Newsroom, slug: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = newsroom.call("GET", f"/api/v1/stories/{slug}/blocks").json()["blocks"]
    return found


def open_new_block(editor: Any, newsroom: Newsroom, headline: str, title: str) -> str:
    """A new story's desk with the figures editor open on a new block named `title`."""
    slug = newsroom.new_story(headline)
    editor.goto(f"{newsroom.base_url}/newsroom/stories/{slug}")
    editor.click(".figures-desk summary")
    editor.click("[data-figures=new]")
    editor.fill(".figures-editor input[name=title]", title)
    return slug


def test_the_desk_builds_a_results_table_from_the_keyboard(editor: Any, newsroom: Newsroom) -> None:
    slug = open_new_block(editor, newsroom, "Results night", "Presidential election")
    editor.fill(".figures-editor input[name=source]", "Central Election Commission")
    first = editor.locator(".figures-rows tbody tr").first.locator("input[name=label]")
    first.focus()
    # Name, Enter, count, Enter, share (skipped), Enter: the next row; past the last, a new one.
    for name, count in [("Mira Solvane", "1,204,332"), ("Tomas Ardent", "1 020 118"), ("Others", "75550")]:
        editor.keyboard.type(name)
        editor.keyboard.press("Enter")
        editor.keyboard.type(count)
        editor.keyboard.press("Enter")
        editor.keyboard.press("Enter")
    assert editor.locator(".figures-rows tbody tr").count() == 4, "Enter past the last row opens a new one"
    editor.keyboard.press("Control+Enter")
    editor.locator(".figures-list li", has_text="Presidential election").wait_for()
    [block] = blocks_of(newsroom, slug)
    assert [(r["label"], r["count"], r["share"]) for r in block["rows"]] == [
        ("Mira Solvane", 1_204_332, 52.4), ("Tomas Ardent", 1_020_118, 44.4), ("Others", 75_550, 3.3)]

    # Shares that fall short of 100 % are shown, and must be confirmed.
    editor.click(".figures-list li button")
    rows = editor.locator(".figures-rows tbody tr")
    for n in range(3):
        rows.nth(n).locator("input[name=count]").fill("")
    rows.nth(0).locator("input[name=share]").fill("48.2")
    rows.nth(1).locator("input[name=share]").fill("38.9")
    rows.nth(2).locator("button.remove-row").click()
    editor.click("[data-figures=publish]")
    expect(editor.locator(".figures-status")).to_contain_text("87.1 %")
    assert blocks_of(newsroom, slug)[0]["revision"] == 1, "nothing is published before the editor confirms"
    expect(editor.locator("[data-figures=publish]")).to_have_text("Publish anyway")
    editor.click("[data-figures=publish]")
    editor.locator(".figures-list li", has_text="version 2").wait_for()
    assert [r["share"] for r in blocks_of(newsroom, slug)[0]["rows"]] == [48.2, 38.9]


def test_bad_figures_are_explained_in_the_desk(editor: Any, newsroom: Newsroom) -> None:
    slug = open_new_block(editor, newsroom, "Turnout", "Turnout")
    rows = editor.locator(".figures-rows tbody tr")
    rows.nth(0).locator("input[name=label]").fill("Turnout")
    rows.nth(0).locator("input[name=count]").fill("100")
    rows.nth(1).locator("input[name=label]").fill("Spoilt")
    rows.nth(1).locator("input[name=count]").fill("-3")
    editor.click("[data-figures=publish]")
    expect(editor.locator(".figures-status")).to_contain_text("cannot be negative")
    rows.nth(1).locator("input[name=count]").fill("3")
    editor.click("[data-figures=publish]")
    expect(editor.locator(".figures-status")).to_contain_text("say where the figure for Turnout comes from")
    assert blocks_of(newsroom, slug) == []


def test_readers_see_figures_change_in_place_and_catch_up_after_a_restart(
    browser: Any, sqlite_template: tuple[Path, dict[str, str]], tmp_path: Path,
) -> None:
    template, tokens = sqlite_template
    url = copy_template(template, tmp_path)
    server = ServerProcess(url).start()
    newsroom = Newsroom(server, tokens)
    reader = browser.new_page()
    try:
        slug = newsroom.new_story("Count")
        block = newsroom.call("POST", f"/api/v1/stories/{slug}/blocks", json=RESULTS).json()
        reader.goto(f"{newsroom.base_url}/stories/{slug}")
        table = reader.locator(f"#block-{block['id']}")
        expect(table.locator("td.figures-share").first).to_contain_text("54.1 %")
        reader.evaluate("window.__marker = 1")  # gone if the page reloads
        rows = [{"label": "Mira Solvane", "count": 1_604_332}, {"label": "Tomas Ardent", "count": 1_120_118}]
        newsroom.call("PATCH", f"/api/v1/stories/{slug}/blocks/{block['id']}", json={"rows": rows})
        expect(table.locator("td.figures-share").first).to_contain_text("58.9 %")
        expect(table.locator("td.figures-change").first).to_have_text("+4.8 pts")
        # The count moves while the server is down (another node wrote it): back, the page
        # has the latest figures, without a reload.
        server.kill()
        reader.locator(".connection", has_text="Reconnecting").wait_for(timeout=10000)
        db = Database(url)
        with db.write() as conn:
            story = stories.get_story(conn, slug)
            author = accounts.get_user(conn, "eve")
            assert story is not None and author is not None
            stored = posting.find_block(conn, story, block["id"])
            final = [{"label": "Mira Solvane", "count": 2_000_000}, {"label": "Tomas Ardent", "count": 2_000_000}]
            posting.change_block(conn, author, story, stored, {"rows": final, "counted": "All polling stations reporting"})
        db.dispose()
        server.start()
        expect(table.locator(".figures-counted")).to_have_text("All polling stations reporting", timeout=15000)
        expect(table.locator("td.figures-share").first).to_contain_text("50.0 %")
        assert reader.evaluate("window.__marker") == 1, "the page was reloaded"
        newsroom.call("DELETE", f"/api/v1/stories/{slug}/blocks/{block['id']}")
        table.wait_for(state="detached")
    finally:
        reader.close()
        server.stop()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_figures_are_accessible_and_right_at_the_edges(browser: Any, newsroom: Newsroom, scheme: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    slug = newsroom.new_story("Edge cases")
    one = {"kind": "counter", "title": "People detained", "unit": "people", "source": "Interior ministry",
           "rows": [{"label": "Detained", "count": 0}]}
    fifty = {**RESULTS, "title": "Fifty lists", "rows": [{"label": f"List {n}", "count": 1000 - n * 10} for n in range(50)]}
    names = {**RESULTS, "title": "Ties, a zero and long names", "rows": [
        {"label": "Ana María de los Ángeles Fernández-Castellanos y Villalobos del Río " * 1, "count": 500},
        {"label": "حزب العدالة والتنمية الديمقراطي", "count": 500},
        {"label": "מפלגת העבודה", "count": 0}]}
    crowd = {"kind": "comparison", "title": "How many marched", "unit": "people", "rows": [
        {"label": "Police", "count": 12_000, "source": "City police"},
        {"label": "Organisers", "count": 40_000, "source": "Civic Forum"}]}
    made = [newsroom.call("POST", f"/api/v1/stories/{slug}/blocks", json=body).json() for body in (one, fifty, names, crowd)]
    page = browser.new_page(color_scheme=scheme, viewport={"width": 390, "height": 844})
    page.goto(f"{newsroom.base_url}/stories/{slug}")
    # Folded on a phone, each block shows its title and leading figures; a tap opens it.
    assert page.locator(f"#block-{made[2]['id']} .figures-lead").inner_text().replace("\xa0", " ") == (
        "Ana María de los Ángeles Fernández-Castellanos y Villalobos del Río 50.0 % · "
        "حزب العدالة والتنمية الديمقراطي 50.0 % · 1 more")
    assert page.locator(f"#block-{made[1]['id']} .figures-table").is_hidden()
    first_screen = page.evaluate("() => document.querySelector('.figures-blocks').getBoundingClientRect().height")
    assert first_screen < 500, f"four folded blocks take {first_screen:.0f} px"
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    for block in made:
        page.locator(f"#block-{block['id']} summary").first.click()
        page.locator(f"#block-{block['id']} .figures-table").wait_for()
    assert page.locator(f"#block-{made[1]['id']} tbody tr").count() == 50
    ties = page.locator(f"#block-{made[2]['id']} td.figures-share")
    assert [ties.nth(n).inner_text().strip() for n in range(3)] == ["50.0 %", "50.0 %", "0.0 %"]
    assert page.locator(f"#block-{made[0]['id']} td.figures-count").inner_text() == "0"
    # Right-to-left names read right to left, and nothing is wider than the phone.
    assert page.evaluate("getComputedStyle(document.querySelector('#block-%d tbody tr:nth-child(2) th')).direction"
                         % made[2]["id"]) == "rtl"
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, "a block is wider than the phone"
    # A table a screen reader reads as one: headers for columns and rows.
    assert page.locator(f"#block-{made[3]['id']} th[scope=row]").count() == 2
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    page.close()
    # A wide screen shows every block whole, with no tap.
    wide = browser.new_page(color_scheme=scheme, viewport={"width": 1366, "height": 900})
    wide.goto(f"{newsroom.base_url}/stories/{slug}")
    assert all(wide.locator(f"#block-{block['id']} .figures-table").is_visible() for block in made)
    assert wide.locator(f"#block-{made[0]['id']} .figures-lead").is_hidden()
    wide.close()
