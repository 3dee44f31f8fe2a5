"""The docs say what the code does: every setting documented with its default in its own row,
every limit of the API in the row that names it, the README's commands real."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dateline.app import create_app
from dateline.config import Settings, described_settings, env_name
from dateline.db import Database
from dateline.web.server import MAX_HEAD_BYTES

ROOT = Path(__file__).resolve().parent.parent


def table(doc: str, header: str) -> list[list[str]]:
    """The cells of each row of the Markdown table whose header line starts with `header`."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    assert re.fullmatch(r"\|(-+\|)+", lines[start + 1]), f"no table under {header!r}"
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def test_every_setting_is_documented_in_its_own_row() -> None:
    """`python scripts/config_docs.py` rewrites the table."""
    doc = (ROOT / "docs" / "configuration.md").read_text()
    rows = table(doc, "| Variable | Default | What it does |")
    names = [row[0] for row in rows]
    assert len(names) == len(set(names)), "a setting documented twice"
    documented = {row[0]: row for row in rows}
    settings = described_settings()
    assert set(documented) == {f"`{name}`" for name, _, _ in settings}, "settings missing from, or stale in, the table"
    for name, default, text in settings:
        row = documented[f"`{name}`"]
        assert len(row) == 3, row
        assert row[1] == f"`{default}`", f"{name}: documented default {row[1]}, the code's is `{default}`"
        assert row[2] == text, f"{name}: the description differs from config.py's help"


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The OpenAPI document the API serves: the limits it states are the ones it enforces."""
    url = f"sqlite:///{tmp_path_factory.mktemp('docs') / 'unused.db'}"
    db = Database(url)
    try:
        yield create_app(Settings.from_env({}, database_url=url, broker="none"), db).openapi()
    finally:
        db.dispose()


def _string(schema: dict[str, Any]) -> dict[str, Any]:
    """The string branch of an optional field (`anyOf: [string, null]`)."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string":
            return branch  # type: ignore[no-any-return]
    raise AssertionError(f"not a string field: {schema}")


def _field_limits(openapi: dict[str, Any], field: str) -> tuple[int, ...]:
    """(maxLength,) or (minLength, maxLength) of a request field, the same in every request
    body that has it (a story's and an entry's, created and updated)."""
    found = set()
    for model in ("StoryCreate", "StoryUpdate", "EntryCreate", "EntryUpdate"):
        prop = openapi["components"]["schemas"][model].get("properties", {}).get(field)
        if prop is None:
            continue
        string = _string(prop)
        low = string.get("minLength", 0)
        found.add((string["maxLength"],) if low <= 0 else (low, string["maxLength"]))
    assert len(found) == 1, f"{field}: different limits in different request bodies: {found}"
    return found.pop()


def _parameter(openapi: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    for operation in openapi["paths"][path].values():
        for parameter in operation.get("parameters", []):
            if parameter["name"] == name:
                return parameter["schema"]  # type: ignore[no-any-return]
    raise AssertionError(f"no parameter {name} on {path}")


def _numbers(cell: str) -> tuple[int, ...]:
    return tuple(int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", cell))


def test_the_documented_limits_are_the_real_ones(openapi: dict[str, Any]) -> None:
    """Each row of docs/api.md's limits table states exactly the numbers of the field it names."""
    doc = (ROOT / "docs" / "api.md").read_text()
    rows = {row[0]: row[1] for row in table(doc.split("## Limits", 1)[1], "| what | limit |")}

    def same(*fields: str) -> tuple[int, ...]:
        limits = {_field_limits(openapi, f) for f in fields}
        assert len(limits) == 1, f"one row for {fields}, but their limits differ: {limits}"
        return limits.pop()

    def query(path: str, name: str) -> tuple[int, ...]:
        schema = _parameter(openapi, path, name)
        return schema["minimum"], schema["maximum"], schema["default"]

    slug = _parameter(openapi, "/api/v1/stories/{slug}", "slug")
    assert _string(openapi["components"]["schemas"]["StoryCreate"]["properties"]["slug"])["maxLength"] == slug["maxLength"]
    key = _string(_parameter(openapi, "/api/v1/stories", "Idempotency-Key"))
    key_lengths = re.fullmatch(r"\^\[.*\]\{1,(\d+)\}\$", key["pattern"])
    assert key_lengths, key["pattern"]
    expected = {
        "request body": (Settings.from_env({}).max_request_bytes,),
        "photo upload (`POST /api/v1/uploads`)": (Settings.from_env({}).max_upload_bytes,),
        "request head (request line and headers)": (MAX_HEAD_BYTES,),
        "headline": same("headline"),
        "dateline": same("dateline"),
        "summary": same("summary"),
        "entry body": same("body"),
        "speaker, role, credit": same("speaker", "role", "credit"),
        "caption, alt text": same("caption", "alt"),
        "URLs": same("image_url", "url"),
        "slug": (slug["maxLength"],),
        "page size (`limit` of entries)": query("/api/v1/stories/{slug}/entries", "limit"),
        "events per catch-up page": query("/api/v1/stories/{slug}/events", "limit"),
        "`Idempotency-Key`": (int(key_lengths.group(1)),),
    }
    assert set(rows) == set(expected), "rows missing from, or unknown to, this test"
    for what, numbers in expected.items():
        assert _numbers(rows[what]) == numbers, f"{what}: the docs say {rows[what]!r}, the API {numbers}"
    assert f"`{env_name('max_request_bytes')}`" in rows["request body"]
    assert f"`{env_name('max_upload_bytes')}`" in rows["photo upload (`POST /api/v1/uploads`)"]


def test_ci_runs_the_readme_test_line() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    test_line = next(b.strip() for b in blocks if "pytest" in b)
    assert test_line in (ROOT / ".ci" / "run").read_text()
