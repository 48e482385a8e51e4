"""The layers of seqlift: data flows one way (STYLE.md), so no module imports one above it and no import
circle exists. Every import counts, those inside functions included: a function-level import is an
arrow like any other, only deferred."""

import ast
from pathlib import Path

import seqlift

PACKAGE = Path(seqlift.__file__).parent

# Lowest first; a module imports only modules of lower layers.
# A subpackage's modules go by their own names: ``frontends`` is the registry (its __init__), which the
# engine reads; the front ends' lowerings sit above the graph.
LAYERS = [
    ["errors"],
    ["choices"],  # the names of rules and targets and DeepLIFT's Method record, loaded without Keras
    ["sequences"],
    ["backend"],  # chooses the Keras backend: whatever runs a model imports it first
    ["rules"],
    ["graph"],
    ["targets"],
    ["frontends"],  # the registry of front ends (frontends/__init__.py): it imports them on first use
    ["frontends.keras.compat", "frontends.keras.lowering", "frontends.torch.lowering", "frontends.torch.models"],
    ["frontends.keras.models", "frontends.keras.custom_layers", "frontends.torch"],
    ["frontends.keras"],
    ["engine"],
    ["gradients", "mutagenesis"],
    ["methods"],  # the registry of methods: above the engine, which imports nothing of it
    ["references"],
    ["scoring"],  # scores out of the engine: what every command above writes or reads
    ["outputs", "variants", "cluster", "simulation.data"],  # owning files; reading variants; Ray workers
    ["rowfile", "scale", "simulation.metrics"],  # the one HDF5 writer and reader of rows; how a run scales
    ["scorefile", "variantfile", "frontends.spec", "simulation.model"],  # the two kinds of file; the model option
    ["files", "plots", "tracks", "motifs", "simulation.make"],  # which kind a file is, merge; what reads the files
    ["destinations", "hits", "simulation", "simulation.evaluation", "view.data"],  # score's extra outputs
    ["pipeline", "view.page"],  # the one run loop
    ["effects", "view.server"],  # variants through the pipeline
    ["view"],
]
# No module imports one of its own row. Every module is placed but the package itself (seqlift/__init__.py, the
# public API, which imports from any layer on first use).


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported(name: str, path: Path) -> set[str]:
    """The seqlift modules ``name`` imports (names relative to seqlift, '' for seqlift itself), anywhere in it."""
    package = (name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]) if name else []
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name[len("seqlift."):] for a in node.names if a.name.startswith("seqlift.")}
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[:len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
        elif node.module and node.module.split(".")[0] == "seqlift":
            base = node.module.split(".")[1:]
        else:
            continue
        for alias in node.names:  # ``from . import engine`` imports a module; ``from .engine import Explainer`` its name
            sub = ".".join(base + [alias.name])
            found.add(sub if sub in MODULES else ".".join(base))
    found.discard(name)
    return {m for m in found if m in MODULES and m != ""}


GRAPH = {name: _imported(name, path) for name, path in MODULES.items()}


def _circles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in GRAPH[v]:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_is_read_from_every_module():
    assert {"engine", "methods", "graph", "frontends.torch.lowering", "frontends.keras", "view.server"} <= set(GRAPH)
    assert "graph" in GRAPH["engine"] and "engine" in GRAPH["methods"]  # a function-level import counts
    assert "frontends" in GRAPH["frontends.torch.lowering"]  # ``from .. import first_line``
    assert "rules" in GRAPH["frontends.keras.custom_layers"] or "frontends.keras.lowering" in \
        GRAPH["frontends.keras.custom_layers"]  # ``from . import lowering as graph_mod``


def test_no_import_circle():
    circles = _circles()
    assert not circles, f"import circles among seqlift modules: {circles}"


def test_every_module_has_a_layer():
    placed = {module for row in LAYERS for module in row}
    assert set(MODULES) - {""} == placed, f"not placed in LAYERS: {sorted(set(MODULES) - {''} - placed)}"


def test_each_layer_imports_only_layers_below_it():
    layer_of = {module: i for i, row in enumerate(LAYERS) for module in row}
    assert set(layer_of) <= set(MODULES), set(layer_of) - set(MODULES)
    upward = [f"{module} imports {other}" for module, i in layer_of.items() for other in sorted(GRAPH[module])
              if layer_of.get(other, len(LAYERS)) >= i]
    assert not upward, upward


def test_the_engine_reads_no_method_registry():
    # the registry lives above the engine: methods imports engine, never the reverse (issue 26)
    assert "methods" not in GRAPH["engine"] | GRAPH["graph"] | GRAPH["targets"] | GRAPH["rules"]
