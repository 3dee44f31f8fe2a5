"""Photos in the database: uploaded through one node, served by any other, cached for ever.

Every test runs on SQLite and PostgreSQL. Photos are made of random pixels, so each test's
names are its own (the PostgreSQL database of a test session keeps its `media` rows).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ServerProcess, Site
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import delete, func, select
from test_cli import dateline

from dateline.app import create_app
from dateline.config import Settings
from dateline.schema import media
from dateline.stories import photos
from dateline.stories.media import DatabaseStore, FolderStore, MediaCache

IMMUTABLE = "public, max-age=31536000, immutable"


def new_photo(width: int = 900, height: int = 600) -> bytes:
    """A JPEG no other test uploads."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


def node(site: Site, folder: Path, store: str = "database") -> Settings:
    return Settings.from_env({}, database_url=site.url, media_dir=str(folder), media_store=store)


@pytest.fixture
def two_nodes(site: Site, tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps on one database, each with a media folder of its own."""
    with TestClient(create_app(node(site, tmp_path / "a"), site.db), raise_server_exceptions=False) as a, \
            TestClient(create_app(node(site, tmp_path / "b"), site.db), raise_server_exceptions=False) as b:
        yield a, b


def upload(client: Any, site: Site, data: bytes) -> dict[str, Any]:
    response = client.post("/api/v1/uploads", files={"file": ("IMG_0001.jpg", data, "image/jpeg")},
                           headers=site.auth("rita"))
    assert response.status_code == 201, response.text
    return dict(response.json())


def srcset_paths(answer: dict[str, Any]) -> list[str]:
    return [part.split()[0] for part in answer["srcset"].split(", ")]


def stored_rows(site: Site, key: str) -> int:
    with site.db.read() as conn:
        counted = select(func.count()).select_from(media).where(media.c.name.like(f"{key}-%"))
        return int(conn.execute(counted).scalar_one())


def test_a_photo_uploaded_through_one_node_is_served_by_another(
    two_nodes: tuple[TestClient, TestClient], site: Site, tmp_path: Path,
) -> None:
    a, b = two_nodes
    photo = new_photo()
    answer = upload(a, site, photo)
    paths = srcset_paths(answer)
    assert len(paths) == 2 and answer["url"] == paths[-1]
    _, variants = photos.process(photo)
    for path, variant in zip(paths, variants, strict=True):
        served = b.get(path)
        assert served.status_code == 200, (path, served.text)
        assert served.content == variant.data and served.headers["content-type"] == "image/jpeg"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists(), "no node wrote a file"
    # The same photo again: the same names, stored once.
    assert upload(b, site, photo)["url"] == answer["url"]
    assert stored_rows(site, answer["url"].split("/")[-1][:24]) == 2


def test_a_photo_is_answered_immutable_with_a_strong_etag_and_304(
    two_nodes: tuple[TestClient, TestClient], site: Site,
) -> None:
    a, b = two_nodes
    path = upload(a, site, new_photo())["url"]
    name = path.removeprefix("/media/")
    got = b.get(path)
    assert got.status_code == 200
    assert got.headers["cache-control"] == IMMUTABLE
    assert got.headers["etag"] == f'"{name}"'
    assert got.headers["content-length"] == str(len(got.content))
    assert got.headers.get_list("x-content-type-options") == ["nosniff"]
    for tags in (f'"{name}"', f'"other", W/"{name}"', "*"):
        again = b.get(path, headers={"If-None-Match": tags})
        assert again.status_code == 304 and again.content == b"", tags
        assert again.headers["etag"] == f'"{name}"' and again.headers["cache-control"] == IMMUTABLE
    assert b.get(path, headers={"If-None-Match": '"something-else"'}).status_code == 200
    head = b.head(path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(got.content)) and head.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("name", [
    "0123456789abcdef01234567-480x320.jpg",  # well formed, never uploaded
    "0123456789ABCDEF01234567-480x320.jpg", "0123456789abcdef01234567-480x320.gif",
    "0123456789abcdef01234567-0x320.jpg", "0123456789abcdef01234567-480x320.jpg%0A",
    "0123456789abcdef01234567-480x320.jpg.partial", "..%2Fdateline.db", "x",
])
def test_an_unknown_or_bad_name_is_a_404(two_nodes: tuple[TestClient, TestClient], name: str) -> None:
    for response in (two_nodes[1].get(f"/media/{name}"), two_nodes[1].head(f"/media/{name}")):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    assert two_nodes[1].get(f"/media/{name}").json()["status"] == 404


def test_a_served_photo_is_kept_in_the_nodes_cache(two_nodes: tuple[TestClient, TestClient], site: Site) -> None:
    a, b = two_nodes
    path = upload(a, site, new_photo())["url"]
    first = b.get(path)
    assert first.status_code == 200
    with site.db.write() as conn:
        conn.execute(delete(media).where(media.c.name == path.removeprefix("/media/")))
    assert b.get(path).content == first.content, "served from the cache, not the database"
    assert a.get(path).status_code == 404, "the other node never served it: it asks the database"


def test_the_cache_stays_within_its_bytes() -> None:
    cache = MediaCache(max_bytes=1000)

    def variant(name: str, size: int) -> photos.Variant:
        return photos.Variant(name, "image/jpeg", b"x" * size)

    for name in "abc":
        cache.put(variant(name, 300))
    assert cache.size == 900 and len(cache) == 3
    assert cache.get("a") is not None  # now the most recently used
    cache.put(variant("d", 300))
    assert cache.size <= 1000 and "b" not in cache and {"a", "c", "d"} <= {n for n in "abcd" if n in cache}
    cache.put(variant("big", 1001))
    assert "big" not in cache and cache.size == 900, "larger than the whole cache: served, not held"
    cache.put(variant("e", 1000))
    assert cache.size == 1000 and len(cache) == 1
    for n in range(200):
        cache.put(variant(f"n{n}", 1 + n % 97))
        assert cache.size <= 1000
        assert cache.size == sum(len(v.data) for v in cache._items.values())


def test_an_upload_is_stored_whole_or_not_at_all(site: Site) -> None:
    _, variants = photos.process(new_photo())
    broken = [variants[0], photos.Variant(variants[1].name, "image/jpeg", None)]  # type: ignore[arg-type]
    store = DatabaseStore(site.db)
    with pytest.raises(Exception, match=r"(?i)null"):
        store.save(broken)
    assert store.read(variants[0].name) is None
    store.save(variants)
    store.save(variants)  # idempotent: the names are content hashes
    assert [store.read(v.name) for v in variants] == variants


def test_the_folder_store_still_serves_files(site: Site, tmp_path: Path) -> None:
    with TestClient(create_app(node(site, tmp_path / "media", "folder"), site.db)) as client:
        path = upload(client, site, new_photo())["url"]
        assert (tmp_path / "media" / path.removeprefix("/media/")).is_file()
        served = client.get(path)
        assert served.status_code == 200 and served.headers["cache-control"] == IMMUTABLE
    assert DatabaseStore(site.db).read(path.removeprefix("/media/")) is None


def test_two_server_processes_share_photos_through_the_database(site: Site) -> None:
    """Two `dateline serve` nodes, each with its own empty media folder: on PostgreSQL by
    default (`auto`), on SQLite when asked to."""
    env = {"DATELINE_MEDIA_STORE": "database"} if site.url.startswith("sqlite") else {}
    first = ServerProcess(site.url, None, "--workers", "1", env=env)
    second = ServerProcess(site.url, None, "--workers", "1", env=env)
    try:
        first.start()
        second.start()
        with httpx.Client(base_url=first.base_url) as a:
            answer = upload(a, site, new_photo(1700, 900))
        paths = srcset_paths(answer)
        assert len(paths) == 3
        for path in paths:
            served = httpx.get(second.base_url + path)
            assert served.status_code == 200 and served.content.startswith(b"\xff\xd8\xff"), path
            assert served.headers["cache-control"] == IMMUTABLE
        assert os.listdir(first.media_dir) == [] and os.listdir(second.media_dir) == []
        assert httpx.get(second.base_url + "/media/" + "0" * 24 + "-480x320.jpg").status_code == 404
    finally:
        first.stop()
        second.stop()


def test_media_import_copies_the_folder_once(site: Site, tmp_path: Path) -> None:
    folder = tmp_path / "media"
    made = [photos.process(new_photo(width))[1] for width in (400, 700)]
    for variants in made:
        FolderStore(folder).save(variants)
    (folder / ("f" * 24 + "-480x320.jpg")).write_bytes(b"<html>not a photo</html>")
    (folder / ".partial-leftover").write_bytes(b"\xff\xd8\xff")
    (folder / "notes.txt").write_text("not a photo")
    names = [v.name for variants in made for v in variants]
    assert len(names) == 3
    env = {"DATELINE_DATABASE_URL": site.url, "DATELINE_MEDIA_DIR": str(folder)}

    first = dateline("media", "import", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "Copied 3 photo files into the database (0 already there)." in first.stdout
    assert "f" * 24 + "-480x320.jpg" in first.stderr  # said, and skipped
    store = DatabaseStore(site.db)
    for variants in made:
        for v in variants:
            assert store.read(v.name) == v
    assert store.read("f" * 24 + "-480x320.jpg") is None

    again = dateline("media", "import", "--media-dir", str(folder), "--database", site.url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Copied 0 photo files into the database (3 already there)." in again.stdout


def test_media_import_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    missing = dateline("media", "import", "--media-dir", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode != 0 and "nothing to import" in missing.stderr
    assert "Traceback" not in missing.stderr and missing.stderr.count("\n") == 1
    (tmp_path / "media").mkdir()
    uninitialised = dateline("media", "import", cwd=tmp_path)
    assert uninitialised.returncode != 0 and "run `dateline init` first" in uninitialised.stderr
    assert "Traceback" not in uninitialised.stderr
