"""The API fuzzed from its own OpenAPI document: no input makes it answer 5xx.

Runs in-process on SQLite and PostgreSQL with an admin's token, so the write paths are
exercised, not just refused. A failure prints `FUZZ_SEED=<n>`; set it to replay that run.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from conftest import Site
from dateline.accounts import users as accounts
from dateline.stories import entries, story as stories
from dateline.app import create_app
from dateline.push import subscriptions
from dateline.config import Settings


@pytest.fixture
def api_schema(site: Site) -> Any:
    # The story and entry that the OpenAPI examples name, so explicit cases reach real rows.
    with site.db.write() as conn:
        story = stories.create_story(conn, headline="Night two", slug="night-two", status="live")
        author = accounts.get_user(conn, "eve")
        assert author is not None
        entries.create_entry(conn, story, author, kind="text", body="First update", fields={})
        subscriptions.ensure_key(conn)  # as `dateline init` does
    app = create_app(Settings.from_env({}, database_url=site.url), site.db)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    schema.config.update(headers=site.auth("ada"))
    seed = int(os.environ.get("FUZZ_SEED") or random.getrandbits(32))
    schema.config.seed = seed
    print(f"fuzz seed: FUZZ_SEED={seed}")
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None,
    # No shrinking: it can take minutes; the failing input is printed all the same.
    phases=[Phase.explicit, Phase.generate],
)
def test_no_input_makes_the_api_fail(case: Any) -> None:
    response = case.call_and_validate(
        checks=[not_a_server_error, content_type_conformance, response_schema_conformance]
    )
    successes[f"{case.method} {case.path}"] += response.status_code < 300


successes: Counter[str] = Counter()


def test_the_fuzzer_reached_the_write_paths() -> None:
    """Runs after the fuzz (file order): it must have made real writes, not only been refused."""
    if not successes:
        pytest.skip("run together with the fuzz test")
    for operation in ["POST /api/v1/stories", "POST /api/v1/stories/{slug}/entries",
                      "PATCH /api/v1/stories/{slug}/entries/{entry_id}"]:
        assert successes[operation] > 0, (operation, dict(successes))
