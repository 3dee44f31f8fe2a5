"""Photos have their own size limit (DATELINE_MAX_UPLOAD_BYTES, 15 MB), apart from the JSON
API's body limit; the desk states it, and both refusals say what to do."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Site
from fastapi.testclient import TestClient
from PIL import Image
from test_newsroom_security import sign_in_form

from dateline.app import create_app
from dateline.config import MAX_PHOTO_BYTES, ConfigError, Settings
from dateline.stories import photos


def noisy_jpeg(width: int, height: int) -> bytes:
    """A photo that does not compress: its size grows with its pixels, as a camera's does."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def upload(client: TestClient, site: Site, data: bytes) -> object:
    return client.post("/api/v1/uploads", files={"file": ("IMG_0001.jpg", data, "image/jpeg")},
                       headers=site.auth("rita"))


@pytest.fixture
def small_limit(site: Site, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings.from_env({"DATELINE_MAX_UPLOAD_BYTES": "300000"}, database_url=site.url,
                                 media_dir=str(tmp_path / "media"))
    with TestClient(create_app(settings, site.db), raise_server_exceptions=False) as client:
        yield client


def test_a_photo_over_the_json_limit_is_uploaded(client: TestClient, site: Site) -> None:
    photo = noisy_jpeg(1200, 1000)
    assert len(photo) > Settings.from_env({}).max_request_bytes
    response = upload(client, site, photo)
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]


def test_a_json_body_is_still_held_to_the_request_limit(client: TestClient, site: Site) -> None:
    response = client.post("/api/v1/stories", json={"headline": "x" * 1_100_000}, headers=site.auth("eve"))
    assert response.status_code == 413 and "1048576 bytes" in response.json()["detail"]


def test_a_photo_over_the_upload_limit_is_a_413_that_says_the_limit(small_limit: TestClient, site: Site) -> None:
    # Just over: through the body limit (which allows for the form around it), refused by the
    # handler before it is decoded; far over: refused by the body limit before it is read.
    for size in (310_000, 2_000_000):
        data = b"\xff\xd8\xff" + b"\x00" * size
        response = upload(small_limit, site, data)
        assert response.status_code == 413, response.text  # type: ignore[attr-defined]
        detail = response.json()["detail"]  # type: ignore[attr-defined]
        assert "upload limit of 300000 bytes" in detail and "smaller" in detail


def test_the_upload_limit_is_at_most_what_photos_are_decoded_from() -> None:
    assert Settings.from_env({}).max_upload_bytes == MAX_PHOTO_BYTES == photos.MAX_UPLOAD_BYTES
    with pytest.raises(ConfigError, match="DATELINE_MAX_UPLOAD_BYTES"):
        Settings.from_env({"DATELINE_MAX_UPLOAD_BYTES": str(MAX_PHOTO_BYTES + 1)})


def test_the_desk_states_the_upload_limit(client: TestClient, site: Site, live_story: str) -> None:
    sign_in_form(client, "rita")
    page = client.get(f"/newsroom/stories/{live_story}").text
    assert "up to 15 MB" in page
    assert re.search(r'<input type="file" name="file"[^>]* data-max-bytes="15728640"', page)
