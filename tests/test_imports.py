"""The package's import graph: no cycles, and no spacy_skd import hidden inside a function."""
import ast
import importlib
import subprocess
import sys
from typing import Dict, Set

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "spacy_skd"
MODULES = sorted(".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
                 for p in PACKAGE.rglob("*.py"))
# Imports inside functions that load an optional extra only when it is used (none dodges a cycle):
# the Ray engine (extra `ray`), the seq2seq model (extra `seq2seq`: transformers), and the
# readers that `skd convert` registers (kept out of every `python -m spacy` start-up), and the
# report's plots (extra `eval`: matplotlib), loaded by `skd report` only.
LAZY = {"spacy_skd.cli.annotate": {"spacy_skd.training.annotate_ray"},
        "spacy_skd.cli.report": {"spacy_skd.report.build"},
        "spacy_skd.models.sentscore": {"spacy_skd.models.seq2seq"},
        "spacy_skd.pipes.sentscore": {"spacy_skd.models.seq2seq"},
        "spacy_skd.cli.convert": {"spacy_skd.training.conllu", "spacy_skd.training.readers"}}


def _target(module: str, node: ast.ImportFrom) -> str:
    package = module if (PACKAGE.parent / (module.replace(".", "/") + "/__init__.py")).exists() else module.rsplit(".", 1)[0]
    if node.level:
        base = package.split(".")
        base = base[: len(base) - node.level + 1]
        return ".".join(base + ([node.module] if node.module else []))
    return node.module or ""


def _imports(module: str) -> Dict[str, Set[str]]:
    """{"top": spacy_skd modules imported at module level, "nested": inside functions}."""
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf8"))
    found = {"top": set(), "nested": set()}

    def visit(node, nested: bool, guarded: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            type_only = guarded or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            names = []
            if isinstance(child, ast.ImportFrom):
                target = _target(module, child)
                names = [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in child.names]
            elif isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            for name in names:
                if name.startswith("spacy_skd") and not type_only:
                    found["nested" if inner else "top"].add(name)
            visit(child, inner, type_only)

    visit(tree, False, False)
    return found


def test_no_function_level_imports_of_the_package():
    nested = {m: sorted(_imports(m)["nested"] - LAZY.get(m, set())) for m in MODULES}
    assert {m: names for m, names in nested.items() if names} == {}


def test_module_level_imports_have_no_cycle():
    # a submodule's import of its own package (cli/annotate.py: `from . import skd_cli`) is
    # no cycle: Python imports the package first in any case
    graph = {m: {t for t in _imports(m)["top"] if t in MODULES and t != m and not m.startswith(t + ".")}
             for m in MODULES}
    state: Dict[str, int] = {}

    def walk(m, path):
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(t):] + [t]))
            if t not in state:
                walk(t, path + [t])
        state[m] = 2

    for m in MODULES:
        if m not in state:
            walk(m, [m])


@pytest.mark.parametrize("module", ["spacy_skd.training.student_targets", "spacy_skd.teacher.target_maker"])
def test_module_imports_first_in_a_fresh_interpreter(module):
    """Each entry point of the teacher layer imports on its own (no order dependence)."""
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_module_imports():
    for module in MODULES:
        if module.endswith("annotate_ray") or module.endswith("models.seq2seq"):
            continue  # optional extras (ray, transformers)
        importlib.import_module(module)


def test_only_the_cli_imports_the_report_layer():
    """spacy_skd.report sits above training and the teacher layer: nothing below imports it."""
    above = ("spacy_skd.cli", "spacy_skd.report")
    importers = sorted(m for m in MODULES if not m.startswith(above)
                       and any(t.startswith("spacy_skd.report") for kind in _imports(m).values() for t in kind))
    assert importers == []
