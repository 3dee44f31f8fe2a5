"""The newsroom's forms survive a double click and a resend on a bad network."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from conftest import Site, table_counts
from test_newsroom_security import sign_in_form


def test_start_a_story_twice_with_one_form_makes_one_story(client: TestClient, site: Site) -> None:
    csrf = sign_in_form(client, "eve")
    dashboard = client.get("/newsroom").text
    key = re.search(r'name="form_key" value="([^"]+)"', dashboard).group(1)  # type: ignore[union-attr]
    form = {"headline": "Curfew declared", "dateline": "DRAVONNE", "csrf_token": csrf, "form_key": key}
    before = table_counts(site.db)["stories"]
    first = client.post("/newsroom/stories", data=form, follow_redirects=False)
    again = client.post("/newsroom/stories", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"] == "/newsroom/stories/curfew-declared"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert table_counts(site.db)["stories"] == before + 1
    # The form sent again from the browser's history with another headline starts that story.
    other = client.post("/newsroom/stories", data={**form, "headline": "Curfew lifted"}, follow_redirects=False)
    assert other.status_code == 303 and other.headers["Location"] == "/newsroom/stories/curfew-lifted"
    assert "Idempotent-Replayed" not in other.headers
    assert table_counts(site.db)["stories"] == before + 2
    # Each showing of the form has its own key.
    fresh = re.search(r'name="form_key" value="([^"]+)"', client.get("/newsroom").text).group(1)  # type: ignore[union-attr]
    assert fresh != key
