"""Rewrite the settings table in docs/configuration.md from src/dateline/config.py.

    python scripts/config_docs.py

tests/test_docs.py fails when the table and the code disagree.
"""

from __future__ import annotations

import re
from pathlib import Path

from dateline.config import described_settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
HEADER = "| Variable | Default | What it does |\n|---|---|---|\n"


def main() -> None:
    rows = "".join(f"| `{name}` | `{default}` | {text} |\n" for name, default, text in described_settings())
    text = DOC.read_text()
    text = re.sub(re.escape(HEADER) + r"(\|.*\|\n)+", lambda _: HEADER + rows, text)
    DOC.write_text(text)


if __name__ == "__main__":
    main()
