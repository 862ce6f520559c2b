"""The import rules of the two sides (issue 14; DESIGN's "They meet on disk ... a test enforces all three"), read from
the source with ``ast``, nothing imported:

(a) scaling/core/** imports no torch and nothing of scaling outside scaling.core;
(b) analysis/** imports nothing of scaling except scaling.core, and never torch;
(c) scaling/** never imports analysis;
(d) no import cycles between modules;
(e) inside analysis, layers: {cli, studies} > report > pipeline > {fits, uncertainty, curves} > laws >
    {data, numbers}; no module imports a layer above its own.

Every ``import`` and ``from ... import`` counts, at module level or lazily inside a function, and so does
``importlib.import_module("<literal>")``; only imports under ``if TYPE_CHECKING:`` (never executed) are left out.
A package's ``__init__`` is a module of its own; ``from pkg import name`` is an import of the submodule ``pkg.name``
when that file exists, else of ``pkg``. Names built at run time (PEP 562 ``__getattr__`` maps) cannot be read
statically; the subprocess test below covers what they import in fact.

Then, by importing for real: every analysis and scaling.core module together leaves torch out of sys.modules;
every old import path in scaling/core/legacy.py's MOVED map is the very same module object as its new path; and the
old ``python -m`` names still run.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from support import REPO, run_cli

PACKAGES = ("scaling", "analysis")

# analysis's layers, lowest first; a module may import its own layer and those below (the package itself, its
# __main__, cli and studies are on top)
ANALYSIS_LAYERS = {
    "analysis.data": 0,
    "analysis.numbers": 0,
    "analysis.sections": 0,
    "analysis.laws": 1,
    "analysis.fits": 2,
    "analysis.uncertainty": 2,
    "analysis.curves": 2,
    "analysis.pipeline": 3,
    "analysis.report": 4,
    "analysis.cli": 5,
    "analysis.studies": 5,
    "analysis.__main__": 5,
    "analysis": 5,
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module, resolved to a module of this repository where it is one
    line: int

    def __str__(self) -> str:
        return f"{module_path(self.source)}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_path(name: str) -> str:
    return str(MODULE_FILES[name].relative_to(REPO))


MODULE_FILES = {module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULE_FILES[name].name == "__init__.py"


def _absolute(module: str, level: int, source: str) -> str:
    """``from .x import y`` in ``source`` -> the absolute dotted name of ``.x``."""
    if level == 0:
        return module
    base = source.split(".") if _is_package(source) else source.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _resolve(name: str) -> str:
    """The longest prefix of ``name`` that is a module of this repository (``scaling.core.records.X`` ->
    ``scaling.core.records``); ``name`` itself when none is (a third-party module)."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        candidate = ".".join(parts[:k])
        if candidate in MODULE_FILES:
            return candidate
    return name


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, (sub.end_lineno or sub.lineno) + 1))
    return lines


