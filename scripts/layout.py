"""The package's shape in numbers: module sizes and the import graph between its slices.

    python scripts/layout.py          # print the report
    python scripts/layout.py --check  # exit 1 if a rule below is broken (tests/test_layout.py)

A *slice* is a folder of src/dateline (stories, accounts, live, push, api, web, newsroom,
reader, demo, migrations). The modules beside them are either the *base* every slice may use
(config, db, schema, vocabulary, errors, times, plain_text) or the *shell* that puts the slices together
(app, routes, cli). Imports under `if TYPE_CHECKING:` are left out: they never run. The rules:

- no module over MAX_LINES lines;
- the base imports only the base;
- no cycle between slices, and none between modules;
- route modules (the HTTP handlers) are imported by the shell alone: no slice imports
  another's routes.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "dateline"
MAX_LINES = 400
BASE = {"config", "db", "schema", "vocabulary", "errors", "times", "plain_text", "__init__"}
SHELL = {"app", "routes", "cli", "__main__"}
ROUTE_MODULES = {
    "api.stories", "api.entries", "api.events", "api.accounts", "api.uploads", "api.push",
    "newsroom.signin", "newsroom.desk", "reader.pages", "feeds.pages", "embedding.pages", "api.search",
    "reader.search_page",
}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        found[name.removesuffix(".__init__") if name.endswith(".__init__") else name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's own modules that `name` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and ast.unparse(block.test).endswith("TYPE_CHECKING") for n in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue  # `if TYPE_CHECKING:` imports are for the type checker, not run
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("dateline"):
                target = node.module.removeprefix("dateline").lstrip(".")
            else:
                continue
            for alias in node.names:
                child = f"{target}.{alias.name}" if target else alias.name
                found.add(child if child in known else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dateline."):
                    found.add(alias.name.removeprefix("dateline."))
    return {m for m in found if m in known and m != name}


def slice_of(module: str) -> str:
    head = module.split(".")[0]
    if head in BASE:
        return "base"
    if head in SHELL:
        return "shell"
    return head


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def report() -> tuple[list[str], list[str]]:
    """(lines of the report, broken rules)."""
    found = modules()
    graph = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in found.items()}
    slices: dict[str, set[str]] = defaultdict(set)
    for name, targets in graph.items():
        for target in targets:
            if slice_of(target) != slice_of(name):
                slices[slice_of(name)].add(slice_of(target))
    broken = [f"{name} has {size} lines (at most {MAX_LINES})" for name, size in sizes.items() if size > MAX_LINES]
    broken += [f"base module {name} imports {t}" for name, ts in graph.items() if slice_of(name) == "base"
               for t in ts if slice_of(t) != "base"]
    broken += [f"slices import each other in a cycle: {' ↔ '.join(c)}" for c in cycles(dict(slices))]
    broken += [f"modules import each other in a cycle: {' ↔ '.join(c)}" for c in cycles(graph)]
    broken += [f"{name} imports the routes of {t}" for name, ts in graph.items() if slice_of(name) != "shell"
               for t in ts if t in ROUTE_MODULES]
    lines = ["Slices and what they import:"]
    for name in sorted(set(slices) | {slice_of(m) for m in found}):
        lines.append(f"  {name:<11} → {', '.join(sorted(slices.get(name, ()))) or '(nothing)'}")
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:8]
    lines.append(f"Modules: {len(found)}, {sum(sizes.values())} lines; largest: "
                 + ", ".join(f"{n} {s}" for n, s in largest))
    return lines, broken


def main() -> int:
    lines, broken = report()
    print("\n".join(lines))
    for rule in broken:
        print(f"BROKEN: {rule}")
    if not broken:
        print("All rules hold: no module over the size, no cycles, routes imported by the shell alone.")
    return 1 if broken and "--check" in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())
