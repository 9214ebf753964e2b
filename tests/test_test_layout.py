"""The layout holds: tests and benches share helpers only through tests/support/, and the
packages farm, supervisor and loadgen import one another without a cycle. Both read the source
with ast, without importing it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("farm", "supervisor", "loadgen")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(tree: ast.Module, module: str, is_package: bool,
                   top_level_only: bool) -> Iterator[tuple[str, int]]:
    """(dotted name, line) of everything a module imports: for `from a import b`, both `a` and
    `a.b` (b may be a module). Relative imports are resolved against the module's package.
    With top_level_only, only the imports that run when the module is loaded: none inside a
    function or under `if TYPE_CHECKING:`."""
    package = module if is_package else module.rpartition(".")[0]
    nodes = _top_level(tree.body) if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield base, node.lineno
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements that run when the module is imported: its body and the blocks of its
    if/try/with/for and class statements, but not function bodies, nor `if TYPE_CHECKING:`."""
    for node in body:
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or _type_checking(node):
            continue
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                yield from _top_level(block)
        for handler in getattr(node, "handlers", []):
            yield from _top_level(handler.body)


def _type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


# --- tests and benches share helpers only through tests/support/ ---------------------------

def non_shared_test_modules(root: Path) -> set[str]:
    """Every module under tests/ that is not a shared helper: test modules and conftest."""
    return {module_name(path, root) for path in (root / "tests").rglob("*.py")
            if path.relative_to(root / "tests").parts[0] != "support"
            and path.name != "__init__.py"}


def cross_imports(root: Path) -> list[str]:
    """'file:line imports module' for each test module, bench or shared helper that imports a
    test module (or conftest), by its dotted name or, as pytest's rootdir path would allow, by
    its bare name."""
    forbidden = non_shared_test_modules(root)
    bare = {name.rpartition(".")[2] for name in forbidden}
    found = []
    sources = [*(root / "tests").rglob("*.py"), *(root / "bench").glob("*.py")]
    for path in sorted(sources):
        module = module_name(path, root)
        tree = ast.parse(path.read_text(), str(path))
        for name, line in imported_names(tree, module, path.name == "__init__.py",
                                         top_level_only=False):
            if name != module and (name in forbidden or name in bare):
                found.append(f"{path.relative_to(root)}:{line} imports {name}")
    return sorted(set(found))


def test_no_test_module_or_bench_imports_another_test_module():
    found = cross_imports(ROOT)
    assert not found, ("move what these share into tests/support/ and import it from there "
                       "(fixtures go in tests/conftest.py):\n" + "\n".join(found))


def test_the_cross_import_check_sees_a_test_importing_a_test(tmp_path):
    (tmp_path / "tests" / "support").mkdir(parents=True)
    (tmp_path / "bench").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("")
    (tmp_path / "tests" / "conftest.py").write_text("")
    (tmp_path / "tests" / "support" / "ports.py").write_text("")
    (tmp_path / "tests" / "test_a.py").write_text("from tests.support.ports import x\n")
    (tmp_path / "tests" / "test_b.py").write_text(
        "from tests.test_a import helper\ndef f():\n    from . import conftest\n")
    (tmp_path / "bench" / "run.py").write_text("import test_a\n")
    assert cross_imports(tmp_path) == ["bench/run.py:1 imports test_a",
                                       "tests/test_b.py:1 imports tests.test_a",
                                       "tests/test_b.py:3 imports tests.conftest"]


# --- no import cycle among farm, supervisor and loadgen ------------------------------------

def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, dict[str, bool]]:
    """module -> {module of `packages` it imports: True when only inside a function}.

    Imports inside functions count too, since one there only to dodge a cycle hides the cycle
    rather than breaking it. Left out: a module's import of its own package (`farm.rules.mapping`
    reading a constant of `farm.rules`), which is how a package and its modules share things
    while the package loads them lazily."""
    paths = {module_name(path, root): path
             for package in packages for path in (root / package).rglob("*.py")}
    graph = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        on_import = {name for name, _ in imported_names(tree, module, is_package, True)}
        every = {name for name, _ in imported_names(tree, module, is_package, False)}
        graph[module] = {name: name not in on_import for name in every
                         if name in paths and name != module
                         and not module.startswith(f"{name}.")}
    return graph


def cycles(graph: dict[str, dict[str, bool]]) -> list[str]:
    """One cycle through each group of modules that import one another, found by depth-first
    search, as the path that leads back to its start ('(lazy)' marks an import that does not run
    when the module loads: inside a function, or for type checking only)."""
    found, done = [], set()
    for start in sorted(graph):
        if start in done:
            continue
        stack, on_path = [(start, iter(sorted(graph[start])))], [start]
        while stack:
            module, targets = stack[-1]
            target = next(targets, None)
            if target is None:
                stack.pop()
                on_path.pop()
                done.add(module)
            elif target in on_path:
                found.append(_path(graph, on_path[on_path.index(target):] + [target]))
            elif target not in done:
                stack.append((target, iter(sorted(graph[target]))))
                on_path.append(target)
    return found


def _path(graph: dict[str, dict[str, bool]], modules: list[str]) -> str:
    steps = [modules[0]]
    for importer, imported in zip(modules, modules[1:], strict=False):
        steps.append(f"(lazy) {imported}" if graph[importer][imported] else imported)
    return " -> ".join(steps)


# Imports inside functions that still close a cycle, each the way a module reaches back into one
# that imports it; none may be added, and each goes once its shared piece has a module of its own.
CYCLE_DODGES: set[tuple[str, str]] = set()  # none today


def test_farm_supervisor_and_loadgen_have_no_import_cycle():
    graph = import_graph(ROOT, PACKAGES)
    found = cycles(without(graph, CYCLE_DODGES))
    assert not found, ("import cycles; give what both sides need a module of its own below "
                       "them both:\n" + "\n".join(found))


def test_each_listed_cycle_dodge_still_closes_a_cycle():
    graph = import_graph(ROOT, PACKAGES)
    stale = [f"{importer} -> {imported}" for importer, imported in sorted(CYCLE_DODGES)
             if not cycles(without(graph, CYCLE_DODGES - {(importer, imported)}))]
    assert not stale, "no cycle left through these; take them off CYCLE_DODGES: " + ", ".join(stale)


def without(graph: dict[str, dict[str, bool]], edges: set[tuple[str, str]]
            ) -> dict[str, dict[str, bool]]:
    """The graph without those of `edges` that are imports inside functions."""
    return {module: {name: lazy for name, lazy in targets.items()
                     if not (lazy and (module, name) in edges)}
            for module, targets in graph.items()}


def test_the_cycle_check_reports_the_path_of_a_cycle(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("LIMIT = 1\n")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("try:\n    from ..c import thing\nexcept ImportError:\n"
                                          "    pass\n")
    (package / "c.py").write_text("from pkg import LIMIT\ndef late():\n    import pkg.a\n")
    (package / "d.py").write_text("def parts():\n    from pkg import d\n")
    assert cycles(import_graph(tmp_path, ("pkg",))) == [
        "pkg.a -> pkg.sub.b -> pkg.c -> (lazy) pkg.a"]
