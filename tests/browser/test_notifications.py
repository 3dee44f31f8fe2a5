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


RECORD = """() => {
  self.__shown = [];
  const show = self.registration.showNotification.bind(self.registration);
  self.registration.showNotification = (title, options) => {
    self.__shown.push({title, ...options});
    return show(title, options);
  };
}"""


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
    # The service worker comes with push.js, on the first click (the subscription itself
    # then fails here: no push service).
    button.click()
    cdp, registration = registration_id(context, page)
    # What the worker asks the browser to show is recorded: a headless browser, with no
    # notification centre, may close a notification again at any moment.
    worker = context.service_workers[0]
    worker.evaluate(RECORD)

    def shown(count: int) -> list[dict[str, Any]]:
        page.wait_for_timeout(100)
        for _ in range(100):
            calls: list[dict[str, Any]] = worker.evaluate("() => self.__shown")
            if len(calls) >= count:
                return calls
            page.wait_for_timeout(100)
        raise AssertionError(f"expected {count} notifications, the worker showed {len(calls)}")

    message = {"id": 41, "story": slug, "title": "Count night in Dravonne", "body": "Turnout has passed 60%.",
               "url": f"/stories/{slug}/entries/{entry['id']}", "timestamp": entry["published_at"]}
    push(cdp, newsroom, registration, message)
    [first] = shown(1)
    assert first["title"] == "Count night in Dravonne" and first["body"] == "Turnout has passed 60%."
    assert first["tag"] == f"dateline-{slug}" and [a["action"] for a in first["actions"]] == ["unsubscribe"]
    assert first["icon"] == "/static/icon-192.png" and first["data"]["url"] == message["url"]

    push(cdp, newsroom, registration, message)  # the same notification again (resent after a crash)
    page.wait_for_timeout(500)
    assert len(shown(1)) == 1, "the copy is not shown"

    push(cdp, newsroom, registration, {**message, "id": 42, "body": "The first district has declared.",
                                       "url": f"/stories/{slug}/entries/{later['id']}"})
    grouped = shown(2)[1]
    assert grouped["tag"] == first["tag"], "one notification a story: the newer replaces the older"
    assert grouped["title"] == "Count night in Dravonne (2 new updates)" and grouped["body"].startswith("The first")

    # A click on it: the worker finds the tab on the story and takes it to the update.
    clicked = False
    for attempt in range(50):
        push(cdp, newsroom, registration, {**message, "id": 43 + attempt, "url": f"/stories/{slug}/entries/{later['id']}"})
        clicked = worker.evaluate("""() => self.registration.getNotifications().then(ns => {
            if (!ns.length) return false;
            self.dispatchEvent(new NotificationEvent('notificationclick', {notification: ns[0]}));
            return true;
        })""")
        if clicked:
            break
    assert clicked, "a notification stayed up long enough to be clicked"
    page.wait_for_url(f"**/stories/{slug}/entries/{later['id']}", timeout=5000)
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


def test_a_story_page_fetches_push_js_only_when_a_reader_asks(context: Any, newsroom: Newsroom) -> None:
    """A first load stays small: a reader who never asks for notifications fetches neither
    push.js nor the service worker; the first click fetches them, once, and is answered."""
    slug = newsroom.new_story()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(f"{newsroom.base_url}/stories/{slug}")
    button = page.locator("button.notify")
    button.wait_for()
    assert button.get_attribute("aria-pressed") == "false"
    page.wait_for_timeout(500)
    assert not [url for url in fetched if "/push." in url or url.endswith("/sw.js")], fetched
    assert page.evaluate("() => navigator.serviceWorker.getRegistration().then(r => r === undefined)")

    # On a bad network push.js fails to load: the reader is told, and may click again.
    page.route("**/static/push.*.js", lambda route: route.abort())
    button.click()
    status = page.locator(".notify-status")
    status.wait_for(state="visible", timeout=5000)
    assert "Try again" in status.inner_text()
    assert not button.is_disabled() and button.get_attribute("aria-pressed") == "false"

    page.unroute("**/static/push.*.js")
    page.evaluate("() => { document.querySelector('.notify-status').textContent = ''; }")
    button.click()
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15000)
    page.wait_for_function("() => document.querySelector('.notify-status').textContent !== ''", timeout=15000)
    assert len([url for url in fetched if "/static/push." in url]) == 2, "one refused, one fetched"
    assert button.get_attribute("aria-pressed") == "false" and not button.is_disabled()
    button.click()  # push.js is in and handles the click itself: nothing fetched again
    page.wait_for_timeout(500)
    assert len([url for url in fetched if "/static/push." in url]) == 2
    assert errors == []


def test_a_follower_gets_push_js_at_once_and_hears_of_a_lost_subscription(context: Any, newsroom: Newsroom) -> None:
    """Someone who follows a story has push.js at once: it checks the browser still holds the
    subscription, and here it does not (no push service), so the button says so."""
    slug = newsroom.new_story()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{newsroom.base_url}/stories/{slug}")
    page.evaluate("slug => localStorage.setItem('dateline.follows', JSON.stringify([slug]))", slug)
    with page.expect_request("**/static/push.*.js"):
        page.reload()
    page.wait_for_function("() => localStorage.getItem('dateline.follows') === '[]'", timeout=15000)
    button = page.locator("button.notify")
    assert button.get_attribute("aria-pressed") == "false"
    assert button.inner_text() == "Notify me of new updates"
    assert errors == []
