"""The docs say what the code does: every setting documented, the README's commands real."""

from __future__ import annotations

import re
from pathlib import Path

from dateline.api import models as api_models
from dateline.config import described_settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented() -> None:
    """`python scripts/config_docs.py` rewrites the table."""
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for name, default, _ in described_settings():
        assert f"| `{name}` | `{default}` |" in doc, name


def test_ci_runs_the_readme_test_line() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    test_line = next(b.strip() for b in blocks if "pytest" in b)
    assert test_line in (ROOT / ".ci" / "run").read_text()


def test_the_documented_limits_are_the_real_ones() -> None:
    doc = (ROOT / "docs" / "api.md").read_text()
    for value in [api_models.MAX_HEADLINE, api_models.MAX_DATELINE, api_models.MAX_SUMMARY, api_models.MAX_BODY,
                  api_models.MAX_SHORT, api_models.MAX_CAPTION, api_models.MAX_URL, api_models.MAX_PAGE]:
        assert f"{value:,}" in doc, value
