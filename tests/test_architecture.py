"""The code's shape: imports at the top of each module, no star imports, and layers that hold.

import-linter (pyproject.toml, run by `make test`) checks the layers and contracts; these tests
check what it cannot see, and that its layers contract really fails on an upward import.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("connection_practice", "practice", "clients", "assessments")
PROJECT = set(APPS)
# Django's own idiom: an AppConfig.ready() imports the modules whose import registers something
# (signal receivers, outbox handlers), once the app registry is ready.
ALLOWED_IN_FUNCTIONS = {("practice/apps.py", "ready"), ("assessments/apps.py", "ready")}


def modules():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def imported_names(node):
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # a relative import is always the project's
        return ["."]
    return [node.module or ""]


def function_imports(path):
    """(function name, imported module) for every import of a project module inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in imported_names(node):
                    if name == "." or name.split(".")[0] in PROJECT:
                        found.append((function.name, name))
    return found


def test_no_project_module_is_imported_inside_a_function():
    found = []
    for path in modules():
        relative = path.relative_to(ROOT).as_posix()
        for function, name in function_imports(path):
            if (relative, function) not in ALLOWED_IN_FUNCTIONS:
                found.append(f"{relative}: {function}() imports {name}")
    assert found == [], "import these at the top of the module (a cycle means a layer is wrong):\n" + "\n".join(found)


def test_the_scan_finds_an_import_inside_a_function(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from assessments import models\n    import json\n")
    assert function_imports(sample) == [("f", "assessments")]


def test_no_module_uses_a_star_import():
    stars = [
        path.relative_to(ROOT).as_posix()
        for path in modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names)
    ]
    assert stars == []


@pytest.mark.skipif(
    shutil.which("lint-imports", path=str(Path(sys.executable).parent)) is None, reason="no lint-imports"
)
def test_the_layers_contract_fails_when_the_base_imports_a_feature_app(tmp_path):
    for app in APPS:
        shutil.copytree(ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    lint = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"]
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    kept = subprocess.run(lint, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert kept.returncode == 0, kept.stdout[-2000:]
    models = tmp_path / "practice" / "models.py"
    models.write_text(models.read_text() + "\nfrom assessments import models as _upward  # noqa\n")
    broken = subprocess.run(lint, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert broken.returncode != 0
    assert "practice.models -> assessments.models" in broken.stdout
