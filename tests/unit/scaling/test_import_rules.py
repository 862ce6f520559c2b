"""The training side's import rules, read from the source (module-level imports only, as Python runs them):
no two modules of scaling/ import each other, directly or round a longer loop (a package's __init__ counts as a
module); scaling/core imports no torch and nothing of scaling outside scaling.core; scaling never imports analysis."""
import ast
from pathlib import Path

from support import REPO


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    p = REPO / Path(*name.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def _module_level_imports(path: Path, inside_functions: bool = False) -> set[str]:
    """What importing ``path`` imports at once: its top-level statements (and those under top-level if/try), not
    imports under ``if TYPE_CHECKING``; with ``inside_functions``, those made on first use too."""
    tree = ast.parse(path.read_text(), str(path))
    pkg = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    out: set[str] = set()

    def visit(stmts):
        for node in stmts:
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
                for a in node.names:  # `from pkg import submodule` imports the submodule, not the package's names
                    out.add(f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base)
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for h in node.handlers:
                    visit(h.body)
            elif inside_functions and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                                        ast.With, ast.For, ast.While)):
                visit(node.body)
    visit(tree.body)
    return out


def _graph(inside_functions: bool = False) -> dict[str, set[str]]:
    return {_module_name(p): _module_level_imports(p, inside_functions) for p in sorted((REPO / "scaling").rglob("*.py"))}


def test_no_module_of_scaling_imports_itself_round_a_loop():
    graph = _graph()
    edges = {m: {t for t in ts if t in graph and t != m} for m, ts in graph.items()}
    cycles, state = [], {}

    def walk(m, stack):
        state[m] = "open"
        for t in sorted(edges[m]):
            if state.get(t) == "open":
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                walk(t, stack + [t])
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            walk(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_two_modules_of_scaling_import_each_other_even_on_first_use():
    # a deferred import hides a cycle from Python, not from a reader: placement <-> entry, plan <-> progress were two
    graph = _graph(inside_functions=True)
    pairs = sorted((a, b) for a, ts in graph.items() for b in ts if b in graph and a < b and a in graph[b])
    assert not pairs


def test_core_imports_no_torch_and_nothing_of_scaling_above_it():
    bad = {m: sorted(t for t in ts if t.split(".")[0] == "torch" or (t.startswith("scaling")
                                                                      and not t.startswith("scaling.core")
                                                                      and t != "scaling"))
           for m, ts in _graph().items() if m.startswith("scaling.core")}
    assert not {m: ts for m, ts in bad.items() if ts}


def test_the_training_side_never_imports_analysis():
    # any import, at module level or inside a function
    hits = [f"{p.relative_to(REPO)}:{n.lineno}" for p in (REPO / "scaling").rglob("*.py")
            for n in ast.walk(ast.parse(p.read_text()))
            if (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "analysis" for a in n.names))
            or (isinstance(n, ast.ImportFrom) and n.level == 0 and (n.module or "").split(".")[0] == "analysis")]
    assert not hits
