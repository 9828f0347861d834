"""Shared test setup.

`unit` tests need neither root nor the lab. `lab` tests get the session-wide lab: brought
up if it is not already up and healthy, torn down afterwards only if this session started
it. A lab that cannot start makes every lab test fail with the reason: never a skip.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

LAB_SRC = Path(__file__).resolve().parent / "lab"
sys.path.insert(0, str(LAB_SRC))

from labkit import lifecycle  # noqa: E402

LAB_CMD = str(LAB_SRC / "lab")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("lab"):
            item.fixturenames.insert(0, "lab")
    # the lab's own life cycle (down, stale restart) runs last: it restarts the lab
    items.sort(key=lambda item: item.get_closest_marker("lab_lifecycle") is not None)


def pytest_configure(config):
    config.addinivalue_line("markers", "lab_lifecycle: tears the lab down and up again; runs last")


@pytest.fixture(scope="session")
def lab():
    if os.geteuid() != 0:
        pytest.fail("lab tests need root (network namespaces, mounts, daemons)")
    started = False
    if not lifecycle.healthy():
        res = subprocess.run([LAB_CMD, "up"], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.fail(f"the lab did not come up (tests/lab/lab up, rc {res.returncode}):\n"
                        f"{res.stdout}\n{res.stderr}", pytrace=False)
        started = True
    yield LAB_CMD
    if started and os.environ.get("RBDVM_LAB_KEEP") != "1":
        subprocess.run([LAB_CMD, "down"], check=False)


@pytest.fixture(scope="session")
def agent_installed(lab):
    """`rbdvm install-agent` on every node, as an operator installs it."""
    from labkit import layout as L
    from labkit import ops

    for n in L.NODES:
        ops.on(n, "rbdvm", "install-agent")
    return "/usr/lib/ocf/resource.d/rbdvm/VirtualDomain"
