"""The package keeps its shape: small modules, no import cycles, routes imported by the
shell alone (scripts/layout.py holds the rules and prints the figures)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "layout.py"
spec = importlib.util.spec_from_file_location("layout", SCRIPT)
assert spec is not None and spec.loader is not None
layout = importlib.util.module_from_spec(spec)
sys.modules["layout"] = layout
spec.loader.exec_module(layout)


def test_the_package_keeps_its_shape() -> None:
    lines, broken = layout.report()
    assert broken == [], "\n".join(lines + broken)


def test_the_rules_see_what_they_forbid(tmp_path: Path) -> None:
    # A cycle three slices long, and one in two modules, are found; a chain is not one.
    assert layout.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layout.cycles({"a": {"b"}, "b": set()}) == []
    # Imports resolve, relative and absolute, and `if TYPE_CHECKING:` ones are left out.
    module = tmp_path / "mod.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from ..stories import posting\nfrom dateline.web import deps\n"
        "if TYPE_CHECKING:\n    from ..api import entries\n"
    )
    known = {"live.mod", "stories.posting", "web.deps", "api.entries"}
    assert layout.imports_of("live.mod", module, known) == {"stories.posting", "web.deps"}
    assert layout.slice_of("vocabulary") == "base" and layout.slice_of("routes") == "shell"
    assert layout.slice_of("api.entries") == "api"
