"""The architecture, checked from the import statements themselves (ast, in-function imports included,
`if TYPE_CHECKING:` blocks left out): no import cycle among our modules, the web app reaches core only
through the service facade, its result types and core.errors, and no module in core/ outgrows 400 lines.
import-linter (`make lint`) checks the layers; this test computes what it cannot: cycles at module level."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "webapp")
# What webapp/ may import from core: the facade, the errors, and result types, i.e. modules named
# `results` or `types` under core.usecases (core.usecases.results, core.usecases.<area>.results, ...).
WEBAPP_MAY_IMPORT = ("core.service", "core.errors")
RESULT_MODULE_NAMES = ("results", "types")
MAX_CORE_LINES = 400
MAX_SERVICE_LINES = 250

Graph = dict[str, set[str]]


def module_files(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, a package named by its __init__.py."""
    files = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under `node`, at any depth, except the body of `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes(ast.Module(body=[other], type_ignores=[]))
        else:
            yield from _import_nodes(child)


def _ours(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is one of our modules (`a.b.func` -> `a.b`)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def _targets(node: ast.Import | ast.ImportFrom, module: str, *, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
    yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> Graph:
    """Module -> the modules of ours it imports."""
    modules = module_files(root, packages)
    graph: Graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        found = (_ours(t, modules) for node in _import_nodes(tree)
                 for t in _targets(node, module, is_package=is_package))
        graph[module] = {target for target in found if target and target != module}
    return graph


def find_cycle(graph: Graph) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None (depth-first, iterative)."""
    done: set[str] = set()
    for start in sorted(set(graph) - done):
        path, on_path = [start], {start}
        stack = [iter(sorted(graph[start]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                stack.pop()
                continue
            if nxt in on_path:
                return path[path.index(nxt):] + [nxt]
            if nxt not in done and nxt in graph:
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def webapp_reaches_around(graph: Graph) -> list[str]:
    """`webapp.x -> core.y` for every import of core that is not the facade, errors or a result type."""
    def allowed(target: str) -> bool:
        return target in WEBAPP_MAY_IMPORT or (
            target.startswith("core.usecases.") and target.rsplit(".", 1)[-1] in RESULT_MODULE_NAMES)

    return sorted(f"{source} -> {target}" for source, targets in graph.items() if source.startswith("webapp")
                  for target in targets if target.split(".")[0] == "core" and not allowed(target))


def oversized(root: Path) -> list[str]:
    files = module_files(root, ("core",)).values()
    sizes = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in files}
    limit = {root / "core" / "service.py": MAX_SERVICE_LINES}
    return sorted(f"{path.relative_to(root)}: {n} lines (limit {limit.get(path, MAX_CORE_LINES)})"
                  for path, n in sizes.items() if n > limit.get(path, MAX_CORE_LINES))


# -- the checks on this repository ----------------------------------------------------------------


def test_no_import_cycle_among_our_modules() -> None:
    cycle = find_cycle(import_graph(ROOT))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_webapp_imports_only_the_facade_its_results_and_errors() -> None:
    around = webapp_reaches_around(import_graph(ROOT))
    assert not around, "webapp reaches around the service:\n" + "\n".join(around)


def test_no_core_module_outgrows_its_limit() -> None:
    too_long = oversized(ROOT)
    assert not too_long, "\n".join(too_long)


# -- the checker itself, on a made-up tree --------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_the_graph_sees_in_function_and_relative_imports_but_not_type_checking_ones(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "core/__init__.py": "",
        "core/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from core import b\n"
                     "else:\n    import json\ndef f():\n    from . import c\n",
        "core/b.py": "import core.a\n",
        "core/c.py": "from core.b import name\n",
        "core/pkg/__init__.py": "from .d import x\n",
        "core/pkg/d.py": "from .. import a\nimport numpy\n",
    })
    graph = import_graph(root, ("core",))
    assert graph == {"core": set(), "core.a": {"core.c"}, "core.b": {"core.a"}, "core.c": {"core.b"},
                     "core.pkg": {"core.pkg.d"}, "core.pkg.d": {"core.a"}}
    assert find_cycle(graph) == ["core.a", "core.c", "core.b", "core.a"]
    del graph["core.b"]
    assert find_cycle(graph) is None


def test_the_webapp_rule_and_the_size_rule(tmp_path: Path) -> None:
    graph = {"webapp.app": {"core.service", "core.errors", "core.usecases.regions.results", "core.store.repo",
                            "core.usecases.regions.runtime", "webapp.views"}}
    assert webapp_reaches_around(graph) == ["webapp.app -> core.store.repo",
                                            "webapp.app -> core.usecases.regions.runtime"]
    root = _tree(tmp_path, {"core/__init__.py": "", "core/service.py": "x = 1\n" * 251,
                            "core/big.py": "x = 1\n" * 401, "core/ok.py": "x = 1\n" * 400})
    assert oversized(root) == ["core/big.py: 401 lines (limit 400)", "core/service.py: 251 lines (limit 250)"]
