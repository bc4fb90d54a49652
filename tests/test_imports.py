"""The architecture's import rules, read off the source: ``circuits`` knows nothing of training, ``models``
imports Brian2 nowhere at module level, and no two modules of the packages import each other (no cycle),
counting imports inside functions too."""
import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("circuits", "models")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _resolve(current: str, is_pkg: bool, node: ast.ImportFrom) -> list[str]:
    """The absolute module names an ``ImportFrom`` brings in (a submodule where a name is one)."""
    if node.level:
        base = current.split(".")
        base = base[:len(base) - node.level + (1 if is_pkg else 0)]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module
    names = []
    for alias in node.names:
        sub = f"{module}.{alias.name}"
        names.append(sub if _exists(sub) else module)
    return names


def _exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def import_graph():
    """(graph of every import between project modules, {module: set of external modules imported at module
    level}); edges carry ``top`` (True where the import runs when the module is imported)."""
    G = nx.DiGraph()
    external_top: dict[str, set[str]] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).glob("*.py")):
            name = _module_name(path)
            is_pkg = path.name == "__init__.py"
            G.add_node(name)
            external_top[name] = set()
            tree = ast.parse(path.read_text(), filename=str(path))
            top_level = set()
            for stmt in tree.body:  # module-level statements, including those inside top-level try/if
                top_level.update(id(n) for n in ast.walk(stmt)
                                 if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    targets = _resolve(name, is_pkg, node)
                else:
                    continue
                top = id(node) in top_level
                for t in targets:
                    if t.split(".")[0] in PACKAGES:
                        if t != name:
                            G.add_edge(name, t, top=G.get_edge_data(name, t, {}).get("top", False) or top)
                    elif top:
                        external_top[name].add(t.split(".")[0])
    return G, external_top


def test_the_graph_sees_the_known_imports():
    """The parser finds what is there (so that the rules below are not vacuous)."""
    G, ext = import_graph()
    assert G.has_edge("models.network", "models.layers") and G.edges["models.network", "models.layers"]["top"]
    assert G.has_edge("models.train", "circuits.modules")  # lazy: inside make_circuits
    assert not G.edges["models.train", "circuits.modules"]["top"]
    assert G.has_edge("circuits.modules", "circuits.output_error")
    assert "torch" in ext["models.network"] and "numpy" in ext["circuits.transfer"]


def test_circuits_import_nothing_from_models():
    G, _ = import_graph()
    bad = [(a, b) for a, b in G.edges if a.startswith("circuits") and b.startswith("models")]
    assert not bad, f"circuits must know nothing of training; these imports break it: {bad}"


def test_models_import_brian2_nowhere_at_module_level():
    """Not directly, and not through a module a ``models`` module imports at module level."""
    G, ext = import_graph()
    top = nx.DiGraph([(a, b) for a, b, d in G.edges(data=True) if d["top"]])
    top.add_nodes_from(G)
    for m in (n for n in G if n.startswith("models")):
        reached = {m} | nx.descendants(top, m)
        brian = sorted(r for r in reached if "brian2" in ext[r])
        assert not brian, f"importing {m} imports Brian2 through {brian}"


def test_no_import_cycle_between_modules():
    G, _ = import_graph()
    cycles = list(nx.simple_cycles(G))
    assert not cycles, "import cycles (counting imports inside functions): " + "; ".join(
        " -> ".join(c + [c[0]]) for c in cycles)


def test_importing_every_models_module_loads_no_brian2():
    mods = [_module_name(p) for p in sorted((ROOT / "models").glob("*.py"))]
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import " + ", ".join(mods) +
            "; print('brian2' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"
