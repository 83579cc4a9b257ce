"""The project's import graph, read with ``ast`` (nothing is imported): no module cycle anywhere, the
packages' layering holds, and every name is imported from the module that defines it.

A cycle is a trap even when it works today: which module finishes first depends on who imports
whom first, so a new top-level import, or a lazy one run earlier, turns it into an ImportError. Every
import counts, including those inside functions and ``TYPE_CHECKING`` blocks.

The layers, lowest first (``ALLOWED`` says exactly what each package may import):

    runtime                      what every command needs and none owns
    poseformats                  keypoints, pose maps, PATN's files, Market-1501 names
    synthmarket                  the dataset renderer
    reid, pona_model             the re-ID model and protocol; the generators and their metrics
    augment                      the augmentation library (generator + re-ID data)
    pipelines                    the staged experiment, on top of everything

A module that only passes on names defined elsewhere (a re-export shim left behind by a move) gives one
concept two addresses: a reader finds the name in a file that does not define it, and the two drift.
So no module outside a package's ``__init__`` is only imports, no module star-imports, and every
``from M import N`` in the project, its tests and its benchmarks names the module that defines ``N``
(a package's ``__init__`` may gather names from its own submodules: that is its public face).
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
# Folders whose modules import the packages without being one: their imports are checked for re-exports.
USERS = ("tests", "bench")
# package -> the other packages it may import (anything else is against the layering).
ALLOWED: dict[str, frozenset[str]] = {
    "runtime": frozenset(),
    "poseformats": frozenset({"runtime"}),
    "synthmarket": frozenset({"runtime", "poseformats"}),
    "reid": frozenset({"runtime", "poseformats"}),
    "pona_model": frozenset({"runtime", "poseformats"}),
    "augment": frozenset({"runtime", "poseformats", "reid", "pona_model"}),
    "pipelines": frozenset({"runtime", "poseformats", "synthmarket", "reid", "pona_model", "augment"}),
}
EXPECTED = frozenset(ALLOWED)


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


def layering_violations(edges: list[Import], allowed: dict[str, frozenset[str]] = ALLOWED) -> list[str]:
    bad = []
    for e in edges:
        source, target = e.source.split(".")[0], e.target.split(".")[0]
        if source != target and target not in allowed.get(source, frozenset()):
            bad.append(f"{e.site}: {e.source} imports {e.target}")
    return sorted(bad)


def test_the_project_has_no_import_cycle_and_keeps_its_layers():
    found_packages = set(packages(ROOT))
    assert EXPECTED <= found_packages
    assert found_packages <= set(ALLOWED), (
        f"packages without a layer: {sorted(found_packages - set(ALLOWED))}; add each to ALLOWED with the "
        "packages it may import")
    edges = import_graph(ROOT)
    found = cycles(edges)
    assert not found, f"{len(found)} import cycle(s):\n" + "\n".join(describe(c, edges) for c in found)
    bad = layering_violations(edges)
    assert not bad, "imports against the layering (ALLOWED: runtime < poseformats < synthmarket < reid, " \
        "pona_model < augment < pipelines):\n" + "\n".join(bad)


# ----------------------------------------------------------------------------- re-exports

def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _assigned_names(node: ast.stmt) -> Iterator[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
    for target in targets:
        if target is not None:
            yield from (n.id for n in ast.walk(target) if isinstance(n, ast.Name))


@dataclass(frozen=True)
class ModuleNames:
    """What a module's top level defines, and where each name it imports comes from."""

    is_package: bool
    defined: frozenset[str]
    imported: dict[str, str]  # local name -> the module it was imported from


def module_names(module: str, path: Path) -> ModuleNames:
    is_package = path.name == "__init__.py"
    defined: set[str] = set()
    imported: dict[str, str] = {}
    # Top-level statements and those under a top-level if / try (TYPE_CHECKING, optional imports).
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = [s for n in tree.body for s in ([n] if not isinstance(n, (ast.If, ast.Try)) else statements([n]))]
    for node in top:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            defined.update(_assigned_names(node))
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(module, is_package, node)
            for alias in node.names:
                imported.setdefault(alias.asname or alias.name, base)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                imported.setdefault(alias.asname or alias.name.split(".")[0], alias.name)
    return ModuleNames(is_package, frozenset(defined), imported)


