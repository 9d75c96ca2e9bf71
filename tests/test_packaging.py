"""What the package declares, held to: one name per public object, the stub of ``featurekit``, the commands,
where the shipped studies are found. (.ci/run adds ruff, mypy, the installed wheel and the benchmarks.)"""

import ast
import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import featurekit
from featurekit.studies import study

PACKAGE = Path(__file__).resolve().parents[1] / "featurekit"
PACKAGES = sorted(".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py"))


def _stub_names() -> set:
    names = set()
    for node in ast.parse((PACKAGE / "__init__.pyi").read_text()).body:
        if isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    return names


def test_the_stub_lists_exactly_the_public_names_of_featurekit():
    assert _stub_names() == set(featurekit.__all__)
    assert set(featurekit.__all__) - {"__version__"} <= set(dir(featurekit))  # what IDEs complete


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_the_name_of_what_it_gives(package):
    # an alias (a second name of a function or class) shows the user another name in help() and tracebacks
    module = importlib.import_module(package)
    wrong = {}
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)  # every listed name resolves (lazy ones are imported here)
        if callable(obj) and not inspect.ismodule(obj) and getattr(obj, "__name__", name) != name:
            wrong[name] = obj.__name__
    assert wrong == {}


def test_importing_the_packages_loads_neither_torch_nor_sklearn():
    code = ("import sys, featurekit, featurekit.data, featurekit.finetune, featurekit.models; dir(featurekit); "
            "featurekit.Weights, featurekit.finetune.FinetuneConfig, featurekit.models.LayerTable; "
            "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_command_module_that_cannot_be_imported_is_an_error(monkeypatch):
    from featurekit.cli import build_parser

    monkeypatch.setitem(sys.modules, "featurekit.cli.report", None)  # as if report.py were missing
    with pytest.raises(ImportError, match="featurekit.cli.report"):
        build_parser()


def test_the_shipped_studies_are_found_in_a_checkout_and_in_an_installed_package(tmp_path, monkeypatch):
    assert study.studies_dir() == PACKAGE.parent / "pipelines"
    assert "two_stage_transfer" in study.shipped_studies()
    # an installed wheel: the build copied pipelines/ into featurekit/studies/pipelines, nothing beside the package
    installed = tmp_path / "site-packages" / "featurekit" / "studies"
    (installed / "pipelines").mkdir(parents=True)
    (installed / "pipelines" / "mine.toml").write_text("")
    monkeypatch.setattr(study, "__file__", str(installed / "study.py"))
    assert study.studies_dir() == installed / "pipelines"
    assert list(study.shipped_studies()) == ["mine"]
