"""Every module of the package imports on its own, in a fresh interpreter. An entry point's
import order can hide a cycle (snapshots -> lifecycle -> inventory -> snapshots once failed
only when snapshots was imported first); a node that runs one module directly must not.
Pure logic over the source tree: each import runs in a child interpreter, nothing touches
Ceph, libvirt or Pacemaker (importing never connects)."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_layers import KNOWN

pytestmark = pytest.mark.unit

# one child per module; the children import in parallel, the test reports all failures at once
CHILD = "import importlib, sys; importlib.import_module(sys.argv[1])"


def _import_alone(module):
    done = subprocess.run([sys.executable, "-c", CHILD, module], capture_output=True, text=True,
                          timeout=60, cwd="/")
    return module, done.returncode, done.stderr.strip().splitlines()[-1:] or [""]


def test_every_module_imports_alone_in_a_fresh_interpreter():
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_import_alone, sorted(KNOWN)))
    failed = [f"{module}: {last[0]}" for module, rc, last in results if rc != 0]
    assert not failed, "modules that fail to import alone:\n" + "\n".join(failed)