def imports_of(source: str) -> list[Import]:
    tree = ast.parse(MODULE_FILES[source].read_text(), filename=str(MODULE_FILES[source]))
    skip = _type_checking_lines(tree)
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [Import(source, _resolve(a.name), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module or "", node.level, source)
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.append(Import(source, sub if sub in MODULE_FILES else _resolve(base), node.lineno))
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("importlib.import_module", "import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(Import(source, _resolve(node.args[0].value), node.lineno))
    return found


IMPORTS = {name: imports_of(name) for name in MODULE_FILES}


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(sources, bad) -> list[str]:
    return sorted({str(i) for s in sources for i in IMPORTS[s] if bad(i.target)})


def _report(what: str, found: list[str]) -> str:
    return f"{len(found)} {what}:\n  " + "\n  ".join(found)


def test_the_module_list_covers_both_sides():
    assert "scaling.core.records" in MODULE_FILES and "analysis.pipeline" in MODULE_FILES
    assert "scaling" in MODULE_FILES and _is_package("scaling.core") and not _is_package("scaling.core.flops")


def test_relative_and_from_imports_resolve_to_the_submodule_file():
    assert _absolute("forms", 1, "analysis.fits.approach3") == "analysis.fits.forms"
    assert _absolute("", 1, "analysis.laws") == "analysis.laws"  # `from . import x` inside a package's __init__
    assert _absolute("laws.forms", 2, "analysis.fits.kaplan") == "analysis.laws.forms"
    assert _resolve("scaling.core.records.RunSummary") == "scaling.core.records" and _resolve("torch.nn") == "torch.nn"


def test_scaling_core_imports_no_torch_and_nothing_of_scaling_outside_core():
    core = [m for m in MODULE_FILES if _in(m, "scaling.core")]
    found = _violations(core, lambda t: _in(t, "torch") or (_in(t, "scaling") and not _in(t, "scaling.core")))
    assert not found, _report("imports from scaling.core of torch or of scaling outside scaling.core", found)


def test_analysis_imports_only_scaling_core_of_the_training_side_and_never_torch():
    analysis = [m for m in MODULE_FILES if _in(m, "analysis")]
    found = _violations(analysis, lambda t: _in(t, "torch") or (_in(t, "scaling") and not _in(t, "scaling.core")))
    assert not found, _report("imports from analysis of torch or of scaling outside scaling.core", found)


def test_the_training_side_never_imports_analysis():
    scaling = [m for m in MODULE_FILES if _in(m, "scaling")]
    found = _violations(scaling, lambda t: _in(t, "analysis"))
    assert not found, _report("imports of analysis from scaling", found)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle path (first module repeated at the end) per strongly connected component of more than one module
    or with a self-import (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1 or node in graph[node]:
                    components.append(set(comp))
    return [_cycle_in(comp, graph) for comp in components]


def _cycle_in(comp: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first within the component)."""
    start = min(comp)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & comp):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if child not in parent:
                    parent[child] = node
                    nxt.append(child)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {sorted(comp)}")


def test_cycle_finder_reports_the_cycle_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert sorted(_cycles(graph)) == [["a", "b", "c", "a"], ["e", "e"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules():
    graph = {m: {i.target for i in IMPORTS[m] if i.target in MODULE_FILES and i.target != m} for m in MODULE_FILES}
    cycles = _cycles(graph)
    lines = []
    for cycle in cycles:
        where = [next(str(i) for i in IMPORTS[a] if i.target == b) for a, b in zip(cycle, cycle[1:])]
        lines.append(" -> ".join(cycle) + "\n      " + "\n      ".join(where))
    assert not cycles, _report("import cycles", lines)


def layer_of(name: str) -> int | None:
    """analysis's layer of a module (its longest prefix in ANALYSIS_LAYERS); None outside analysis."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        layer = ANALYSIS_LAYERS.get(".".join(parts[:k]))
        if layer is not None:
            return layer
    return None


def test_every_analysis_module_has_a_layer():
    missing = [m for m in MODULE_FILES if _in(m, "analysis") and layer_of(m) is None]
    assert not missing, f"modules of analysis in no layer of ANALYSIS_LAYERS: {missing}"
    assert layer_of("analysis.fits.approach3") == 2 and layer_of("analysis.report.plots") == 4


def test_inside_analysis_no_module_imports_a_layer_above_its_own():
    names = {
        layer: ", ".join(k.split(".", 1)[-1] for k, v in ANALYSIS_LAYERS.items() if v == layer)
        for layer in set(ANALYSIS_LAYERS.values())
    }
    found = []
    for m in (m for m in MODULE_FILES if _in(m, "analysis")):
        for i in IMPORTS[m]:
            below, above = layer_of(m), layer_of(i.target)
            if below is not None and above is not None and above > below:
                found.append(f"{i} (layer {below}: {names[below]} imports layer {above}: {names[above]})")
    assert not found, _report("imports up the analysis layers", sorted(set(found)))


# ---------------------------------------------------------------------------------------------------------------- #
# By importing for real
# ---------------------------------------------------------------------------------------------------------------- #


def test_importing_every_analysis_and_scaling_core_module_leaves_torch_out():
    names = [m for m in MODULE_FILES if (_in(m, "analysis") or _in(m, "scaling.core")) and not m.endswith("__main__")]
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))))\n"
    )
    r = run_cli(["-c", code], timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.splitlines()[-1]) == [], f"importing {len(names)} modules loaded torch"


def test_every_old_import_path_is_the_same_module_object_as_its_new_path():
    code = (
        "import importlib, json, scaling\n"
        "from scaling.core.legacy import MOVED\n"
        "bad = {old: new for old, new in MOVED.items()\n"
        "       if importlib.import_module(old) is not importlib.import_module(new)}\n"
        "print(json.dumps([len(MOVED), bad]))\n"
    )
    r = run_cli(["-c", code], timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    n, bad = json.loads(r.stdout.splitlines()[-1])
    assert n >= 40 and bad == {}


@pytest.mark.parametrize("old, usage", [("scaling.plan", "--minutes"), ("analysis.lr", "sweep_dir")])
def test_old_python_m_names_still_run(old, usage):
    r = run_cli(["-m", old, "--help"], timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("usage:") and usage in r.stdout
