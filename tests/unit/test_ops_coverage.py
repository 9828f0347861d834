"""Every operation module has unit tests over the scripted environment (pure: the test
sources are read). docs/development.md's table of counts comes from `ops_test_counts()`:
`python -c 'import sys; sys.path[:0] = ["tests/unit"]; import test_ops_coverage as t; t.print_table()'`."""

import ast
import collections
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
# modules that are no operation of their own: the environment, and the definition builder
# every create, clone, edit and disk change runs (counted through those)
NOT_OPERATIONS = {"__init__", "env", "definition"}


def operations() -> list:
    return sorted(p.stem for p in (REPO / "helpers/ops").glob("*.py") if p.stem not in NOT_OPERATIONS)


def _cases(node) -> int:
    n = 1
    for d in node.decorator_list:
        if isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "parametrize":
            n *= len(d.args[1].elts)
    return n


def _used(node, defs: dict, ops: set, seen=()) -> set:
    """The operation modules a function calls, itself or through the file's other functions."""
    found = {n.value.id for n in ast.walk(node)
             if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in ops}
    calls = {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    names = calls | {a.arg for a in node.args.args}
    for name in names & set(defs) - set(seen) - {node.name}:
        found |= _used(defs[name], defs, ops, (*seen, node.name))
    return found


def ops_test_counts() -> dict:
    """{operation module: test cases that call it}, a test counting for every module it calls
    directly, through a helper of its file, or through a fixture it takes (its file's or
    conftest's)."""
    ops = set(operations())
    counts: collections.Counter = collections.Counter()
    shared = {n.name: n for n in ast.parse((REPO / "tests/unit/conftest.py").read_text()).body
              if isinstance(n, ast.FunctionDef)}       # the fixtures every file may take
    for f in sorted((REPO / "tests/unit").glob("test_ops_*.py")):
        tree = ast.parse(f.read_text())
        defs = shared | {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}

        for name, node in defs.items():
            if name.startswith("test_"):
                for module in _used(node, defs, ops):
                    counts[module] += _cases(node)
    return {m: counts[m] for m in operations()}


def print_table() -> None:
    for module, n in ops_test_counts().items():
        print(f"| `{module}` | {n} |")


def test_every_operation_has_unit_tests():
    untested = [m for m, n in ops_test_counts().items() if n == 0]
    assert not untested, f"operations without unit tests over the scripted environment: {untested}"


def test_docs_show_the_counts():
    doc = (REPO / "docs/development.md").read_text()
    for module, n in ops_test_counts().items():
        assert f"| `{module}` | {n} |" in doc, f"docs/development.md: the unit test count of {module} is not {n}"
