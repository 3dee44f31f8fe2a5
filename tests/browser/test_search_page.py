"""The search page in a browser: the box on the front page leads to it, and it has no
accessibility violations, in light and dark."""

from __future__ import annotations

from typing import Any


from .conftest import Newsroom


def test_searching_from_the_front_page(page: Any, newsroom: Newsroom) -> None:
    from axe_playwright_python.sync_playwright import Axe

    slug = newsroom.new_story()
    newsroom.post(slug, body="Police say the river crossing is closed.")
    newsroom.post(slug, kind="quote", body="The river will crest tonight.", speaker="Mira Solvane")
    page.goto(newsroom.base_url + "/")
    page.get_by_label("Search stories and updates").fill("river")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url("**/search?q=river")
    assert page.locator(".search-hit").count() == 2
    assert page.locator(".search-hit mark").first.inner_text() == "river"
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        results = Axe().run(page)
        assert results.violations_count == 0, results.generate_report()
