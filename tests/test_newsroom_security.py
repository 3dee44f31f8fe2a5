"""Newsroom security: CSRF on every form, who may reach which route, and hostile uploads."""

from __future__ import annotations

import io
import re
import struct
import zlib

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import PASSWORD, Site, table_counts


def sign_in_form(client: TestClient, who: str) -> str:
    """Sign in through the HTML form; returns the session's CSRF token from the dashboard."""
    page = client.get("/newsroom/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post("/newsroom/login", data={"username": who, "password": PASSWORD, "csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    dashboard = client.get("/newsroom")
    return re.search(r'name="csrf_token" value="([^"]+)"', dashboard.text).group(1)  # type: ignore[union-attr]


def test_the_sign_in_form_needs_its_csrf_token(client: TestClient) -> None:
    refused = client.post("/newsroom/login", data={"username": "eve", "password": PASSWORD, "csrf_token": "forged"})
    assert refused.status_code == 403
    assert "dateline_session" not in client.cookies


def test_a_wrong_password_on_the_form_says_so_and_signs_nobody_in(client: TestClient) -> None:
    page = client.get("/newsroom/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post("/newsroom/login", data={"username": "eve", "password": "wrong", "csrf_token": token})
    assert response.status_code == 401 and "username or password is wrong" in response.text
    assert client.get("/newsroom", follow_redirects=False).status_code == 303


def test_forms_without_the_csrf_token_are_refused(client: TestClient, site: Site) -> None:
    token = sign_in_form(client, "eve")
    before = table_counts(site.db)
    assert client.post("/newsroom/stories", data={"headline": "Forged"}).status_code == 403
    assert client.post("/newsroom/stories", data={"headline": "Forged", "csrf_token": "x"}).status_code == 403
    assert table_counts(site.db)["stories"] == before["stories"]
    assert client.post("/newsroom/logout", data={}).status_code == 403
    assert client.post("/newsroom/stories", data={"headline": "   ", "csrf_token": token}).status_code == 422
    created = client.post("/newsroom/stories", data={"headline": "Real", "csrf_token": token}, follow_redirects=False)
    assert created.status_code == 303 and created.headers["location"] == "/newsroom/stories/real"


def test_sign_in_never_redirects_off_site(client: TestClient) -> None:
    for target in ["https://evil.example/", "//evil.example/", "/newsroom/\\evil"]:
        page = client.get("/newsroom/login?next=https://evil.example/")
        assert 'name="next" value="/newsroom"' in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        response = client.post("/newsroom/login", data={"username": "eve", "password": PASSWORD, "csrf_token": token,
                                                         "next": target}, follow_redirects=False)
        assert response.headers["location"] == "/newsroom"


def test_newsroom_pages_are_not_cached_and_not_framed(client: TestClient) -> None:
    sign_in_form(client, "eve")
    page = client.get("/newsroom")
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


# --- who may reach which route ------------------------------------------------------------

PERSONAS = ["anonymous", "rita", "eve", "ada"]
# (method, path, body, the lowest persona allowed); paths use the fixture story and entry.
MATRIX = [
    ("GET", "/api/v1/stories", None, "anonymous"),
    ("POST", "/api/v1/stories", {"headline": "New"}, "eve"),
    ("GET", "/api/v1/stories/{slug}", None, "anonymous"),
    ("PATCH", "/api/v1/stories/{slug}", {"summary": "s"}, "eve"),
    ("GET", "/api/v1/stories/{slug}/entries", None, "anonymous"),
    ("POST", "/api/v1/stories/{slug}/entries", {"body": "b"}, "rita"),
    ("GET", "/api/v1/stories/{slug}/entries/{entry}", None, "anonymous"),
    ("PATCH", "/api/v1/stories/{slug}/entries/{entry}", {"body": "edited"}, "eve"),  # eve's entry
    ("DELETE", "/api/v1/stories/{slug}/entries/{other}", None, "eve"),
    ("POST", "/api/v1/stories/{slug}/entries/{entry}/approve", None, "eve"),
    ("POST", "/api/v1/stories/{slug}/entries/{entry}/editing", None, "rita"),
    ("GET", "/api/v1/stories/{slug}/entries/{entry}/revisions", None, "rita"),
    ("GET", "/api/v1/stories/{slug}/events", None, "anonymous"),
    ("POST", "/api/v1/preview", {"body": "b"}, "rita"),
    ("GET", "/api/v1/me", None, "rita"),
    ("GET", "/api/v1/users", None, "ada"),
    ("POST", "/api/v1/users", {"username": "newbie", "role": "reporter"}, "ada"),
    ("PATCH", "/api/v1/users/ron", {"name": "Ron R."}, "ada"),
]
RANK = {name: rank for rank, name in enumerate(PERSONAS)}


@pytest.mark.parametrize("method, path, body, lowest", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_every_route_checks_the_role(client: TestClient, site: Site, method: str, path: str, body: object, lowest: str) -> None:
    story = client.post("/api/v1/stories", json={"headline": "Matrix", "status": "live"}, headers=site.auth("eve")).json()
    for who in PERSONAS:
        entry = client.post(f"/api/v1/stories/{story['slug']}/entries", json={"body": "x"}, headers=site.auth("eve")).json()
        other = client.post(f"/api/v1/stories/{story['slug']}/entries", json={"body": "y"}, headers=site.auth("eve")).json()
        url = path.format(slug=story["slug"], entry=entry["id"], other=other["id"])
        headers = {} if who == "anonymous" else site.auth(who)
        response = client.request(method, url, json=body, headers=headers)
        allowed = RANK[who] >= RANK[lowest]
        if allowed:
            assert response.status_code < 400 or response.status_code == 409, (who, response.status_code, response.text)
        else:
            assert response.status_code == (401 if who == "anonymous" else 403), (who, response.status_code)


@pytest.mark.parametrize("path", ["/newsroom", "/newsroom/password", "/newsroom/stories/x"])
def test_newsroom_pages_send_anonymous_visitors_to_sign_in(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/newsroom/login?next=")


def test_reporters_cannot_use_editor_forms(client: TestClient, site: Site, live_story: str) -> None:
    token = sign_in_form(client, "rita")
    assert client.post("/newsroom/stories", data={"headline": "Mine", "csrf_token": token}).status_code == 403
    assert client.post(f"/newsroom/stories/{live_story}", data={"headline": "Mine", "csrf_token": token}).status_code == 403


def test_the_newsroom_stream_needs_a_session(client: TestClient, live_story: str) -> None:
    response = client.get(f"/newsroom/stories/{live_story}/live")
    assert response.status_code == 401


# --- uploads ------------------------------------------------------------------------------


def jpeg(width: int = 1200, height: int = 800, exif: bool = False) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), (200, 30, 30))
    if exif:
        data = Image.Exif()
        data[0x010F] = "SecretCam"  # Make
        data[0x8825] = {2: (52.0, 31.0, 0.0), 4: (13.0, 24.0, 0.0)}  # GPS position
        image.save(buffer, "JPEG", exif=data)
    else:
        image.save(buffer, "JPEG")
    return buffer.getvalue()


def png_bomb() -> bytes:
    """A tiny PNG that claims 100,000 × 100,000 pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")


def upload(client: TestClient, site: Site, data: bytes, name: str = "photo.jpg") -> object:
    return client.post("/api/v1/uploads", files={"file": (name, data, "image/jpeg")}, headers=site.auth("rita"))


def test_a_photo_is_cleaned_and_resized(client: TestClient, site: Site, tmp_path: object) -> None:
    response = upload(client, site, jpeg(2400, 1600, exif=True))
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]
    stored = response.json()  # type: ignore[attr-defined]
    assert (stored["width"], stored["height"]) == (1600, 1067)
    assert stored["srcset"].count("w,") == 2
    served = client.get(stored["url"])
    assert served.status_code == 200 and "immutable" in served.headers["Cache-Control"]
    image = Image.open(io.BytesIO(served.content))
    assert image.size == (1600, 1067) and not image.getexif(), "no EXIF, no location"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"<html><script>alert(1)</script></html>", "not a JPEG, PNG or WebP"),
        (b"GIF89a" + b"\x00" * 100, "not a JPEG, PNG or WebP"),
        (jpeg() + b"<script>alert(1)</script>", "extra data after the image"),
        (jpeg()[:2000], "damaged"),
        (png_bomb(), "too large"),
        (b"", "empty"),
    ],
    ids=["html", "gif", "polyglot", "truncated", "decompression-bomb", "empty"],
)
def test_hostile_uploads_are_refused_with_a_clear_message(client: TestClient, site: Site, data: bytes, message: str) -> None:
    response = upload(client, site, data)
    assert response.status_code == 415, response.text  # type: ignore[attr-defined]
    assert message in response.json()["detail"]  # type: ignore[attr-defined]


def test_an_oversized_upload_is_refused(client: TestClient, site: Site) -> None:
    response = upload(client, site, b"\xff\xd8\xff" + b"\x00" * (16 * 1024 * 1024))
    assert response.status_code == 413


def test_uploads_need_a_newsroom_member(client: TestClient) -> None:
    assert client.post("/api/v1/uploads", files={"file": ("a.jpg", jpeg(), "image/jpeg")}).status_code == 401
