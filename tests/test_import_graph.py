"""The project's import graph, read with ``ast`` (nothing is imported): no module cycle anywhere, and
the packages' layering holds.

A cycle is a trap even when it works today: which module finishes first depends on who imports
whom first, so a new top-level import, or a lazy one run earlier, turns it into an ImportError. Every
import counts, including those inside functions and ``TYPE_CHECKING`` blocks. The layering keeps the
shared ``runtime`` below the four packages, and the pipeline on top of them.
"""

from __future__ import annotations

import ast
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_PACKAGES = frozenset({"tests", "bench"})
EXPECTED = frozenset({"runtime", "pona_model", "reid", "augment", "pipelines"})
# package -> the packages it must not import.
FORBIDDEN = {
    "runtime": frozenset({"pona_model", "reid", "augment", "pipelines"}),
    "pona_model": frozenset({"pipelines"}),
    "reid": frozenset({"pipelines"}),
    "augment": frozenset({"pipelines"}),
}


@dataclass(frozen=True)
class Import:
    """One import statement's edge: ``source`` imports ``target``, at ``path:line``."""

    source: str
    target: str
    path: str
    line: int

    @property
    def site(self) -> str:
        return f"{self.path}:{self.line}"


def packages(root: Path) -> list[str]:
    """Every top-level package of the project (a folder with ``__init__.py``), tests and bench aside."""
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and p.name not in NOT_PACKAGES and not p.name.startswith(".")
                  and (p / "__init__.py").is_file())


