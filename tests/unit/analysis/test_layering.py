"""The import rules of analysis/, read from the code (AST): report -> pipeline -> {uncertainty -> fits} -> laws ->
{data, numbers}; cli may import anything; studies may import anything and only cli (and tests) import studies;
of the training side only scaling.core, never torch; no module-level import cycles. Imports under
``if __name__ == "__main__"`` (a module run as a command) and ``if TYPE_CHECKING`` (types only) count as the
command's and the type checker's, not the module's."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[3]


def import_problems() -> list[str]:
    RANK = {"numbers": 0, "data": 0, "laws": 1, "fits": 2, "uncertainty": 2.5, "pipeline": 3, "report": 4}  # uncertainty builds on fits, never the reverse
    def layer(mod):
        parts = mod.split(".")
        if parts[0] != "analysis": return None
        if len(parts) == 1: return "analysis"
        return parts[1]
    def modname(path):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__": parts = parts[:-1]
        return ".".join(parts)
    def is_main_guard(node):
        return isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and getattr(node.test.left, "id", "") == "__name__"
    def is_type_checking(node):
        return isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
    edges = []  # (src, dst, module_level, kind)
    for path in sorted((ROOT / "analysis").rglob("*.py")):
        src = modname(path)
        tree = ast.parse(path.read_text())
        def visit(node, top, kind):
            for child in ast.iter_child_nodes(node):
                k = kind
                if is_main_guard(child): k = "main"
                elif is_type_checking(child): k = "types"
                t = top and isinstance(child, (ast.If, ast.Try, ast.Import, ast.ImportFrom, ast.With))
                if isinstance(child, ast.Import):
                    for a in child.names: edges.append((src, a.name, t, k))
                elif isinstance(child, ast.ImportFrom) and child.module:
                    base = child.module
                    if child.level:
                        base = ".".join(src.split(".")[: len(src.split(".")) - child.level + (1 if path.name == "__init__.py" else 0)] + [child.module])
                    edges.append((src, base, t, k))
                    for a in child.names:
                        sub = f"{base}.{a.name}"
                        if (ROOT / (sub.replace(".", "/") + ".py")).exists() or (ROOT / sub.replace(".", "/")).is_dir():
                            edges.append((src, sub, t, k))
                visit(child, t if isinstance(child, (ast.If, ast.Try, ast.With)) else False, k)
        visit(tree, True, "code")
    problems = []
    for src, dst, top, kind in edges:
        if dst.split(".")[0] == "torch": problems.append(f"torch: {src} imports {dst}")
        if dst.startswith("scaling") and not (dst == "scaling" or dst.startswith("scaling.core")):
            problems.append(f"training side: {src} imports {dst}")
        ls, ld = layer(src), layer(dst)
        if ls is None or ld is None or ls == ld or kind in ("main",): continue
        if ls in ("cli", "analysis", "__main__") : continue
        if ld == "studies" and ls not in ("cli", "studies"):
            problems.append(f"studies imported by {src} -> {dst} ({'module level' if top else 'in a function'})")
            continue
        if ls == "studies": continue
        if ld == "cli": problems.append(f"cli imported by {src} -> {dst}"); continue
        if ls in RANK and ld in RANK and RANK[ld] > RANK[ls]:
            problems.append(f"upward: {src} ({ls}) -> {dst} ({ld}) [{'module level' if top else 'in a function'}{', types only' if kind == 'types' else ''}]")
        if ls in RANK and ld in RANK and RANK[ld] == RANK[ls] and ls != ld:
            problems.append(f"sideways: {src} ({ls}) -> {dst} ({ld}) [{'module level' if top else 'in a function'}]")
    # module-level cycles among analysis modules
    graph = {}
    for src, dst, top, kind in edges:
        if top and kind == "code" and dst.startswith("analysis") and dst != src:
            graph.setdefault(src, set()).add(dst)
    def cycles():
        seen, out = set(), []
        def dfs(n, stack):
            for m in graph.get(n, ()):
                if m in stack:
                    cyc = stack[stack.index(m):] + [m]
                    key = frozenset(cyc)
                    if key not in seen: seen.add(key); out.append(cyc)
                elif len(stack) < 12:
                    dfs(m, stack + [m])
        for n in graph: dfs(n, [n])
        return out
    for c in cycles():

        problems.append("module-level cycle: " + " -> ".join(c))
    return sorted(set(problems))


def test_analysis_keeps_its_layers_and_imports_only_scaling_core():
    assert import_problems() == []
