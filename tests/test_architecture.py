"""The package's shape: layers import downward only, and commands with nothing to compute stay light.

Layers (top to bottom)::

    cli -> orchestration -> finetune / evaluation / extraction / report
        -> data / models / handcrafted / cache / imageio / checkpoint -> io / errors / specs / devices / executors

Every import counts, at module level or inside a function.
"""

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "featurekit"

LEVEL = {
    # executors: where independent tasks run (this process or a Dask cluster) -- a utility
    # that extraction, evaluation and fine-tuning call; it imports only errors (dask lazily)
    "errors": 0, "io": 0, "specs": 0, "devices": 0, "executors": 0,
    "data": 1, "models": 1, "handcrafted": 1, "cache": 1, "imageio": 1, "checkpoint": 1,
    # options: each command's options, declared once (the CLI, studies and the API read them)
    "options": 1,
    "extraction": 2, "evaluation": 2, "finetune": 2,
    # report: reads run folders that evaluation and fine-tuning write (their figures too)
    "report": 2,
    "orchestration": 3, "distributed": 3, "studies": 3,
    "cli": 4,
}
#: within level 2, who may not import whom
FORBIDDEN = {
    "evaluation": {"extraction", "models", "handcrafted", "finetune", "checkpoint", "report"},
    "report": {"extraction", "models", "handcrafted", "finetune", "checkpoint"},
    "finetune": {"extraction", "cli"},
    "extraction": {"evaluation", "finetune", "report"},
}
#: statistics code knows nothing of torch
NO_TORCH = {"evaluation", "report", "specs", "io", "errors", "cache", "data"}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[1:]
        if not parts or parts == ("__init__",):
            continue
        yield path, parts[0]