def module_files(root: Path, names: list[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages ``names``."""
    found: dict[str, Path] = {}
    for name in names:
        for path in sorted((root / name).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _known_prefix(name: str, known: set[str]) -> str | None:
    """The longest project module that ``name`` is or lies in (``a.b.attr`` -> ``a.b``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def _from_base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` reads from, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones included (function and class bodies, ``if TYPE_CHECKING:``, ``try``,
    ``with``, ``match``). Imports are statements, so the many expression nodes are never visited."""
    for node in body:
        yield node
        for field in ("body", "orelse", "finalbody"):
            nested = getattr(node, field, None)
            if isinstance(nested, list):
                yield from statements(nested)
        for clause in [*getattr(node, "handlers", ()), *getattr(node, "cases", ())]:
            yield from statements(clause.body)


def imports_of(module: str, path: Path, root: Path, known: set[str]) -> list[Import]:
    """The project modules ``module`` imports anywhere in its file (not itself), with their lines."""
    rel = path.relative_to(root).as_posix()
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def add(target: str | None, line: int) -> None:
        if target is not None and target != module:
            found.append(Import(module, target, rel, line))

    for node in statements(ast.parse(path.read_text(encoding="utf-8"), filename=rel).body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(_known_prefix(alias.name, known), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(module, is_package, node)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                add(submodule if submodule in known else _known_prefix(base, known), node.lineno)
    return list(dict.fromkeys(found))  # one entry per (target, line)


def import_graph(root: Path) -> list[Import]:
    files = module_files(root, packages(root))
    known = set(files)
    return [edge for name, path in files.items() for edge in imports_of(name, path, root, known)]


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            result.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def _shortest_path(graph: dict[str, set[str]], start: str, goal: str, within: set[str]) -> list[str]:
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for nxt in sorted(graph.get(node, ())):
            if nxt in within and nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    path = [goal]
    while previous[path[-1]] is not None:
        path.append(previous[path[-1]])  # type: ignore[arg-type]
    return path[::-1]


def cycles(edges: list[Import]) -> list[list[str]]:
    """Cycles as chains ``[a, b, a]``: for every import edge that lies on a cycle, the shortest cycle
    through it, so each import to break shows up at least once."""
    graph: dict[str, set[str]] = defaultdict(set)
    for edge in edges:
        graph[edge.source].add(edge.target)
    found: dict[tuple[str, ...], list[str]] = {}
    for component in _components(graph):
        if len(component) < 2:
            continue
        for source in sorted(component):
            for target in sorted(graph[source] & component):
                loop = [source, *_shortest_path(graph, target, source, component)]
                start = loop.index(min(loop[:-1]))
                chain = loop[start:-1] + loop[:start] + [loop[start]]
                found.setdefault(tuple(chain), chain)
    return sorted(found.values(), key=lambda c: (len(c), c))


def describe(chain: list[str], edges: list[Import]) -> str:
    """``a -> b -> a`` and, under it, the import lines that make each step."""
    sites: dict[tuple[str, str], list[str]] = defaultdict(list)
    for edge in edges:
        if edge.site not in sites[edge.source, edge.target]:
            sites[edge.source, edge.target].append(edge.site)
    steps = [f"    {a} -> {b}: {', '.join(sites[a, b])}" for a, b in pairwise(chain)]
    return "\n".join([" -> ".join(chain), *steps])


def layering_violations(edges: list[Import]) -> list[str]:
    return sorted(f"{e.site}: {e.source} imports {e.target}" for e in edges
                  if e.target.split(".")[0] in FORBIDDEN.get(e.source.split(".")[0], ()))


def test_the_project_has_no_import_cycle_and_keeps_its_layers():
    assert EXPECTED <= set(packages(ROOT))
    edges = import_graph(ROOT)
    found = cycles(edges)
    assert not found, f"{len(found)} import cycle(s):\n" + "\n".join(describe(c, edges) for c in found)
    bad = layering_violations(edges)
    assert not bad, "imports against the layering (runtime < pona_model, reid, augment < pipelines):\n" + \
        "\n".join(bad)


def test_the_scan_sees_lazy_relative_type_checking_and_submodule_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import os\n\n\ndef f():\n    from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from .c import C\n")
    (pkg / "sub" / "c.py").write_text("from ..a import f\nfrom . import b\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("import pkg.a\n")
    edges = import_graph(tmp_path)
    assert {(e.source, e.target, e.site) for e in edges} == {
        ("pkg.a", "pkg.sub.b", "pkg/a.py:5"),
        ("pkg.sub.b", "pkg.sub.c", "pkg/sub/b.py:4"),
        ("pkg.sub.c", "pkg.a", "pkg/sub/c.py:1"),
        ("pkg.sub.c", "pkg.sub.b", "pkg/sub/c.py:2"),
    }
    found = cycles(edges)
    assert found == [["pkg.sub.b", "pkg.sub.c", "pkg.sub.b"], ["pkg.a", "pkg.sub.b", "pkg.sub.c", "pkg.a"]]
    assert describe(found[0], edges) == ("pkg.sub.b -> pkg.sub.c -> pkg.sub.b\n"
                                         "    pkg.sub.b -> pkg.sub.c: pkg/sub/b.py:4\n"
                                         "    pkg.sub.c -> pkg.sub.b: pkg/sub/c.py:2")


NESTED = """
import a
class K:
    import b
    async def f(self):
        async with x:
            import c
try:
    import d
except* E:
    import e
else:
    import f
finally:
    import g
while x:
    pass
else:
    for i in y:
        import h
match x:
    case 1:
        import i
"""


def test_the_statement_walk_finds_every_import_ast_walk_finds():
    tree = ast.parse(NESTED)
    walked = sorted(n.names[0].name for n in ast.walk(tree) if isinstance(n, ast.Import))
    assert walked == list("abcdefghi")
    assert sorted(n.names[0].name for n in statements(tree.body) if isinstance(n, ast.Import)) == walked


def test_the_layering_check_names_the_import_line():
    edges = [Import("runtime.config", "pipelines.run", "runtime/config.py", 7),
             Import("reid.model", "runtime.device", "reid/model.py", 3)]
    assert layering_violations(edges) == ["runtime/config.py:7: runtime.config imports pipelines.run"]
