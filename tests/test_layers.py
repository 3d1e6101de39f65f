"""The package's layers point one way and its modules import without cycles; one model imports no other."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ownlens.ml

ROOT = Path(ownlens.ml.__file__).parent
# cli/api -> pipelines -> monitoring -> models -> features -> data, registry, simulation -> schema -> warehouse -> errors, settings
LAYER = {"__init__": 0, "errors": 0, "settings": 0, "warehouse": 1, "schema": 2, "data": 3, "registry": 3, "simulation": 3,
         "features": 4, "models": 5, "monitoring": 6, "pipelines": 7, "serving": 8, "cli": 9}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ["ownlens", "ml", *path.relative_to(ROOT).with_suffix("").parts]
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, modules: dict) -> set[str]:
    """The ownlens modules ``path`` imports, anywhere in it but under ``if TYPE_CHECKING:`` (annotations only)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ownlens.ml"):
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ownlens.ml")}
    return {m for m in found if m in modules}


def _layer(module: str) -> tuple[int, str]:
    top = module.split(".")[2] if module.count(".") >= 2 else "__init__"
    return LAYER[top], top


def test_layers_point_one_way_and_no_module_imports_itself_back():
    modules = _modules()
    graph = {m: _imports(p, modules) - {m} for m, p in modules.items()}
    upward = []
    for module, deps in graph.items():
        (layer, top) = _layer(module)
        for dep in deps:
            (dep_layer, dep_top) = _layer(dep)
            if dep_top != top and dep_layer >= layer:
                upward.append(f"{module} -> {dep}")
    assert upward == []
    # cycles: every strongly connected component is a single module
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in graph:
        if module not in index:
            visit(module)
    assert cycles == []


def test_importing_one_model_imports_no_other():
    code = ("import sys; import ownlens.ml.models.customer.churn; "
            "print(sorted(m for m in sys.modules if m.startswith(('ownlens.ml.models.content', 'ownlens.ml.models.advertising', "
            "'ownlens.ml.models.customer.segmentation', 'ownlens.ml.serving', 'ownlens.ml.cli', 'ownlens.ml.pipelines'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
