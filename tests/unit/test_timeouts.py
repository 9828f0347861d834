"""One owner for every time rbdvm waits (helpers/core/timeouts.py), and docs/timeouts.md
lists exactly those names with their values (pure: the source is parsed)."""

import ast
import re
from pathlib import Path

import pytest

from rbdvm.helpers.core import timeouts

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def declared() -> list:
    tree = ast.parse((REPO / "helpers/core/timeouts.py").read_text())
    return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name) and t.id.isupper()]


def test_docs_list_every_timeout_with_its_value():
    doc = (REPO / "docs/timeouts.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]+?) \|", doc, re.M))
    assert sorted(rows) == sorted(declared()), "docs/timeouts.md and core/timeouts.py list different names"
    for name, shown in rows.items():
        value = getattr(timeouts, name)
        if isinstance(value, dict):
            assert all(f"{k} {v}" in shown for k, v in value.items()), name
        else:
            assert shown == f"{value:g}", f"{name}: docs say {shown}, the code {value}"


def test_no_module_names_a_wait_of_its_own():
    """A constant named like a time outside timeouts.py is a second owner."""
    pattern = re.compile(r"^[A-Z_]*(SECONDS|TIMEOUT|_WAIT|MARGIN|RESERVE)\s*=", re.M)
    others = [str(p.relative_to(REPO)) for folder in ("helpers", "ocf", "cli") for p in (REPO / folder).rglob("*.py")
              if p.name != "timeouts.py" and pattern.search(p.read_text())]
    assert others == []
