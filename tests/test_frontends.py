"""Front ends (seqlift.frontends): the registry, what is refused as a model, and the layers below them
importing no framework's layers."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import seqlift
from seqlift import SeqliftError, frontends

PACKAGE = Path(seqlift.__file__).parent
# Below the front ends: the graph, the rules, the engine, the methods and the backend adapter.
CORE = ["graph.py", "rules.py", "engine.py", "methods.py", "gradients.py", "mutagenesis.py", "targets.py",
        "backend.py", "scoring.py", "pipeline.py", "frontends/__init__.py"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ("." * node.level) + (node.module or "")
            names |= {f"{base}.{a.name}" if base else a.name for a in node.names} | {base}
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_modules_import_no_framework_layers(module):
    source = (PACKAGE / module).read_text()
    imported = _imports(PACKAGE / module)
    assert not [n for n in imported if n.startswith(("keras.layers", "keras.src", "keras.Model", "keras.models"))]
    assert not [n for n in imported if "frontends.keras" in n or "frontends.torch" in n or n.endswith((".keras", ".torch"))]
    used = _attributes(source)
    assert not [n for n in used if n.startswith(("keras.layers", "keras.Model", "keras.models", "torch.nn"))], used
    if module != "backend.py":  # the torch *Keras backend* (keras.ops on torch) is adapted there, inside functions
        assert not [n for n in imported if n.split(".")[0] == "torch"], imported
        assert not [n for n in used if n.split(".")[0] == "torch"], used


def _attributes(source: str) -> set[str]:
    """Every dotted name the code uses (``keras.layers.Dense``), docstrings and comments aside."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            parts, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                parts.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                names.add(".".join([value.id] + parts[::-1]))
    return names


@pytest.mark.slow  # 8-10 s: a fresh interpreter scoring a Keras model
def test_the_keras_path_never_imports_torch():
    # the front ends' own modules; the registry and the framework-free ModelSpec (frontends.spec) may load
    code = ("import sys, numpy as np, seqlift.engine, seqlift.graph, seqlift.rules, seqlift.scoring, seqlift.pipeline\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'\n"
            "             or m.startswith(('seqlift.frontends.keras', 'seqlift.frontends.torch'))))\n"
            "import keras, seqlift\n"
            "inp = keras.Input((12, 4))\n"
            "m = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Conv1D(3, 3)(inp))))\n"
            "seqlift.deeplift(m, np.zeros((1, 12, 4), 'float32'), np.zeros((1, 12, 4), 'float32'))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or 'frontends.torch' in m))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, after = out.strip().splitlines()[-2:]
    assert before == "[]"  # below the front ends nothing loads one
    assert after == "[]"  # a Keras model is lowered without torch


def test_registry_names_one_row_per_framework_and_matches_files():
    assert list(frontends.FRONT_ENDS) == ["keras", "torch"]
    assert frontends.for_file("model.h5").name == "keras"
    assert frontends.for_file("ARCH.json").name == "keras"
    assert frontends.for_file("model.pt").name == "torch"
    assert frontends.for_file("seqs.fa") is None


@pytest.mark.parametrize("given", [42, np.zeros((2, 4)), {"a": 1}, None])
def test_anything_that_is_not_a_model_is_a_seqlift_error_naming_it(given):
    rng = np.random.default_rng(0)
    x = np.eye(4, dtype="float32")[rng.integers(0, 4, (2, 10))]
    with pytest.raises(SeqliftError, match=f"got {type(given).__name__}, which is not a model"):
        seqlift.deeplift(given, x, np.zeros((1, 10, 4), "float32"))
    with pytest.raises(SeqliftError, match="which is not a model"):
        seqlift.Explainer(given)


def test_a_file_no_front_end_reads_is_refused(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\0")
    with pytest.raises(SeqliftError, match=r"not a model file seqlift reads \(.h5, .hdf5, .keras, .json, .pt, .pth"):
        seqlift.Explainer(str(path))
