"""The package's layers: every import among workbench modules (inside functions and under TYPE_CHECKING too)
runs from a layer to itself or an earlier one, and no group of modules imports itself round."""
from __future__ import annotations

import ast
from pathlib import Path

import workbench

ROOT = Path(workbench.__file__).parent
LAYERS = ["core", "data", "ingest", "synthetic", "model", "evaluation", "training", "analysis", "reporting|study",
          "bench", "cli"]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names.split("|")}
# a function may import lazily only what is optional or must wait (the CLI's dispatch uses importlib)
LAZY_OK = ("workbench.bench.",)  # benchmark workers import torch only after setting its thread environment


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported workbench module, line, inside a function) of every import statement of a file."""
    tree = ast.parse(path.read_text())
    inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if n is not f}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("workbench"):
            names = [f"{node.module}.{a.name}" for a in node.names]
            out += [(n, node.lineno, id(node) in inner) for n in names]
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno, id(node) in inner) for a in node.names if a.name.startswith("workbench")]
    return out


def graph() -> dict[str, set[str]]:
    """Module -> the workbench modules it imports (a name imported from a package counts as its module)."""
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in files}
    for m, path in files.items():
        for target, _, _ in imports(path):
            while target not in files and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in files and target != m and target != "workbench":
                edges[m].add(target)
    return edges


def layer(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


def test_imports_run_from_a_layer_to_itself_or_an_earlier_one():
    up = [f"{m} -> {t}" for m, ts in graph().items() for t in ts
          if layer(m) is not None and layer(t) is not None and layer(t) > layer(m)]
    assert not up, "imports that run up the layers:\n" + "\n".join(sorted(up))


def test_no_import_cycle_among_workbench_modules():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_workbench_imports_inside_functions_are_only_the_allowed_lazy_ones():
    lazy = [f"{module_name(p)}:{line} imports {t}" for p in ROOT.rglob("*.py") for t, line, inner in imports(p)
            if inner and not module_name(p).startswith(LAZY_OK)]
    assert not lazy, "\n".join(lazy)


def test_every_subpackage_is_a_regular_package_and_no_module_is_over_600_lines():
    for d in ROOT.iterdir():
        if d.is_dir() and d.name != "__pycache__":
            assert (d / "__init__.py").exists(), d
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 600}
    assert not long, long