def _imports(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno


def _violations():
    out = []
    for path, top in _modules():
        if top not in LEVEL:
            out.append(f"{path}: package part {top!r} has no layer in this test")
            continue
        for name, line in _imports(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
            root = name.split(".")[0]
            if root in ("torch", "torchvision", "timm") and top in NO_TORCH:
                out.append(where + " (no torch here)")
            if root != "featurekit" or name == "featurekit":
                continue
            target = name.split(".")[1]
            if target == "__version__":
                continue
            if LEVEL.get(target, 99) > LEVEL[top]:
                out.append(where + f" (layer {top} is below {target})")
            if target in FORBIDDEN.get(top, ()):
                out.append(where + f" ({top} must not import {target})")
    return out


def test_layers_import_downward_only():
    assert _violations() == []


def test_the_rule_checker_catches_an_upward_import(tmp_path, monkeypatch):
    bad = PACKAGE / "evaluation" / "_upward_probe.py"
    bad.write_text("def f():\n    from featurekit.extraction.pipeline import extract\n    import torch\n")
    try:
        found = _violations()
    finally:
        bad.unlink()
    assert any("_upward_probe" in v and "must not import extraction" in v for v in found)
    assert any("_upward_probe" in v and "no torch" in v for v in found)


def _import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, from every import statement (any depth).

    ``package`` is a folder of a ``featurekit`` subpackage; ``from featurekit.models import registry``
    counts as importing ``featurekit.models.registry``, ``from featurekit.models import Layer`` as
    importing the package's ``__init__`` (``featurekit.models``).
    """
    def dotted(path: Path) -> str:
        parts = path.relative_to(package.parents[1]).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {dotted(path): path for path in sorted(package.rglob("*.py"))}
    graph = {}
    for name, path in modules.items():
        targets = {n for n, _ in _imports(path)}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (``[a, b, ..., a]``), or ``[]`` when it is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_no_import_cycle_among_the_model_modules():
    graph = _import_graph(PACKAGE / "models")
    assert "featurekit.models.registry" in graph["featurekit.models.weights"]  # the graph sees the imports
    assert _cycle(graph) == []


def test_the_cycle_checker_finds_a_cycle_made_by_imports_inside_functions(tmp_path):
    models = tmp_path / "featurekit" / "models"
    models.mkdir(parents=True)
    (models / "__init__.py").write_text("")
    (models / "a.py").write_text("def f():\n    from featurekit.models import b\n")
    (models / "b.py").write_text("import os\n\n\ndef g():\n    from featurekit.models.c import h\n")
    (models / "c.py").write_text("from featurekit.models.a import f\n\n\ndef h():\n    pass\n")
    assert _cycle(_import_graph(models)) == ["featurekit.models.a", "featurekit.models.b", "featurekit.models.c",
                                             "featurekit.models.a"]
    (models / "c.py").write_text("def h():\n    pass\n")
    assert _cycle(_import_graph(models)) == []


def _run_without_torch(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter and report whether torch / scikit-learn got imported."""
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import sys
        print("IMPORTED", "torch" in sys.modules, "sklearn" in sys.modules)
    """)
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    return subprocess.run([sys.executable, "-c", probe], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def cached_folder(tmp_path_factory):
    """A small image folder whose CNN and handcrafted features are in the cache already."""
    from featurekit.cli import main
    from featurekit.data import write_phantom

    root = tmp_path_factory.mktemp("light")
    data = write_phantom(root / "data", n_per_class=6, size=64)
    args = ["extract", str(data), "--positive", "malignant", "--layers", "mobilenet_v2:features.14,features.18",
            "--weights", "none", "--size", "64", "--handcrafted", "gabor,glcm:bin_count=16",
            "--cache", str(root / "c.h5"), "--quiet"]
    assert main(args) == 0
    return root, data, args


def test_a_fully_cached_extract_imports_neither_torch_nor_sklearn(cached_folder):
    root, _, args = cached_folder
    proc = _run_without_torch(f"""
        from featurekit.cli import main
        assert main({args!r}[:-1]) == 0
    """, root)
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED False False" in proc.stdout, proc.stdout
    assert "reused" in proc.stdout and "computed" not in proc.stdout


def test_computing_handcrafted_features_never_imports_torch(cached_folder, tmp_path):
    _, data, _ = cached_folder
    proc = _run_without_torch(f"""
        from featurekit.cli import main
        assert main(["extract", {str(data)!r}, "--positive", "malignant", "--handcrafted", "gabor,glcm,haar",
                     "--cache", {str(tmp_path / "hand.h5")!r}, "--quiet"]) == 0
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED False" in proc.stdout, proc.stdout  # the one decoding pass needs torch only for CNNs
    from featurekit.cache import FeatureCache

    assert sorted(FeatureCache(tmp_path / "hand.h5").keys()) == ["gabor", "glcm", "haar"]


def test_a_changed_request_is_not_answered_from_the_memo(cached_folder, tmp_path):
    root, data, args = cached_folder
    # its own copy of the cache (and memo): the module's cache stays as the other tests expect it
    import shutil
    for f in root.glob("c.h5*"):
        shutil.copy2(f, tmp_path / f.name.replace("c.h5", "own.h5"))
    other = [a if a != "none" else "none:seed=1" for a in args]
    other[other.index(str(root / "c.h5"))] = str(tmp_path / "own.h5")
    proc = _run_without_torch(f"""
        from featurekit.cli import main
        assert main({other!r}[:-1]) == 0
    """, root)
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED True" in proc.stdout  # a new seed must be resolved (and computed)
    assert "computed" in proc.stdout


def test_cache_ls_layers_of_the_cache_and_report_stay_light(cached_folder):
    root, _, _ = cached_folder
    proc = _run_without_torch(f"""
        from featurekit.cli import main
        assert main(["cache", "ls", {str(root)!r}]) == 0
        assert main(["cache", "info", {str(root / "c.h5")!r}]) == 0
        import featurekit as fk
        fk.Weights.parse("none"); fk.LayerSpec.parse("vgg16:8-17")
    """, root)
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED False False" in proc.stdout, proc.stdout


def test_evaluating_cached_features_and_reporting_never_import_torch(cached_folder, tmp_path):
    root, data, _ = cached_folder
    proc = _run_without_torch(f"""
        import featurekit as fk
        ds = fk.load_dataset({str(data)!r}, positive="malignant")
        # from the dataset: the extraction is answered from the cache
        ev = fk.evaluate_features(ds, ["mobilenet_v2:features.14,features.18", "gabor"], ["logreg"], cv="3",
                                  cache={str(root / "c.h5")!r}, weights="none", size=64, n_boot=20)
        assert list(ev.results["feature_set"]) == ["mobilenet_v2/features.14", "mobilenet_v2/features.18", "gabor",
                                                   "selected"]
        # from the cache file alone: layer specs resolve against the cached layers
        ev2 = fk.evaluate_features({str(root / "c.h5")!r}, ["mobilenet_v2:all"], ["logreg"], cv="3", n_boot=20)
        assert list(ev2.results["feature_set"]) == ["mobilenet_v2/features.14", "mobilenet_v2/features.18",
                                                    "selected"]
        ev.save({str(tmp_path / "run")!r})
        fk.build_report({str(tmp_path / "run")!r})
    """, root)
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED False True" in proc.stdout, proc.stdout