def user_files(root: Path) -> dict[str, Path]:
    """Dotted name -> file for the modules of the packages and of the folders that use them."""
    found = module_files(root, packages(root))
    for folder in USERS:
        for path in sorted((root / folder).rglob("*.py")) if (root / folder).is_dir() else ():
            parts = path.relative_to(root).with_suffix("").parts
            found.setdefault(".".join(parts[:-1] if parts[-1] == "__init__" else parts), path)
    return found


def reexport_violations(root: Path) -> list[str]:
    """Shims (a module outside a package ``__init__`` that is only imports), star imports, and every
    ``from M import N`` whose ``M`` does not define ``N`` but passes it on from another module."""
    project = module_files(root, packages(root))
    names = {module: module_names(module, path) for module, path in project.items()}
    bad = []
    for module, path in user_files(root).items():
        rel = path.relative_to(root).as_posix()
        is_package = path.name == "__init__.py"
        body = ast.parse(path.read_text(encoding="utf-8"), filename=rel).body
        if module in project and not is_package:
            rest = [n for n in body if not _is_docstring(n) and not (
                isinstance(n, (ast.Import, ast.ImportFrom)) or "__all__" in set(_assigned_names(n)))]
            if not rest and any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body):
                bad.append(f"{rel}: only imports (a re-export shim); import the names from where they are "
                           "defined and delete it")
        for node in statements(body):
            if not isinstance(node, ast.ImportFrom) or node.module == "__future__":
                continue
            base = _from_base(module, is_package, node)
            for alias in node.names:
                if alias.name == "*":
                    bad.append(f"{rel}:{node.lineno}: from {base} import *")
                    continue
                if base not in names or f"{base}.{alias.name}" in project or alias.name in names[base].defined:
                    continue
                source = names[base].imported.get(alias.name)
                if source is None:
                    continue  # not a top-level name of base: Python's ImportError says so when it runs
                if names[base].is_package and (source == base or source.startswith(base + ".")):
                    continue  # a package gathering its own submodules' names
                bad.append(f"{rel}:{node.lineno}: imports {alias.name} from {base}, which only passes it on "
                           f"from {source}; import it from there")
    return sorted(bad)


def test_no_module_re_exports_another_modules_names():
    bad = reexport_violations(ROOT)
    assert not bad, "names imported through a module that does not define them:\n" + "\n".join(bad)


def test_the_re_export_check_names_shims_star_imports_and_pass_through_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from pkg.sub.real import VALUE\n\n__all__ = ['VALUE']\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "real.py").write_text("VALUE = 1\n\n\ndef f():\n    return VALUE\n")
    (pkg / "shim.py").write_text('"""Moved."""\n\nfrom pkg.sub.real import VALUE, f  # noqa: F401\n\n'
                                 "__all__ = ['VALUE', 'f']\n")
    (pkg / "star.py").write_text("from pkg.sub.real import *  # noqa: F403\n\nX = 2\n")
    (pkg / "user.py").write_text("from pkg.shim import VALUE\nfrom pkg import VALUE as V\n"
                                 "from pkg.sub.real import f\n\nTOTAL = VALUE + V + f()\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test():\n    from pkg.shim import f\n")
    assert reexport_violations(tmp_path) == [
        "pkg/shim.py: only imports (a re-export shim); import the names from where they are defined and "
        "delete it",
        "pkg/star.py:1: from pkg.sub.real import *",
        "pkg/user.py:1: imports VALUE from pkg.shim, which only passes it on from pkg.sub.real; import it "
        "from there",
        "tests/test_x.py:2: imports f from pkg.shim, which only passes it on from pkg.sub.real; import it "
        "from there",
    ]


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
             Import("reid.model", "runtime.device", "reid/model.py", 3),
             Import("reid.model", "pona_model.generator", "reid/model.py", 4),
             Import("synthmarket.dataset", "reid.market_index", "synthmarket/dataset.py", 5),
             Import("poseformats.keypoints", "poseformats.annotations", "poseformats/keypoints.py", 6)]
    assert layering_violations(edges) == ["reid/model.py:4: reid.model imports pona_model.generator",
                                          "runtime/config.py:7: runtime.config imports pipelines.run",
                                          "synthmarket/dataset.py:5: synthmarket.dataset imports reid.market_index"]
