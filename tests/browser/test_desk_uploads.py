"""The desk and photo sizes, in a real browser: a photo over the limit is refused before it
is sent, and the server's own 413 reaches the page while the browser is still uploading."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Newsroom
from .test_newsroom import desk_for, signed_in

pytestmark = pytest.mark.slow
LIMIT = 15 * 1024 * 1024


@pytest.fixture
def desk(browser: Any, newsroom: Newsroom) -> Iterator[Any]:
    page = signed_in(browser, newsroom, "eve")
    desk_for(page, newsroom, "Storm reaches the coast")
    page.check("input[name=kind][value=image]")
    yield page
    page.context.close()


def big_photo(folder: Path) -> Path:
    path = folder / "IMG_4410.jpg"
    path.write_bytes(b"\xff\xd8\xff" + b"\x00" * (LIMIT + 1024 * 1024))  # 16 MB
    return path


def test_the_desk_says_the_limit_and_refuses_a_bigger_photo_before_sending_it(desk: Any, tmp_path: Path) -> None:
    assert "up to 15 MB" in desk.locator("[data-kind=image]").inner_text()
    sent: list[str] = []
    desk.on("request", lambda request: sent.append(request.url) if "/api/v1/uploads" in request.url else None)
    desk.set_input_files("input[name=file]", str(big_photo(tmp_path)))
    status = desk.locator(".upload-status")
    status.filter(has_text="Too big to upload").wait_for(timeout=3000)
    assert "IMG_4410.jpg is 16 MB; the limit is 15 MB" in status.inner_text()
    assert sent == [], "nothing was uploaded"
    assert desk.locator("input[name=file]").input_value() == ""


def test_the_servers_413_is_shown_when_the_page_lets_a_big_photo_through(desk: Any, tmp_path: Path) -> None:
    # A page loaded before the limit was lowered, say: the server's answer must still arrive.
    desk.evaluate("document.querySelector('input[name=file]').dataset.maxBytes = '0'")
    desk.set_input_files("input[name=file]", str(big_photo(tmp_path)))
    status = desk.locator(".upload-status")
    status.filter(has_text="Upload refused").wait_for(timeout=15000)
    assert "larger than the upload limit of 15 MB" in status.inner_text()
