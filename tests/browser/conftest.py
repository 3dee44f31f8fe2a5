"""A real Chromium (Debian's package) driven by Playwright, against a real server process."""

from __future__ import annotations

import importlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ServerProcess, missing_service

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def require_test_dependency(module: str, what: str) -> Any:
    """A test dependency of the `test` extra: skipped without it on a laptop, failed under CI
    (CI=true), where `pip install -e '.[test]'` must have brought it, like a missing service."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing_service(f"{what} is not installed ({exc}); install the test extras: pip install -e '.[test]'")


def chromium_path() -> str:
    found = os.environ.get("DATELINE_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(found):
        missing_service("Chromium is not installed (Debian: apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Module scope: Playwright's sync API keeps an event loop running in the main thread while
    # it is open, which would stop later tests from using asyncio.run().
    playwright_api = require_test_dependency("playwright.sync_api", "Playwright")
    require_test_dependency("axe_playwright_python.sync_playwright", "axe-playwright-python")  # the accessibility scans
    path = chromium_path()
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page at 1000×900 that must log no error and raise none."""
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield opened
    context.close()
    assert errors == [], "the page logged errors"


def wait_until_live(page: Any) -> None:
    """Until the story page's stream is open: static/live.js marks its status line."""
    page.wait_for_selector(".connection[data-state=live], .connection[data-state=back]", state="attached")


@dataclass
class Newsroom:
    """A running server with the personas' tokens, and helpers to post like a client."""

    server: ServerProcess
    tokens: dict[str, str]

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def call(self, method: str, path: str, who: str = "eve", **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        response = httpx.request(method, self.base_url + path, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]
        assert response.status_code < 400, response.text
        return response

    def new_story(self, headline: str = "Second night of protests") -> str:
        slug = f"story-{uuid.uuid4().hex[:8]}"
        self.call("POST", "/api/v1/stories", json={
            "headline": headline, "slug": slug, "dateline": "DRAVONNE", "status": "live",
            "summary": "Thousands return to the square.",
        })
        return slug

    def post(self, slug: str, **fields: object) -> dict[str, object]:
        return self.call("POST", f"/api/v1/stories/{slug}/entries", json=fields).json()  # type: ignore[no-any-return]


def copy_template(template: Path, folder: Path) -> str:
    path = folder / "browser.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def newsroom(sqlite_template: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newsroom]:
    template, tokens = sqlite_template
    server = ServerProcess(copy_template(template, tmp_path_factory.mktemp("browser"))).start()
    yield Newsroom(server, tokens)
    server.stop()
