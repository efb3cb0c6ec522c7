"""The layering rules, checked on the source: the product never imports the bench, and no import goes in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, runtime_only: bool) -> set[str]:
    """Modules ``path`` imports; ``runtime_only`` skips ``if TYPE_CHECKING:`` blocks and imports inside functions."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    nodes = tree.body if runtime_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _files(*packages: str) -> list[Path]:
    return [p for package in packages for p in (ROOT / package).rglob("*.py")]


def test_no_module_of_the_product_imports_the_bench() -> None:
    offenders = {_module(p): sorted(i for i in _imports(p, runtime_only=False) if i == "hil" or i.startswith("hil."))
                 for p in _files("controller", "hal")}
    assert {m: i for m, i in offenders.items() if i} == {}
    for path in _files("controller", "hal"):  # nor names it for a dynamic import
        assert "import_module(\"hil" not in path.read_text() and "'hil." not in path.read_text(), path


def test_the_product_has_no_import_cycle() -> None:
    modules = {_module(p): p for p in _files("controller", "hal")}
    graph = {name: {i for i in _imports(path, runtime_only=True) if i in modules and i != name}
             for name, path in modules.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        assert name not in visiting, " -> ".join([*visiting[visiting.index(name):], name])
        visiting.append(name)
        for target in sorted(graph[name]):
            visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_the_bench_comes_in_through_the_platform_entry_point() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert '[project.entry-points."evse_controller.platforms"]\nsim = "hil.simhw:SimHardware"' in text
