"""The layering of DESIGN §1, read from the code's own import statements (parsed, not grepped).

Dependencies point inward: core imports no face; channels/, ai/ and bot/ import only core and
themselves; only app/ knows every room. And no package imports itself round in a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("app", "core", "channels", "ai", "bot", "migrations")
MAY_IMPORT = {
    "core": {"core", "migrations"},
    "channels": {"core", "channels"},
    "ai": {"core", "ai"},
    "bot": {"core", "bot"},
}


def modules(root: Path) -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules `name` imports anywhere in its file (top level, functions, TYPE_CHECKING)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from core import migrate` imports the module core.migrate, not only the package
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target.split(".")[0] in PACKAGES)
    return found - {name}


def import_graph(root: Path) -> dict[str, set[str]]:
    found = dict(modules(root))
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for module, targets in sorted(graph.items()):
        allowed = MAY_IMPORT.get(module.split(".")[0])
        if allowed is None:
            continue
        for target in sorted(targets):
            if target.split(".")[0] not in allowed:
                problems.append(f"{module} imports {target}")
    return problems


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_core_imports_no_face_and_faces_import_only_core():
    assert layering_violations(import_graph(ROOT)) == []


def test_no_module_imports_itself_round_a_circle():
    assert import_cycles(import_graph(ROOT)) == []


def test_the_guard_catches_a_face_imported_from_core_even_inside_a_function(tmp_path: Path):
    (tmp_path / "core").mkdir()
    (tmp_path / "bot").mkdir()
    (tmp_path / "core" / "__init__.py").write_text("")
    (tmp_path / "bot" / "__init__.py").write_text("")
    (tmp_path / "bot" / "mirror.py").write_text("from core import models\n")
    (tmp_path / "core" / "models.py").write_text("X = 1\n")
    (tmp_path / "core" / "tasks.py").write_text("def later():\n    from bot.mirror import Mirror\n")
    (tmp_path / "core" / "rel.py").write_text("from ..bot import mirror\n")

    assert layering_violations(import_graph(tmp_path)) == [
        "core.rel imports bot.mirror",
        "core.tasks imports bot.mirror",
    ]


def test_the_guard_catches_a_circle(tmp_path: Path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "a.py").write_text("from app import b\n")
    (tmp_path / "app" / "b.py").write_text("import app.c\n")
    (tmp_path / "app" / "c.py").write_text("from app.a import thing\n")

    assert import_cycles(import_graph(tmp_path)) == [["app.a", "app.b", "app.c"]]
