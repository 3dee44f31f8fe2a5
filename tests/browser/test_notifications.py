"""The service worker in a real browser: a push message becomes a notification, one a story,
and a click opens the update. Chromium here cannot reach a real push service, so the
DevTools protocol delivers the push event, as the browser would on a message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Newsroom

pytestmark = pytest.mark.slow

NOTIFICATIONS = """() => navigator.serviceWorker.ready
  .then(r => r.getNotifications())
  .then(ns => ns.map(n => ({title: n.title, body: n.body, tag: n.tag, data: n.data, icon: n.icon,
                             actions: n.actions.map(a => a.action)})))"""


@pytest.fixture
def context(browser: Any, newsroom: Newsroom) -> Iterator[Any]:
    opened = browser.new_context()
    opened.grant_permissions(["notifications"], origin=newsroom.base_url)
    yield opened
    opened.close()


def registration_id(context: Any, page: Any) -> tuple[Any, str]:
    cdp = context.new_cdp_session(page)
    found: list[str] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda event: found.extend(r["registrationId"] for r in event["registrations"] if not r["isDeleted"]))
    cdp.send("ServiceWorker.enable")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    for _ in range(50):
        if found:
            break
        page.wait_for_timeout(100)
    assert found, "the page registered its service worker"
    return cdp, found[-1]


def push(cdp: Any, newsroom: Newsroom, registration: str, message: dict[str, Any]) -> None:
    cdp.send("ServiceWorker.deliverPushMessage",
             {"origin": newsroom.base_url, "registrationId": registration, "data": json.dumps(message)})


def test_a_push_shows_a_notification_and_a_click_opens_the_update(context: Any, newsroom: Newsroom) -> None:
    slug = newsroom.new_story("Count night in Dravonne")
    entry = newsroom.post(slug, body="Turnout has passed **60%**.")
    later = newsroom.post(slug, body="The first district has declared.")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{newsroom.base_url}/stories/{slug}")
    button = page.locator("button.notify")
    button.wait_for()
    assert button.inner_text() == "Notify me of new updates"
    cdp, registration = registration_id(context, page)

    message = {"id": 41, "story": slug, "title": "Count night in Dravonne", "body": "Turnout has passed 60%.",
               "url": f"/stories/{slug}/entries/{entry['id']}", "timestamp": entry["published_at"]}
    push(cdp, newsroom, registration, message)
    page.wait_for_function(
        "() => navigator.serviceWorker.ready.then(r => r.getNotifications()).then(ns => ns.length === 1)")
    [shown] = page.evaluate(NOTIFICATIONS)
    assert shown["title"] == "Count night in Dravonne" and shown["body"] == "Turnout has passed 60%."
    assert shown["tag"] == f"dateline-{slug}" and shown["actions"] == ["unsubscribe"]
    assert shown["icon"].endswith("/static/icon-192.png")

    push(cdp, newsroom, registration, message)  # the same notification again (resent after a crash)
    page.wait_for_timeout(500)
    assert [n["title"] for n in page.evaluate(NOTIFICATIONS)] == ["Count night in Dravonne"], "shown once"

    push(cdp, newsroom, registration, {**message, "id": 42, "body": "The first district has declared.",
                                       "url": f"/stories/{slug}/entries/{later['id']}"})
    page.wait_for_function(
        "() => navigator.serviceWorker.ready.then(r => r.getNotifications())"
        ".then(ns => ns.length === 1 && ns[0].body.startsWith('The first district'))")
    [grouped] = page.evaluate(NOTIFICATIONS)
    assert grouped["title"] == "Count night in Dravonne (2 new updates)", "one notification a story, counting"

    worker = context.service_workers[0]
    worker.evaluate("""() => self.registration.getNotifications().then(ns =>
        self.dispatchEvent(new NotificationEvent('notificationclick', {notification: ns[0]})))""")
    page.wait_for_url(f"**/stories/{slug}/entries/{later['id']}", timeout=5000)
    assert page.evaluate(NOTIFICATIONS) == [], "the clicked notification is closed"
    assert errors == []


def test_notify_me_explains_when_the_browser_cannot_subscribe(context: Any, newsroom: Newsroom) -> None:
    """This machine's Chromium has no push service to reach: the reader is told, nothing breaks."""
    slug = newsroom.new_story()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{newsroom.base_url}/stories/{slug}")
    page.locator("button.notify").click()
    status = page.locator(".notify-status")
    status.wait_for(state="visible", timeout=15000)
    assert status.inner_text().strip() != ""
    assert page.locator("button.notify").get_attribute("aria-pressed") == "false"
    assert not page.locator("button.notify").is_disabled()
    assert errors == []


def test_the_home_page_offers_breaking_news_alerts(context: Any, newsroom: Newsroom) -> None:
    page = context.new_page()
    page.goto(newsroom.base_url + "/")
    button = page.locator("button.notify[data-follow=site]")
    button.wait_for()
    assert button.inner_text() == "Breaking news alerts"
    worker = page.request.get(newsroom.base_url + "/sw.js")
    assert worker.ok and worker.headers["cache-control"] == "no-cache"
    assert worker.headers["content-type"].startswith("text/javascript")
