"""Live figures through the API, on SQLite and PostgreSQL: results, counters and competing
estimates, with shares computed, bad figures refused in words, every version kept, and the
block's events in the story's log."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import Site

RESULTS = {
    "kind": "results", "title": "Presidential election: official count", "unit": "votes",
    "counted": "Polling stations reporting: 62%", "source": "Central Election Commission",
    "rows": [{"label": "Mira Solvane", "count": 1_204_332}, {"label": "Tomas Ardent", "count": 1_020_118},
             {"label": "Others", "count": 75_550}],
}


def blocks(slug: str) -> str:
    return f"/api/v1/stories/{slug}/blocks"


def add(client: TestClient, site: Site, slug: str, body: dict[str, Any], who: str = "eve") -> Any:
    return client.post(blocks(slug), json=body, headers=site.auth(who))


def test_a_results_table_computes_its_shares_and_reads_back(client: TestClient, site: Site, live_story: str) -> None:
    made = add(client, site, live_story, RESULTS)
    assert made.status_code == 201, made.text
    block = made.json()
    assert [row["share"] for row in block["rows"]] == [52.4, 44.4, 3.3]
    assert all(row["source"] == "" for row in block["rows"]) and block["source"] == "Central Election Commission"
    assert block["warnings"] == [] and block["revision"] == 1
    assert made.headers["Location"] == f"{blocks(live_story)}/{block['id']}"
    read = client.get(f"{blocks(live_story)}/{block['id']}")
    assert read.status_code == 200 and read.json()["rows"] == block["rows"]
    assert read.headers["ETag"] == block["etag"]
    assert [b["id"] for b in client.get(blocks(live_story)).json()["blocks"]] == [block["id"]]
    html = block["html"]
    assert "<table" in html and '<th scope="row" dir="auto">Mira Solvane</th>' in html and "52.4 %" in html
    assert "Central Election Commission" in html and "Polling stations reporting: 62%" in html


def test_new_figures_show_the_change_and_keep_every_version(client: TestClient, site: Site, live_story: str) -> None:
    block = add(client, site, live_story, RESULTS).json()
    rows = [{"label": "Mira Solvane", "count": 1_604_332}, {"label": "Tomas Ardent", "count": 1_120_118},
            {"label": "Others", "count": 80_550}]
    url = f"{blocks(live_story)}/{block['id']}"
    changed = client.patch(url, json={"rows": rows, "counted": "Polling stations reporting: 81%"},
                           headers={**site.auth("eve"), "If-Match": block["etag"]})
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert after["revision"] == 2 and after["counted"] == "Polling stations reporting: 81%"
    assert after["source"] == "Central Election Commission", "what is not sent stays"
    assert "+4.8 pts" in after["html"] and "\u22124.5 pts" in after["html"]  # 57.2 - 52.4, 39.9 - 44.4
    # A stale If-Match is refused; the history has both versions, newest first.
    stale = client.patch(url, json={"title": "Results"}, headers={**site.auth("eve"), "If-Match": block["etag"]})
    assert stale.status_code == 412
    versions = client.get(url + "/revisions").json()["revisions"]
    assert [v["revision"] for v in versions] == [2, 1]
    assert versions[1]["rows"][0]["count"] == 1_204_332 and versions[0]["edited_by"] == "eve"
    assert "How the figures changed" in after["html"]
    # Unchanged figures write nothing.
    same = client.patch(url, json={"title": after["title"]}, headers=site.auth("eve")).json()
    assert same["revision"] == 2 and same["etag"] == after["etag"]


def test_a_correction_shows_the_earlier_figure_and_when_it_changed(client: TestClient, site: Site, live_story: str) -> None:
    crowd = {"kind": "comparison", "title": "How many marched", "unit": "people", "rows": [
        {"label": "Police", "count": 12_000, "source": "City police"},
        {"label": "Organisers", "count": 400_000, "source": "Civic Forum"}]}
    block = add(client, site, live_story, crowd).json()
    assert [row["share"] for row in block["rows"]] == [None, None], "estimates are not shares of a whole"
    fixed = [{"label": "Police", "count": 12_000, "source": "City police"},
             {"label": "Organisers", "count": 40_000, "source": "Civic Forum"}]
    url = f"{blocks(live_story)}/{block['id']}"
    corrected = client.patch(url, json={"rows": fixed, "correction": "The organisers' estimate was misread."},
                             headers=site.auth("eve")).json()
    assert "The organisers&#39; estimate was misread." in corrected["html"]
    assert "Organisers 400,000" in corrected["html"], "the earlier figure is shown with the correction"
    assert client.get(url + "/revisions").json()["revisions"][0]["correction"] == "The organisers' estimate was misread."
    # A "correction" that changes no figure is refused: there is nothing it corrects.
    again = client.patch(url, json={"correction": "Nothing changed."}, headers=site.auth("eve"))
    assert again.status_code == 422 and "correction" in again.json()["detail"]


@pytest.mark.parametrize(("body", "words"), [
    ({**RESULTS, "rows": [{"label": "A", "count": -1}]}, "greater than or equal to 0"),
    ({**RESULTS, "rows": [{"label": "A", "share": 101}]}, "less than or equal to 100"),
    ({**RESULTS, "rows": [{"label": "A", "share": 60}, {"label": "B", "share": 50}]}, "more than 100 %"),
    ({**RESULTS, "source": None}, "say where the figure for Mira Solvane comes from"),
    ({**RESULTS, "rows": [{"label": "A", "count": 5}, {"label": "a", "count": 6}]}, "the same label"),
    ({**RESULTS, "rows": [{"label": "A", "count": 5}, {"label": "B", "share": 6}]}, "a count for every row"),
    ({**RESULTS, "rows": [{"label": "A"}]}, "give each row its share"),
    ({**RESULTS, "rows": [{"label": "   ", "count": 1}]}, "label"),
    ({**RESULTS, "rows": []}, "rows"),
    ({**RESULTS, "rows": [{"label": f"R{n}", "count": n} for n in range(51)]}, "rows"),
    ({**RESULTS, "kind": "counter"}, "exactly one figure"),
    ({**RESULTS, "kind": "comparison", "rows": [{"label": "Police", "count": 3}]}, "2 to 12"),
    ({**RESULTS, "kind": "counter", "rows": [{"label": "Detained", "share": 3}]}, "give the figure for Detained"),
    ({**RESULTS, "reported_at": "2099-01-01T00:00:00Z"}, "future"),
    ({**RESULTS, "rows": [{"label": "A", "count": 1.5}]}, "integer"),
    ({**RESULTS, "kind": "pie"}, "kind"),
    ({**RESULTS, "title": ""}, "title"),
])
def test_bad_figures_are_refused_with_a_clear_error_and_nothing_written(
    client: TestClient, site: Site, live_story: str, body: dict[str, Any], words: str,
) -> None:
    refused = add(client, site, live_story, {k: v for k, v in body.items() if v is not None})
    assert refused.status_code == 422, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert words in refused.json()["detail"]
    assert client.get(blocks(live_story)).json()["blocks"] == []


def test_shares_well_short_of_100_are_published_with_a_warning_the_desk_checks_first(
    client: TestClient, site: Site, live_story: str,
) -> None:
    partial = {**RESULTS, "rows": [{"label": "Mira Solvane", "share": 48.2}, {"label": "Tomas Ardent", "share": 38.9}]}
    checked = client.post(blocks(live_story) + "/check", json=partial, headers=site.auth("eve"))
    assert checked.status_code == 200
    assert checked.json()["warnings"] == ["The shares add up to 87.1 %, not 100 %: is a row missing, or is the rest 'others'?"]
    assert "48.2 %" in checked.json()["html"]
    assert client.get(blocks(live_story)).json()["blocks"] == [], "a check writes nothing"
    made = add(client, site, live_story, partial).json()
    assert made["warnings"] == checked.json()["warnings"]


def test_only_editors_write_figures_and_readers_read_them(client: TestClient, site: Site, live_story: str) -> None:
    assert add(client, site, live_story, RESULTS, who="rita").status_code == 403
    block = add(client, site, live_story, RESULTS).json()
    url = f"{blocks(live_story)}/{block['id']}"
    assert client.patch(url, json={"title": "X"}, headers=site.auth("rita")).status_code == 403
    assert client.delete(url, headers=site.auth("rita")).status_code == 403
    assert client.post(blocks(live_story), json=RESULTS).status_code == 401
    assert client.get(url).status_code == 200, "anyone who may read the story reads its figures"
    assert client.delete(url, headers=site.auth("eve")).status_code == 204
    assert client.get(url).status_code == 404
    assert client.get(blocks(live_story)).json()["blocks"] == []


def test_the_blocks_events_are_in_the_story_log(client: TestClient, site: Site, live_story: str) -> None:
    start = client.get(f"/api/v1/stories/{live_story}/events").json()["last_event_id"]
    counter = {"kind": "counter", "title": "People detained", "unit": "people", "source": "Interior ministry",
               "rows": [{"label": "Detained", "count": 112}]}
    block = add(client, site, live_story, counter).json()
    url = f"{blocks(live_story)}/{block['id']}"
    client.patch(url, json={"rows": [{"label": "Detained", "count": 140}]}, headers=site.auth("eve"))
    client.delete(url, headers=site.auth("eve"))
    events = client.get(f"/api/v1/stories/{live_story}/events", params={"after": start}).json()["events"]
    assert [e["type"] for e in events] == ["block.updated", "block.updated", "block.deleted"]
    assert events[1]["data"]["rows"][0]["count"] == 140 and "+28" in events[1]["data"]["html"]
    assert events[2]["data"] == {"id": block["id"], "story": live_story, "deleted_at": events[2]["data"]["deleted_at"]}


def test_text_typed_into_figures_is_never_markup(client: TestClient, site: Site, live_story: str) -> None:
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    block = add(client, site, live_story, {**RESULTS, "title": hostile, "counted": hostile, "source": hostile,
                                          "rows": [{"label": hostile, "count": 1}, {"label": "B", "count": 2}]}).json()
    assert "<script" not in block["html"] and "<img" not in block["html"]
    assert "&lt;script&gt;" in block["html"]


def test_a_story_holds_a_bounded_number_of_blocks(client: TestClient, site: Site, live_story: str) -> None:
    for _ in range(10):
        assert add(client, site, live_story, RESULTS).status_code == 201
    refused = add(client, site, live_story, RESULTS)
    assert refused.status_code == 409 and "at most 10" in refused.json()["detail"]


def test_a_final_result_notifies_the_storys_followers(client: TestClient, site: Site, live_story: str) -> None:
    subscription = {"endpoint": "https://fcm.googleapis.com/fcm/send/abc123", "story": live_story,
                    "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                             "auth": "tBHItJI5svbpez7KI4CCXg"}}
    assert client.post("/api/v1/push/subscriptions", json=subscription).status_code in (200, 201)
    final = {**RESULTS, "counted": "All polling stations reporting", "key_event": True, "notify": True}
    assert add(client, site, live_story, final, who="rita").status_code == 403
    block = add(client, site, live_story, final).json()
    assert block["key_event"] is True and isinstance(block["notification"], int)
    [note] = client.get(f"/api/v1/stories/{live_story}/notifications", headers=site.auth("eve")).json()["notifications"]
    assert note["id"] == block["notification"] and note["recipients"] == 1
    assert note["body"].startswith("Presidential election: official count: Mira Solvane 52.4 %")
